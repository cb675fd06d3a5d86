"""`queuectl metrics`: the figures, computed from what the store returned (pure: no
I/O, the time passed in).

Definitions (the README and `metrics --help` say the same):

- a *run* is one attempt that ended with a recorded result: `completed`, `failed`
  (a failed attempt that will be retried) or `dead` (the last attempt failed);
  `timeout` counts the runs among those that hit their time limit; `cancelled` counts
  jobs cancelled in the window (a cancelled run records no result);
- success rate = completed runs / (completed + failed + dead runs);
- throughput = runs ended in the last 1, 5 and 15 minutes and in the window, with the
  rate per minute;
- run duration: finished_at - started_at of each run; queue wait: due time to start
  of the last run of each job that ended completed or dead;
- percentiles are exact, by nearest rank over the window's runs (p50 of 1..10 is 5,
  p95 is 10), over its latest SAMPLE_CAP runs when it held more (the counts, and the
  durations' count, sum and maximum, still cover every run);
- retries = runs that were a retry (attempt 2 or later);
- depth: jobs per state now (every state overall, the live states per queue); the
  oldest waiting job is the one due the longest (waiting states only);
- workers, slots and busy slots are the live workers'; busy = the jobs they hold in
  `processing` now.  Per queue: the workers that serve it, and its processing jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from queuectl.models import (
    BucketGroup,
    LiveCount,
    RunRecord,
    SampleRow,
    SpanGroup,
    WindowGroup,
    WorkerInfo,
)
from queuectl.states import CLAIMABLE, JobState
from queuectl.times import iso_utc

#: The outcomes counted, in the order they are shown.
OUTCOMES = ("completed", "failed", "dead", "cancelled", "timeout")
RUN_RESULTS = ("completed", "failed", "dead")
#: Waiting jobs read for the per-queue depth, oldest first (a backlog larger than this
#: is shown per queue as counted so far, `depth_capped`; the whole store's counts per
#: state are exact at any depth).
LIVE_CAP = 10_000
#: Runs read for the percentiles, the window's latest (its counts, the durations'
#: count, sum and maximum cover every run at any rate).
SAMPLE_CAP = 5_000
#: The series (`series=True`) splits the window into this many buckets.
BUCKETS = 60
#: The longest window (a start before 1970 has no timestamp).
MAX_WINDOW_S = 3650 * 86400.0
#: Throughput spans besides the window, seconds.
SPANS_S = {"1m": 60.0, "5m": 300.0, "15m": 900.0}
DURATION_PERCENTILES = (50, 95, 99)
WAIT_PERCENTILES = (50, 95, 99)
#: The states a per-queue depth is given for (a finished state's count per queue would
#: read every finished job; overall, the counts of every state are cheap).
LIVE_STATES = (JobState.PENDING, JobState.SCHEDULED, JobState.FAILED, JobState.PROCESSING)


def aligned(since_s: float) -> bool:
    """Whether the window's BUCKETS buckets line up with the spans (1, 5 and 15 minutes
    are whole buckets back from now): then one grouped read of the window gives the
    window, the spans and the series (`from_buckets`)."""
    width = since_s / BUCKETS
    return since_s >= max(SPANS_S.values()) and all(
        span % width == 0 for span in SPANS_S.values())


def from_buckets(rows: Sequence[BucketGroup], since_s: float
                 ) -> tuple[list[WindowGroup], list[SpanGroup], list[tuple[int, int, int]]]:
    """The window's groups, the spans and the series from its per-bucket groups (an
    aligned window: the last minute is the last bucket; a run ended after now, clocks
    of two hosts, is in the last one as the separate reads counted it)."""
    window: dict[tuple[str, str, bool, bool], list[Any]] = {}
    spans: dict[tuple[str, bool, bool], int] = {}
    series: dict[int, list[int]] = {}
    last = {span: round(seconds / (since_s / BUCKETS)) for span, seconds in SPANS_S.items()}
    for q, state, retry, timed_out, bucket, n, timed, total, longest in rows:
        group = window.setdefault((q, state, retry, timed_out), [0, 0, 0.0, None])
        group[0] += n
        group[1] += timed
        group[2] += total
        if longest is not None and (group[3] is None or longest > group[3]):
            group[3] = longest
        if state == JobState.CANCELLED.value:
            continue
        point = series.setdefault(bucket, [0, 0])
        point[0] += n
        point[1] += n if state == JobState.COMPLETED.value else 0
        back = BUCKETS - bucket  # 1: the last bucket, 0 or less: ended after now
        if back <= last["15m"]:
            key = (q, back <= last["1m"], back <= last["5m"])
            spans[key] = spans.get(key, 0) + n
    return ([(q, state, retry, timed_out, n, timed, total, longest)
             for (q, state, retry, timed_out), (n, timed, total, longest) in window.items()],
            [(q, in1, in5, n) for (q, in1, in5), n in spans.items()],
            [(bucket, n, done) for bucket, (n, done) in series.items()])


def horizon(now: float, since_s: float) -> float:
    """The earliest end time read: the window, or the longest throughput span."""
    return now - max(since_s, max(SPANS_S.values()))


def percentile(ordered: Sequence[float], p: float) -> Optional[float]:
    """The nearest-rank percentile of sorted values (None when there are none)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 3)


