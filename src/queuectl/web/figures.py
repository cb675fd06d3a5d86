"""The dashboard's figures, from the same place as `queuectl metrics`:

* `overview_figures()` gives the overview's chart and rates from `Queue.metrics`
  (one source of figures: the store, across hosts and across dashboard restarts).
* `exposition()` gives `/metrics` through `promcollector.QueueCollector`.
"""

from __future__ import annotations

from typing import Any, Optional

from queuectl.queue import Queue, Status

WINDOW_S = 3600.0  # the chart's and the rates' span


def overview_figures(queue: Queue, status: Optional[Status] = None) -> dict[str, Any]:
    """Throughput (runs ended per minute, one point per 60th of the hour, at the end
    of its bucket, seconds before now) and the success rate of each bucket that had
    runs, for the chart; the success rate and duration p95 of the last
    hour, read through `Queue.metrics(3600, series=True)` (with `status`: at the
    moment of that status read, its counts not read again)."""
    report = queue.metrics(WINDOW_S, series=True, status=status)
    overall = report.overall
    series = report.series
    assert series is not None
    per_min = 60.0 / series.bucket_s
    ends = [round((i + 1) * series.bucket_s - WINDOW_S, 1) for i in range(len(series.runs))]
    points = [[end, round(n * per_min, 3)] for end, n in zip(ends, series.runs)]
    # completed runs / runs ended, per bucket that had any (the chart's second line)
    success = [[end, round(done / n, 4)]
               for end, n, done in zip(ends, series.runs, series.completed) if n]
    return {
        "window_s": WINDOW_S,
        "throughput_per_min": points,
        "success_rate_series": success,
        "success_rate": overall.success_rate,
        "duration_p95_s": overall.to_dict()["duration_s"]["p95"],
        "runs": dict(overall.runs),
        "source": "store",
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
