"""`Queue.metrics`: every figure checked against a store built through the backend's
own calls (claim, finish, cancel, register) with chosen times, on an injected clock,
over both stores."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from queuectl.errors import InvalidInput
from queuectl.models import Job, NewJob, WorkerInfo
from queuectl.queue import Queue
from queuectl.states import JobState, Transition

NOW = 1_700_000_000.0
T = NOW - 3000


class Store:
    """A Queue on a clock the test moves, with helpers that run jobs at chosen times."""

    def __init__(self, url: str) -> None:
        self.time = NOW
        self.q = Queue(url, clock=lambda: self.time)

    def add(self, job_id: str, at: float, queue: str = "default", **fields: Any) -> None:
        self.time = at
        self.q.enqueue([NewJob(command="true", id=job_id, queue=queue, **fields)])

    def claim(self, job_id: str, at: float, queue: str = "default",
              worker_id: str = "w1") -> Job:
        job = self.q.backend.claim(worker_id, f"elsewhere:1/{worker_id}", [queue], at)
        assert job is not None and job.id == job_id
        return job

    def finish(self, job: Job, at: float, state: JobState = JobState.COMPLETED, *,
               run_at: Optional[float] = None, timed_out: bool = False,
               ended: Optional[float] = None) -> None:
        """Record a run that ended at `ended` (default `at`, when it is recorded)."""
        assert job.started_at is not None
        entry = {"attempt": job.attempts, "started_at": job.started_at,
                 "finished_at": at if ended is None else ended,
                 "worker": job.worker, "exit_code": 0 if state is JobState.COMPLETED else 1,
                 "signal": None, "timed_out": timed_out, "error": None,
                 "result": state.value}
        assert self.q.backend.finish(job, state, run_at, now=at, exit_code=entry["exit_code"],
                                     error=None, output=None, history_entry=entry)

    def run(self, job_id: str, due: float, start: float, end: float,
            state: JobState = JobState.COMPLETED, queue: str = "default", **kw: Any) -> None:
        self.add(job_id, due, queue)
        self.finish(self.claim(job_id, start, queue), end, state, **kw)


@pytest.fixture
def store(store_url: str) -> Any:
    s = Store(store_url)
    try:
        yield s
    finally:
        s.q.close()


def build(s: Store) -> None:
    """The window [NOW - 3600, NOW]: see the figures each test expects."""
    s.run("old", NOW - 7300, NOW - 7200, NOW - 7190)  # before the window
    s.run("c1", T, T + 0.5, T + 1.5)  # wait 0.5, duration 1
    s.run("c2", T + 10, T + 11, T + 13)  # wait 1, duration 2
    s.run("c3", T + 20, T + 21.5, T + 24.5)  # wait 1.5, duration 3
    s.run("c4", T + 30, T + 32, T + 36)  # wait 2, duration 4
    # a timeout (10 s) retried at T + 60, then completed in 5 s (wait 1)
    s.add("f1", T + 40)
    s.finish(s.claim("f1", T + 40), T + 50, JobState.FAILED, run_at=T + 60, timed_out=True)
    s.finish(s.claim("f1", T + 61), T + 66)
    s.run("d1", T + 100, T + 100.25, T + 100.75, JobState.DEAD)  # wait 0.25, duration 0.5
    # failed in 7 s, its retry due later: waits as failed
    s.run("r1", T + 200, T + 200, T + 207, JobState.FAILED, run_at=NOW + 100)
    # failed in 6 s, its retry running now: that failed run is in its history only
    s.run("p1", T + 300, T + 300, T + 306, JobState.FAILED, run_at=NOW - 10)
    s.add("x1", T + 400)
    s.time = T + 401
    s.q.cancel("x1")
    s.run("c6", NOW - 400, NOW - 399, NOW - 398, queue="mail")  # wait 1, duration 1
    s.run("c5", NOW - 200, NOW - 200, NOW - 30)  # wait 0, duration 170
    s.add("m2", NOW - 50, "mail")  # waiting for 50 s
    s.add("m3", NOW - 50, "mail", run_at=NOW + 500)  # scheduled
    s.claim("p1", NOW - 10)  # the retry of p1 runs on w1
    for worker_id, slots, queues in (("w1", 4, []), ("w2", 2, ["mail"])):
        s.q.backend.register_worker(WorkerInfo(
            id=worker_id, host="elsewhere", pid=1, slots=slots, queues=queues,
            started_at=NOW - 3600, heartbeat_at=NOW - 1))
    s.time = NOW


def test_every_figure_overall_and_per_queue(store: Store) -> None:
    build(store)
    report = store.q.metrics(3600).to_dict()
    assert report["since_s"] == 3600 and report["queue"] is None
    assert report["now"] == "2023-11-14T22:13:20Z"
    assert report["window_start"] == "2023-11-14T21:13:20Z"
    overall = report["overall"]
    assert overall["runs"] == {"completed": 7, "failed": 3, "dead": 1, "cancelled": 1,
                               "timeout": 1}
    assert overall["success_rate"] == round(7 / 11, 4)
    assert overall["throughput"] == {
        "1m": {"runs": 1, "per_min": 1.0}, "5m": {"runs": 1, "per_min": 0.2},
        "15m": {"runs": 2, "per_min": round(2 / 15, 3)},
        "window": {"runs": 11, "per_min": round(11 / 60, 3)}}
    # durations 0.5 1 1 2 3 4 5 6 7 10 170; waits 0 0.25 0.5 1 1 1 1.5 2 (nearest rank)
    assert overall["duration_s"] == {"p50": 4.0, "p95": 170.0, "p99": 170.0, "max": 170.0,
                                     "count": 11, "sum": 209.5}
    assert overall["wait_s"] == {"p50": 1.0, "p95": 2.0, "p99": 2.0, "count": 8}
    assert overall["retries"] == 1
    assert overall["depth"] == {"scheduled": 1, "pending": 1, "processing": 1,
                                "completed": 8, "failed": 1, "dead": 1, "cancelled": 1,
                                "waiting": 0, "blocked": 0}
    assert overall["oldest_waiting_age_s"] == 50.0 and overall["depth_capped"] is False
    assert (overall["workers"], overall["slots"], overall["busy_slots"],
            overall["utilisation"]) == (2, 6, 1, round(1 / 6, 4))

    assert sorted(report["queues"]) == ["default", "mail"]
    default = report["queues"]["default"]
    assert default["runs"] == {"completed": 6, "failed": 3, "dead": 1, "cancelled": 1,
                               "timeout": 1}
    assert default["success_rate"] == 0.6
    assert default["duration_s"] == {"p50": 4.0, "p95": 170.0, "p99": 170.0, "max": 170.0,
                                     "count": 10, "sum": 208.5}
    assert default["wait_s"] == {"p50": 1.0, "p95": 2.0, "p99": 2.0, "count": 7}
    assert default["depth"] == {"pending": 0, "scheduled": 0, "failed": 1, "processing": 1}
    assert default["oldest_waiting_age_s"] is None
    assert (default["workers"], default["slots"], default["busy_slots"]) == (1, 4, 1)
    mail = report["queues"]["mail"]
    assert mail["runs"] == {"completed": 1, "failed": 0, "dead": 0, "cancelled": 0,
                            "timeout": 0}
    assert mail["success_rate"] == 1.0 and mail["retries"] == 0
    assert mail["throughput"]["15m"] == {"runs": 1, "per_min": round(1 / 15, 3)}
    assert mail["throughput"]["5m"] == {"runs": 0, "per_min": 0.0}
    assert mail["duration_s"] == {"p50": 1.0, "p95": 1.0, "p99": 1.0, "max": 1.0, "count": 1,
                                  "sum": 1.0}
    assert mail["depth"] == {"pending": 1, "scheduled": 1, "failed": 0, "processing": 0}
    assert mail["oldest_waiting_age_s"] == 50.0
    assert (mail["workers"], mail["slots"], mail["busy_slots"], mail["utilisation"]) == \
        (2, 6, 0, 0.0)


def test_one_queue_and_a_short_window(store: Store) -> None:
    build(store)
    mail = store.q.metrics(3600, "mail").to_dict()
    assert mail["queue"] == "mail" and list(mail["queues"]) == ["mail"]
    assert mail["overall"] == mail["queues"]["mail"]
    assert mail["overall"]["runs"]["completed"] == 1
    # 15 minutes: c6 (mail) and c5 ended in it; the throughput spans are the same
    short = store.q.metrics(900).to_dict()["overall"]
    assert short["runs"] == {"completed": 2, "failed": 0, "dead": 0, "cancelled": 0,
                             "timeout": 0}
    assert short["duration_s"] == {"p50": 1.0, "p95": 170.0, "p99": 170.0, "max": 170.0,
                                   "count": 2, "sum": 171.0}
    assert short["throughput"]["window"] == short["throughput"]["15m"] == \
        {"runs": 2, "per_min": round(2 / 15, 3)}
    # two hours: the old job too
    assert store.q.metrics(7200).to_dict()["overall"]["runs"]["completed"] == 8


def test_an_empty_store(store: Store) -> None:
    overall = store.q.metrics(3600).to_dict()["overall"]
    assert overall["runs"] == dict.fromkeys(
        ["completed", "failed", "dead", "cancelled", "timeout"], 0)
    assert overall["success_rate"] is None and overall["retries"] == 0
    assert overall["duration_s"] == {"p50": None, "p95": None, "p99": None, "max": None,
                                     "count": 0, "sum": 0}
    assert overall["oldest_waiting_age_s"] is None and overall["utilisation"] is None
    assert overall["depth"]["pending"] == 0


def test_busy_slots_agree_with_the_processing_jobs(store: Store) -> None:
    build(store)
    processing = store.q.list_jobs([JobState.PROCESSING])
    report = store.q.metrics(3600)
    assert report.overall.busy_slots == len(processing) == 1
    assert store.q.status().busy_slots == 1
    assert [(w.id, w.busy) for w, _ in store.q.workers()] == [("w1", 1), ("w2", 0)]


def test_a_window_must_be_positive(store: Store) -> None:
    with pytest.raises(InvalidInput, match="longer than 0"):
        store.q.metrics(0)


def test_a_backlog_past_the_cap_is_counted_so_far_per_queue(
        store: Store, monkeypatch: Any) -> None:
    from queuectl import metrics

    monkeypatch.setattr(metrics, "LIVE_CAP", 3)
    for n in range(5):
        store.add(f"b{n}", NOW - 100 + n, "bulk")
    store.time = NOW
    report = store.q.metrics(3600)
    assert report.overall.depth["pending"] == 5 and not report.overall.depth_capped
    bulk = report.queues["bulk"]
    assert bulk.depth["pending"] == 3 and bulk.depth_capped
    assert bulk.oldest_waiting_age_s == 100.0  # read oldest first: still exact


def test_percentiles_over_the_latest_runs_past_the_sample_cap(
        store: Store, monkeypatch: Any) -> None:
    from queuectl import metrics

    build(store)
    assert store.q.metrics(3600).to_dict()["percentiles"] == \
        {"latest_runs": metrics.SAMPLE_CAP, "sampled": False}
    monkeypatch.setattr(metrics, "SAMPLE_CAP", 3)
    report = store.q.metrics(3600).to_dict()
    assert report["percentiles"] == {"latest_runs": 3, "sampled": True}
    overall = report["overall"]
    # the latest 3 rows (c5: 170 s, c6: 1 s, r1: 7 s, failed) and the earlier runs of
    # f1 (10 s) and p1 (6 s): 1 6 7 10 170; count, sum and max cover the 11 runs
    assert overall["duration_s"] == {"p50": 7.0, "p95": 170.0, "p99": 170.0, "max": 170.0,
                                     "count": 11, "sum": 209.5}
    # waits of the sample's completed and dead rows: c5 0 s, c6 1 s
    assert overall["wait_s"] == {"p50": 0.0, "p95": 1.0, "p99": 1.0, "count": 2}
    # the counts still cover every run of the window
    assert overall["runs"] == {"completed": 7, "failed": 3, "dead": 1, "cancelled": 1,
                               "timeout": 1}
    assert overall["throughput"]["window"]["runs"] == 11


def test_the_series_splits_the_window_in_sixty(store: Store) -> None:
    build(store)
    report = store.q.metrics(3600, series=True).to_dict()
    series = report["series"]
    assert series["bucket_s"] == 60.0
    assert len(series["runs"]) == len(series["completed"]) == 60
    assert sum(series["runs"]) == report["overall"]["throughput"]["window"]["runs"] == 11
    assert sum(series["completed"]) == 7
    # T = NOW - 3000 starts bucket 10: c1, c2, c3, c4 and f1's timeout (T + 50); f1's
    # retry (T + 66) and d1 (T + 100.75) in bucket 11; p1's failed run (history) in 15
    assert series["runs"][10] == 5 and series["completed"][10] == 4
    assert (series["runs"][11], series["completed"][11]) == (2, 1)
    assert (series["runs"][15], series["completed"][15]) == (1, 0)
    assert series["runs"][59] == 1  # c5, 30 s before now
    assert "series" not in store.q.metrics(3600).to_dict()


@pytest.mark.parametrize("since_s", [3600.0, 1800.0, 900.0])
def test_one_walk_of_an_aligned_window_gives_the_separate_reads_figures(
        store: Store, since_s: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default hour (and 15, 20, 30 minutes) reads the window once, per bucket, and
    takes the spans and the series from it: the same figures as reading the window,
    the spans and the series apart, runs ended exactly on a span's edge and one ended
    after now (another host's clock) included."""
    import queuectl.metrics as metrics

    build(store)
    for i, ago in enumerate((60.0, 300.0, 900.0, 59.5, 299.5, 899.5, 1800.0, -5.0)):
        store.run(f"edge{i}", NOW - ago - 3, NOW - ago - 2, NOW - ago,
                  JobState.DEAD if i % 3 == 0 else JobState.COMPLETED,
                  queue="other" if i % 2 else "default")
    store.add("gone", NOW - 120)
    store.q.backend.transition("gone", Transition.CANCEL, NOW - 60)
    store.time = NOW
    assert metrics.aligned(since_s)
    one_walk = store.q.metrics(since_s, series=True).to_dict()
    monkeypatch.setattr(metrics, "aligned", lambda since_s: False)
    assert store.q.metrics(since_s, series=True).to_dict() == one_walk
    assert one_walk["overall"]["throughput"]["1m"]["runs"] >= 2  # the edges are in it


def test_a_window_not_aligned_reads_the_spans_apart() -> None:
    import queuectl.metrics as metrics

    assert [s for s in (600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0, 86400.0)
            if metrics.aligned(s)] == [900.0, 1200.0, 1800.0, 3600.0]