@dataclass
class Figures:
    """The figures of one queue, or of all of them."""

    runs: dict[str, int]
    success_rate: Optional[float]
    throughput: dict[str, dict[str, float]]
    duration_s: dict[str, Optional[float]]
    wait_s: dict[str, Optional[float]]
    retries: int
    depth: dict[str, int]
    #: True when the live jobs per queue were counted up to LIVE_CAP waiting ones only
    depth_capped: bool
    oldest_waiting_age_s: Optional[float]
    workers: int
    slots: int
    busy_slots: int

    @property
    def utilisation(self) -> Optional[float]:
        return round(self.busy_slots / self.slots, 4) if self.slots else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": dict(self.runs),
            "success_rate": self.success_rate,
            "throughput": {span: dict(values) for span, values in self.throughput.items()},
            "duration_s": {k: _rounded(v) if k != "count" else v
                           for k, v in self.duration_s.items()},
            "wait_s": {k: _rounded(v) if k != "count" else v for k, v in self.wait_s.items()},
            "retries": self.retries,
            "depth": dict(self.depth),
            "depth_capped": self.depth_capped,
            "oldest_waiting_age_s": _rounded(self.oldest_waiting_age_s),
            "workers": self.workers,
            "slots": self.slots,
            "busy_slots": self.busy_slots,
            "utilisation": self.utilisation,
        }


@dataclass
class Series:
    """Runs of the whole window per bucket, oldest first (the dashboard's chart)."""

    bucket_s: float
    runs: list[int]
    completed: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"bucket_s": self.bucket_s, "runs": list(self.runs),
                "completed": list(self.completed)}


@dataclass
class Metrics:
    """`queuectl metrics`: the window's figures overall and per queue."""

    store: str
    now: float
    since_s: float
    queue: Optional[str]  # the --queue filter, if any
    overall: Figures
    queues: dict[str, Figures] = field(default_factory=dict)
    #: the percentiles are over the window's latest `sample_cap` runs at most
    sample_cap: int = 0
    #: True when the window held more runs than that (its counts stay exact)
    sampled: bool = False
    series: Optional[Series] = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "now": iso_utc(self.now),
            "since_s": self.since_s,
            "window_start": iso_utc(self.now - self.since_s),
            "queue": self.queue,
            "overall": self.overall.to_dict(),
            "queues": {name: figures.to_dict() for name, figures in self.queues.items()},
            "percentiles": {"latest_runs": self.sample_cap, "sampled": self.sampled},
            **({} if self.series is None else {"series": self.series.to_dict()}),
        }


