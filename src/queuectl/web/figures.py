"""The dashboard's figures: the two places that read more than the service API gives
today, kept small so that each can be pointed at the store's metrics.

* `overview_figures()` gives the overview's chart and rates.  TODO(metrics): compute
  it from `Queue.metrics(3600, None)` once that exists; today it samples `status()`.
* `exposition()` gives `/metrics` through `promcollector.QueueCollector`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Optional

from queuectl.queue import Queue, Status
from queuectl.states import JobState

HISTORY_S = 3600.0  # the chart's span
SAMPLE_EVERY_S = 10.0  # one chart point per this many seconds at most


class FigureHistory:
    """Samples of `status()` taken while the dashboard runs (at most one per
    SAMPLE_EVERY_S, kept for HISTORY_S): finished runs per minute and the counts
    the success rate is taken from."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, int, int]] = deque()
        self._lock = threading.Lock()

    def add(self, status: Status) -> None:
        done = status.counts.get(JobState.COMPLETED, 0)
        bad = status.counts.get(JobState.DEAD, 0) + status.counts.get(JobState.CANCELLED, 0)
        with self._lock:
            if self._samples and status.now - self._samples[-1][0] < SAMPLE_EVERY_S:
                self._samples[-1] = (self._samples[-1][0], status.finished_last_minute,
                                     done, bad)
            else:
                self._samples.append((status.now, status.finished_last_minute, done, bad))
            while self._samples and status.now - self._samples[0][0] > HISTORY_S:
                self._samples.popleft()

    def series(self) -> list[tuple[float, int, int, int]]:
        with self._lock:
            return list(self._samples)


def overview_figures(queue: Queue, status: Status, history: FigureHistory) -> dict[str, Any]:
    """Throughput (finished runs per minute) and success rate over the last hour.

    TODO(metrics): `queue.metrics(3600, None)` gives these from the store (across
    restarts of the dashboard, with duration p95); until then they come from samples
    of `status()` taken since the dashboard started."""
    history.add(status)
    series = history.series()
    first, last = series[0], series[-1]
    done = last[2] - first[2]
    bad = last[3] - first[3]
    rate: Optional[float] = round(done / (done + bad), 4) if done + bad > 0 else None
    return {
        "window_s": round(last[0] - first[0], 1),
        "throughput_per_min": [[round(t - status.now, 1), n] for t, n, _, _ in series],
        "success_rate": rate,
        "duration_p95_s": None,
        "source": "status samples",
    }


_REGISTRIES: dict[int, Any] = {}  # one collector per Queue: its counters persist


def exposition(queue: Queue) -> tuple[bytes, str]:
    """The Prometheus text exposition of the store (body, content type), through the
    same collector as `queuectl metrics --format prometheus` (queuectl.promcollector):
    counters of runs by queue and outcome, a duration summary, depth, slots."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from queuectl.promcollector import QueueCollector

    registry = _REGISTRIES.get(id(queue))
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(QueueCollector(queue))  # type: ignore[arg-type]
        _REGISTRIES[id(queue)] = registry
    return generate_latest(registry), CONTENT_TYPE_LATEST
