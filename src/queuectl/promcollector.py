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

The families are built as plain data (`families()`); the collector hands them to
prometheus_client, and the one-scrape `exposition()` (`metrics --format prometheus`)
writes the same text format itself: importing prometheus_client costs ~40 ms of
a CLI command's start-up.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Iterator, Optional

from queuectl.metrics import DURATION_PERCENTILES, OUTCOMES, Figures

if TYPE_CHECKING:
    from prometheus_client.core import Metric

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

    def collect(self) -> Iterator["Metric"]:
        from prometheus_client.core import Metric

        for name, doc, kind, samples in self.scrape():
            metric = Metric(name, doc, kind)
            for sample, labels, value in samples:
                metric.add_sample(sample, labels, value)
            yield metric

    def scrape(self) -> list[Family]:
        """One scrape's families, as plain data."""
        with self._lock:
            report = self.queue.metrics(self.since_s, self.queue_name)
            self._count(report)
            totals, durations = dict(self._totals), dict(self._duration)
        return families(report.overall, report.queues, totals, durations,
                        whole_store=self.queue_name is None)


#: (family name, help, type, [(sample name, labels, value)])
Family = tuple[str, str, str, list[tuple[str, dict[str, str], float]]]


def families(overall: Figures, queues: dict[str, Figures],
             totals: dict[tuple[str, str], int], durations: dict[str, tuple[int, float]],
             whole_store: bool) -> list[Family]:
    out: list[Family] = []
    runs: list[tuple[str, dict[str, str], float]] = []
    for name in sorted({q for q, _ in totals} | set(queues)):
        for outcome in OUTCOMES:
            runs.append(("queuectl_runs_total", {"queue": name, "outcome": outcome},
                         totals.get((name, outcome), 0)))
    out.append(("queuectl_runs", "Runs ended, by queue and outcome (completed, failed: to "
                "be retried, dead, cancelled jobs; timeout: runs that hit their limit)",
                "counter", runs))

    summary: list[tuple[str, dict[str, str], float]] = []
    for name in sorted(set(durations) | set(queues)):
        figures = queues.get(name)
        if figures is not None:
            for p in DURATION_PERCENTILES:
                value = figures.duration_s[f"p{p}"]
                if value is not None:
                    summary.append(("queuectl_run_duration_seconds",
                                    {"queue": name, "quantile": str(p / 100)}, value))
        count, total = durations.get(name, (0, 0.0))
        summary.append(("queuectl_run_duration_seconds_count", {"queue": name}, count))
        summary.append(("queuectl_run_duration_seconds_sum", {"queue": name}, total))
    out.append(("queuectl_run_duration_seconds", "Run duration: quantiles over the window, "
                "count and sum of the runs counted", "summary", summary))

    if whole_store:
        out.append(("queuectl_jobs", "Jobs in the store per state", "gauge",
                     [("queuectl_jobs", {"state": state}, n)
                      for state, n in overall.depth.items()]))
    live: list[tuple[str, dict[str, str], float]] = []
    oldest: list[tuple[str, dict[str, str], float]] = []
    for name, figures in queues.items():
        for state, n in figures.depth.items():
            live.append(("queuectl_queue_jobs", {"queue": name, "state": state}, n))
        if figures.oldest_waiting_age_s is not None:
            oldest.append(("queuectl_oldest_waiting_age_seconds", {"queue": name},
                           figures.oldest_waiting_age_s))
    out.append(("queuectl_queue_jobs", "Live jobs per queue and state", "gauge", live))
    out.append(("queuectl_oldest_waiting_age_seconds",
                "How long the oldest due job of the queue has waited", "gauge", oldest))
    for metric, doc, value in (
            ("queuectl_workers", "Live workers", overall.workers),
            ("queuectl_slots", "Job slots of the live workers", overall.slots),
            ("queuectl_busy_slots", "Jobs the live workers hold in processing now",
             overall.busy_slots)):
        out.append((metric, doc, "gauge", [(metric, {}, value)]))
    return out


def _number(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float formatting)."""
    d = float(value)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    text = repr(d)
    dot = text.find(".")
    if d > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+0{dot - 1}"
    return text


def _escape(text: str, quote: bool) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if quote else text


def text_format(found: list[Family]) -> bytes:
    """Families in the Prometheus text exposition format 0.0.4."""
    lines = []
    for name, doc, kind, samples in found:
        shown = name + "_total" if kind == "counter" else name
        lines.append(f"# HELP {shown} {_escape(doc, False)}")
        lines.append(f"# TYPE {shown} {kind}")
        for sample, labels, value in samples:
            if labels:
                pairs = ",".join(f'{k}="{_escape(v, True)}"' for k, v in sorted(labels.items()))
                lines.append(f"{sample}{{{pairs}}} {_number(value)}")
            else:
                lines.append(f"{sample} {_number(value)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def exposition(queue: "Queue", *, since_s: float = 3600.0,
               queue_name: Optional[str] = None) -> bytes:
    """The text exposition of one scrape (`metrics --format prometheus`), written
    without prometheus_client (see the module)."""
    collector = QueueCollector(queue, since_s=since_s, queue_name=queue_name, once=True)
    return text_format(collector.scrape())