class _Tally:
    """What one queue's runs add up to, gathered from the store's grouped counts, the
    percentiles' sample and the earlier runs of retried jobs."""

    __slots__ = ("runs", "durations", "waits", "retries", "spans", "timed", "total",
                 "longest")

    def __init__(self) -> None:
        self.runs = dict.fromkeys(OUTCOMES, 0)
        self.durations: list[float] = []  # of the sample
        self.waits: list[float] = []  # of the sample
        self.retries = 0
        self.spans = [0, 0, 0, 0]  # runs ended in the last 1, 5, 15 minutes, the window
        self.timed = 0  # runs with a duration, every one of the window
        self.total = 0.0  # their durations' sum
        self.longest: Optional[float] = None

    def merge(self, other: "_Tally") -> None:
        for key, n in other.runs.items():
            self.runs[key] += n
        self.durations += other.durations
        self.waits += other.waits
        self.retries += other.retries
        self.spans = [a + b for a, b in zip(self.spans, other.spans)]
        self.timed += other.timed
        self.total += other.total
        self._longer(other.longest)

    def _longer(self, duration: Optional[float]) -> None:
        if duration is not None and (self.longest is None or duration > self.longest):
            self.longest = duration


#: A row's state -> the result of its last run (a pending or scheduled job that
#: has a finish time is a failed one relabelled for its retry).
_RESULT = {"completed": "completed", "dead": "dead", "cancelled": "cancelled"}


def _tally(window: Sequence[WindowGroup], spans: Sequence[SpanGroup],
           sample: Sequence[SampleRow], earlier: Sequence[RunRecord], *, now: float,
           since_s: float) -> dict[str, _Tally]:
    start, t1, t5, t15 = now - since_s, now - 60, now - 300, now - 900
    tallies: dict[str, _Tally] = {}

    def of(name: str) -> _Tally:
        tally = tallies.get(name)
        if tally is None:
            tally = tallies[name] = _Tally()
        return tally

    for q, state, retry, timed_out, n, timed, total, longest in window:
        tally = of(q)
        result = _RESULT.get(state, "failed")
        tally.runs[result] += n
        if result == "cancelled":
            continue
        tally.spans[3] += n
        if timed_out:
            tally.runs["timeout"] += n
        if retry:
            tally.retries += n
        tally.timed += timed
        tally.total += total
        tally._longer(longest)
    for q, in1, in5, n in spans:
        counts = of(q).spans
        counts[2] += n
        if in5:
            counts[1] += n
            if in1:
                counts[0] += n
    for q, duration, wait in sample:
        tally = of(q)
        if duration is not None:
            tally.durations.append(duration)
        if wait is not None:
            tally.waits.append(wait)
    for run in earlier:
        tally = of(run.queue)
        finished = run.finished_at
        if run.result == "cancelled":
            if finished >= start:
                tally.runs["cancelled"] += 1
            continue
        if finished >= t15:
            counts = tally.spans
            counts[2] += 1
            if finished >= t5:
                counts[1] += 1
                if finished >= t1:
                    counts[0] += 1
        if finished < start:
            continue
        tally.spans[3] += 1
        tally.runs[run.result] += 1
        if run.timed_out:
            tally.runs["timeout"] += 1
        if (run.attempt or 0) > 1:
            tally.retries += 1
        if run.started_at:
            duration = max(0.0, finished - run.started_at)
            tally.durations.append(duration)
            tally.timed += 1
            tally.total += duration
            tally._longer(duration)
    return tallies


def _figures(tally: _Tally, live: Sequence[LiveCount], *, now: float, since_s: float,
             depth: Mapping[str, int], depth_capped: bool, workers: Sequence[WorkerInfo],
             busy_slots: int) -> Figures:
    counts = tally.runs
    ended = sum(counts[result] for result in RUN_RESULTS)
    throughput = {
        span: {"runs": n, "per_min": round(n / (seconds / 60), 3)}
        for (span, seconds), n in zip({**SPANS_S, "window": since_s}.items(), tally.spans)}
    durations = sorted(tally.durations)
    waits = sorted(tally.waits)
    duration: dict[str, Optional[float]] = {
        f"p{p}": percentile(durations, p) for p in DURATION_PERCENTILES}
    duration["max"] = tally.longest
    wait: dict[str, Optional[float]] = {f"p{p}": percentile(waits, p) for p in WAIT_PERCENTILES}
    oldest = [c.oldest_due for c in live
              if c.oldest_due is not None and JobState(c.state) in CLAIMABLE]
    return Figures(
        runs=dict(counts),
        success_rate=round(counts["completed"] / ended, 4) if ended else None,
        throughput=throughput,
        duration_s={**duration, "count": tally.timed, "sum": tally.total},
        wait_s={**wait, "count": len(waits)},
        retries=tally.retries,
        depth=dict(depth),
        depth_capped=depth_capped,
        oldest_waiting_age_s=max(0.0, now - min(oldest)) if oldest else None,
        workers=len(workers),
        slots=sum(w.slots for w in workers),
        busy_slots=busy_slots,
    )


