"""Prometheus metrics of a queuectl store: `QueueCollector(queue)`, a custom collector
read from the store at each scrape (`metrics --format prometheus`, and the dashboard's
`/metrics`).  It needs prometheus_client and nothing of the CLI:

    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry()
    registry.register(QueueCollector(Queue(url)))
    text = generate_latest(registry)

The store keeps no counters, so the collector counts: its first scrape starts
`queuectl_runs_total` (and the duration summary's count and sum) at the runs of the
window, and each later scrape adds the runs that ended since, each run (a job and
attempt) once; runs recorded up to LATE_S after they ended are still counted.  A new
collector starts again from its window, a counter reset that rate() and increase()
take in their stride.  Gauges and the duration quantiles are the window's figures
(queuectl.metrics).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterator, Optional

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from queuectl.metrics import DURATION_PERCENTILES, OUTCOMES, Figures

if TYPE_CHECKING:
    from queuectl.metrics import Metrics
    from queuectl.models import RunRecord
    from queuectl.queue import Queue

#: How long after its end a run may be recorded and still be counted (a finish is
#: recorded within milliseconds; one a worker had to keep on disk may take longer).
LATE_S = 300.0

RunKey = tuple[str, int]


def _key(run: "RunRecord") -> RunKey:
    """A run's identity across scrapes: its job and attempt (-1: a cancellation)."""
    return (run.job_id, -1 if run.result == "cancelled" else run.attempt or 0)


class QueueCollector:
    """A prometheus_client collector of one store (optionally of one queue)."""

    def __init__(self, queue: "Queue", *, since_s: float = 3600.0,
                 queue_name: Optional[str] = None, once: bool = False) -> None:
        self.queue = queue
        self.once = once  # one scrape only: no runs to remember for the next one
        self.since_s = since_s
        self.queue_name = queue_name
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], int] = {}
        self._duration: dict[str, tuple[int, float]] = {}  # queue -> (count, sum)
        self._seen: dict[RunKey, float] = {}  # runs counted in the last LATE_S or so
        self._last: Optional[float] = None  # the time of the last scrape

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not read the store."""
        return []

    def _count(self, report: "Metrics") -> None:
        """The window's runs at the first scrape; then add the runs that ended since."""
        now = report.now
        if self._last is None:
            for name, figures in report.queues.items():
                for outcome in OUTCOMES:
                    self._totals[(name, outcome)] = figures.runs[outcome]
                self._duration[name] = (int(figures.duration_s["count"] or 0),
                                        float(figures.duration_s["sum"] or 0.0))
            if self.once:
                return
            start = now - LATE_S
            self._seen = {_key(run): run.finished_at
                          for run in self.queue.runs_since(start, self.queue_name)
                          if run.finished_at >= start}
            self._last = now
            return
        start = self._last - LATE_S
        for run in self.queue.runs_since(start, self.queue_name):
            key = _key(run)
            if key in self._seen or run.finished_at < start:
                continue
            self._seen[key] = run.finished_at
            for outcome in (run.result, "timeout") if run.timed_out else (run.result,):
                if outcome in OUTCOMES:
                    label = (run.queue, outcome)
                    self._totals[label] = self._totals.get(label, 0) + 1
            if run.result != "cancelled" and run.started_at:
                count, total = self._duration.get(run.queue, (0, 0.0))
                self._duration[run.queue] = (
                    count + 1, total + max(0.0, run.finished_at - run.started_at))
        self._seen = {k: at for k, at in self._seen.items() if at >= now - 2 * LATE_S}
        self._last = now

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            report = self.queue.metrics(self.since_s, self.queue_name)
            self._count(report)
            totals, durations = dict(self._totals), dict(self._duration)
        yield from self._families(report.overall, report.queues, totals, durations,
                                  whole_store=self.queue_name is None)

    def _families(self, overall: Figures, queues: dict[str, Figures],
                  totals: dict[tuple[str, str], int],
                  durations: dict[str, tuple[int, float]],
                  whole_store: bool) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "queuectl_runs", "Runs ended, by queue and outcome (completed, failed: to be "
            "retried, dead, cancelled jobs; timeout: runs that hit their limit)",
            labels=["queue", "outcome"])
        for name in sorted({q for q, _ in totals} | set(queues)):
            for outcome in OUTCOMES:
                runs.add_metric([name, outcome], totals.get((name, outcome), 0))
        yield runs

        summary = Metric("queuectl_run_duration_seconds", "Run duration: quantiles over "
                         "the window, count and sum of the runs counted", "summary")
        for name in sorted(set(durations) | set(queues)):
            figures = queues.get(name)
            if figures is not None:
                for p in DURATION_PERCENTILES:
                    value = figures.duration_s[f"p{p}"]
                    if value is not None:
                        summary.add_sample("queuectl_run_duration_seconds",
                                           {"queue": name, "quantile": str(p / 100)}, value)
            count, total = durations.get(name, (0, 0.0))
            summary.add_sample("queuectl_run_duration_seconds_count", {"queue": name}, count)
            summary.add_sample("queuectl_run_duration_seconds_sum", {"queue": name}, total)
        yield summary

        if whole_store:
            jobs = GaugeMetricFamily("queuectl_jobs", "Jobs in the store per state",
                                     labels=["state"])
            for state, n in overall.depth.items():
                jobs.add_metric([state], n)
            yield jobs
        live = GaugeMetricFamily("queuectl_queue_jobs", "Live jobs per queue and state",
                                 labels=["queue", "state"])
        oldest = GaugeMetricFamily("queuectl_oldest_waiting_age_seconds",
                                   "How long the oldest due job of the queue has waited",
                                   labels=["queue"])
        for name, figures in queues.items():
            for state, n in figures.depth.items():
                live.add_metric([name, state], n)
            if figures.oldest_waiting_age_s is not None:
                oldest.add_metric([name], figures.oldest_waiting_age_s)
        yield live
        yield oldest
        for metric, doc, value in (
                ("queuectl_workers", "Live workers", overall.workers),
                ("queuectl_slots", "Job slots of the live workers", overall.slots),
                ("queuectl_busy_slots", "Jobs the live workers hold in processing now",
                 overall.busy_slots)):
            yield GaugeMetricFamily(metric, doc, value=value)


def exposition(queue: "Queue", *, since_s: float = 3600.0,
               queue_name: Optional[str] = None) -> bytes:
    """The text exposition of one scrape (`metrics --format prometheus`)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(queue, since_s=since_s, queue_name=queue_name,
                                     once=True))
    return generate_latest(registry)