def _live_depth(live: Sequence[LiveCount]) -> dict[str, int]:
    depth = {state.value: 0 for state in LIVE_STATES}
    for count in live:
        depth[count.state] = depth.get(count.state, 0) + count.jobs
    return depth


def compute(*, store: str, now: float, since_s: float, queue: Optional[str],
            window: Sequence[WindowGroup], spans: Sequence[SpanGroup],
            sample: Sequence[SampleRow], sample_cap: int, earlier: Sequence[RunRecord],
            live: Sequence[LiveCount], live_cap: int,
            counts: Optional[Mapping[JobState, int]],
            workers: Sequence[WorkerInfo],
            series: Optional[Sequence[tuple[int, int, int]]] = None) -> Metrics:
    """The figures from what the store returned: `window` counts the rows ended since
    the window's start, `spans` those of the last 15 minutes, `sample` holds the
    latest `sample_cap` runs of the window (the percentiles), `earlier` the earlier
    runs of retried jobs back to `horizon()`; `live` holds up to `live_cap` waiting
    jobs; `counts` are the per-state counts of the whole store (None with a queue
    filter); `workers` are the live ones, `busy` counted from the store's processing
    jobs."""
    tallies = _tally(window, spans, sample, earlier, now=now, since_s=since_s)
    capped = sum(c.jobs for c in live if JobState(c.state) in CLAIMABLE) >= live_cap
    start = now - since_s
    in_window = {g[0] for g in window} | \
        {r.queue for r in earlier if r.finished_at >= start}
    names = [queue] if queue is not None else sorted(in_window | {c.queue for c in live})

    def serving(name: str) -> list[WorkerInfo]:
        return [w for w in workers if not w.queues or name in w.queues]

    per_queue: dict[str, Figures] = {}
    for name in names:
        mine = [c for c in live if c.queue == name]
        depth = _live_depth(mine)
        per_queue[name] = _figures(
            tallies.get(name) or _Tally(), mine, now=now, since_s=since_s, depth=depth,
            depth_capped=capped, workers=serving(name),
            busy_slots=depth[JobState.PROCESSING.value])
    if queue is not None:
        overall = per_queue[queue]
    else:
        everything = _Tally()
        for tally in tallies.values():
            everything.merge(tally)
        overall = _figures(everything, live, now=now, since_s=since_s,
                           depth={state.value: n for state, n in (counts or {}).items()},
                           depth_capped=False, workers=workers,
                           busy_slots=sum(w.busy for w in workers))
    return Metrics(store=store, now=now, since_s=since_s, queue=queue, overall=overall,
                   queues=per_queue, sample_cap=sample_cap,
                   sampled=len(sample) >= sample_cap,
                   series=None if series is None else _series(series, earlier, now=now,
                                                              since_s=since_s))


def _series(rows: Sequence[tuple[int, int, int]], earlier: Sequence[RunRecord], *,
            now: float, since_s: float) -> Series:
    width = since_s / BUCKETS
    start = now - since_s
    runs, completed = [0] * BUCKETS, [0] * BUCKETS
    for bucket, n, done in rows:
        index = min(max(bucket, 0), BUCKETS - 1)  # a run ended exactly now: the last
        runs[index] += n
        completed[index] += done
    for run in earlier:  # a retried job's earlier runs: failed ones
        if run.result != "cancelled" and run.finished_at >= start:
            index = min(max(int((run.finished_at - start) / width), 0), BUCKETS - 1)
            runs[index] += 1
            completed[index] += run.result == "completed"
    return Series(bucket_s=width, runs=runs, completed=completed)
