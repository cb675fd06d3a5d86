"""Job events (`queuectl.jobevents`): what `wait` and `logs -f` are built on, driven
with an injected sleep that changes the store between polls (no real waiting)."""

from __future__ import annotations

from typing import Callable, Iterator

import pytest

from queuectl import jobevents as ev
from queuectl.errors import NotFound
from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState

NOW = 1_700_000_000.0


@pytest.fixture
def q(store_url: str) -> Iterator[Queue]:
    queue = Queue(store_url, clock=lambda: NOW)
    yield queue
    queue.close()


def _run(q: Queue, job_id: str, state: JobState, output: str = "") -> None:
    """Claim the job and record its end in `state` (as a worker would)."""
    job = q.backend.claim("w1", "host:1/1", None, NOW)
    assert job is not None and job.id == job_id
    assert q.backend.finish(job, state, None, now=NOW, exit_code=0 if state is
                            JobState.COMPLETED else 1, error=None, output=output or None,
                            history_entry={"attempt": job.attempts, "result": state.value})


def _steps(*actions: Callable[[], None]) -> Callable[[float], None]:
    """A sleep() that performs the next action each time it is called."""
    pending = list(actions)

    def sleep(_seconds: float) -> None:
        if pending:
            pending.pop(0)()

    return sleep


def test_watch_reports_each_change_and_ends_when_all_finished(q: Queue) -> None:
    q.enqueue([NewJob(command="true", id="a1b2"), NewJob(command="false", id="c3d4")])
    sleep = _steps(lambda: _run(q, "a1b2", JobState.COMPLETED),
                   lambda: _run(q, "c3d4", JobState.DEAD))
    events = list(ev.watch(q, ["a1b2", "c3d4"], sleep=sleep))
    changes = [(e.job.id, e.job.state) for e in events if isinstance(e, ev.StateChanged)]
    assert changes == [("a1b2", JobState.PENDING), ("c3d4", JobState.PENDING),
                       ("a1b2", JobState.COMPLETED), ("c3d4", JobState.DEAD)]
    done = events[-1]
    assert isinstance(done, ev.WatchDone)
    assert not done.timed_out and not done.all_completed
    assert [j.state for j in done.jobs] == [JobState.COMPLETED, JobState.DEAD]


def test_watch_times_out_on_the_injected_clock(q: Queue) -> None:
    q.enqueue([NewJob(command="true", id="slow")])
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    events = list(ev.watch(q, ["slow"], 0.25, clock=lambda: now[0], sleep=sleep))
    done = events[-1]
    assert isinstance(done, ev.WatchDone) and done.timed_out
    assert done.jobs[0].state is JobState.PENDING
    assert slept == pytest.approx([0.1, 0.1, 0.05])  # never sleeps past the deadline
    assert now[0] == pytest.approx(100.25)


def test_watch_of_a_deleted_job_is_not_found(q: Queue) -> None:
    q.enqueue([NewJob(command="true", id="gone1")])
    events = ev.watch(q, ["gone1"], sleep=_steps(lambda: q.clear() and None))
    assert isinstance(next(events), ev.StateChanged)
    with pytest.raises(NotFound):
        next(events)


def test_queue_watch_resolves_prefixes_and_duplicates_once(q: Queue) -> None:
    q.enqueue([NewJob(command="true", id="prefix-job")])
    _run(q, "prefix-job", JobState.COMPLETED)
    events = list(q.watch(["prefix", "prefix-job"]))
    assert [type(e) for e in events] == [ev.StateChanged, ev.WatchDone]
    done = events[-1]
    assert isinstance(done, ev.WatchDone) and done.all_completed and len(done.jobs) == 1


def test_follow_of_a_job_that_ran_elsewhere_gives_its_stored_output(q: Queue) -> None:
    q.enqueue([NewJob(command="echo hi", id="elsewhere")])
    sleep = _steps(lambda: _run(q, "elsewhere", JobState.COMPLETED, output="hi\n"))
    events = list(ev.follow(q, "elsewhere", sleep=sleep))
    assert events[0] == ev.Output("hi\n")
    assert isinstance(events[-1], ev.Ended)
    assert events[-1].job.state is JobState.COMPLETED


def test_a_follower_closed_early_lets_go_of_the_run_it_reads(
        q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboard page closed while a job runs closes its follower: the reader of the
    run's capture (a descriptor of the worker's memfd on this host) is closed too."""
    q.enqueue([NewJob(command="sleep 100", id="long")])
    assert q.backend.claim("w1", "host:1/1", None, NOW) is not None
    closed: list[bool] = []

    class Capture:
        def read(self) -> tuple[str, int, bool]:
            return "x", 0, False

        def close(self) -> str:
            closed.append(True)
            return ""

    monkeypatch.setattr(ev, "_live_reader", lambda queue, job: Capture())
    events = ev.follow(q, "long", sleep=lambda _: None)
    assert isinstance(next(events), ev.Output)
    events.close()  # type: ignore[attr-defined]
    assert closed == [True]


def test_watch_live_waits_for_the_jobs_live_when_it_began(q: Queue) -> None:
    """`wait` without ids: the live jobs of the queue at the start, newest first; a job
    added meanwhile is not waited for, a deleted one drops out, other queues are not
    looked at."""
    q.enqueue([NewJob(command="true", id="first"), NewJob(command="true", id="second"),
               NewJob(command="true", id="doomed"),
               NewJob(command="true", id="elsewhere", queue="other")])
    sleep = _steps(lambda: _run(q, "first", JobState.COMPLETED),
                   lambda: (q.enqueue([NewJob(command="true", id="late")]), None)[1],
                   lambda: (q.remove("doomed"), None)[1],
                   lambda: _run(q, "second", JobState.DEAD))
    events = list(ev.watch_live(q, "default", sleep=sleep))
    assert events[0] == ev.Watching(3)
    changes = [(e.job.id, e.job.state) for e in events if isinstance(e, ev.StateChanged)]
    assert changes == [("doomed", JobState.PENDING), ("second", JobState.PENDING),
                       ("first", JobState.PENDING), ("first", JobState.COMPLETED),
                       ("second", JobState.DEAD)]
    done = events[-1]
    assert isinstance(done, ev.WatchDone) and not done.timed_out
    assert [(j.id, j.state) for j in done.jobs] == [("second", JobState.DEAD),
                                                    ("first", JobState.COMPLETED)]
    assert q.get("late").state is JobState.PENDING  # not waited for
    assert q.get("elsewhere").state is JobState.PENDING


def test_watch_live_of_nothing_ends_at_once_and_times_out_on_the_clock(q: Queue) -> None:
    events = list(ev.watch_live(q, sleep=lambda _: pytest.fail("slept")))
    assert events == [ev.Watching(0), ev.WatchDone([], False)]
    q.enqueue([NewJob(command="true", id="stuck")])
    now = [5.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    done = list(ev.watch_live(q, None, 0.3, clock=lambda: now[0], sleep=sleep))[-1]
    assert isinstance(done, ev.WatchDone) and done.timed_out and not done.all_completed
    assert now[0] == pytest.approx(5.3)


class _Chunks:
    """A run's capture that has `before` already and gets `after` once polled."""

    def __init__(self, before: list[str], after: list[str]) -> None:
        self.before, self.after, self.polled = list(before), list(after), False

    def read(self) -> tuple[str, int, bool]:
        source = self.before if self.before or not self.polled else self.after
        if not source:
            return "", 0, False
        return source.pop(0), 0, bool(source)

    def close(self) -> str:
        return ""


def test_follow_with_a_tail_cuts_what_was_there_and_shows_what_comes(
        q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    q.enqueue([NewJob(command="seq 5", id="tailed")])
    assert q.backend.claim("w1", "host:1/1", None, NOW) is not None
    chunks = _Chunks(["1\n2\n", "3\n4\n"], ["5\n", "6\n"])
    monkeypatch.setattr(ev, "_live_reader", lambda queue, job: chunks)

    def sleep(_seconds: float) -> None:
        if chunks.polled:
            _run_claimed(q, "tailed")
        chunks.polled = True

    events = list(ev.follow(q, "tailed", sleep=sleep, tail=1))
    assert [e.text for e in events if isinstance(e, ev.Output)] == ["4\n", "5\n", "6\n"]
    assert isinstance(events[-1], ev.Ended)


def test_follow_with_a_tail_of_a_finished_job_gives_its_last_lines(q: Queue) -> None:
    q.enqueue([NewJob(command="seq 3", id="over")])
    _run(q, "over", JobState.COMPLETED, output="1\n2\n3")
    events = list(ev.follow(q, "over", sleep=lambda _: None, tail=2))
    assert events[0] == ev.Output("2\n3") and isinstance(events[-1], ev.Ended)
    assert [type(e) for e in ev.follow(q, "over", tail=0)] == [ev.Ended]


def _run_claimed(q: Queue, job_id: str) -> None:
    job = q.get(job_id)
    assert q.backend.finish(job, JobState.COMPLETED, None, now=NOW, exit_code=0,
                            error=None, output=None,
                            history_entry={"attempt": job.attempts, "result": "completed"})


def test_follow_gives_the_stored_output_of_a_last_run_it_could_not_watch(
        q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attempt 1 is followed live; attempt 2 runs where it cannot be read live (another
    host, or between two looks): its stored output still ends the follow."""
    q.enqueue([NewJob(command="flaky", id="flaky", max_retries=3)])
    first = q.backend.claim("w1", "host:1/1", None, NOW)
    assert first is not None

    class Capture:
        def __init__(self) -> None:
            self.sent = False

        def read(self) -> tuple[str, int, bool]:
            if self.sent:
                return "", 0, False
            self.sent = True
            return "attempt 1\n", 0, False

        def close(self) -> str:
            return ""

    monkeypatch.setattr(ev, "_live_reader",
                        lambda queue, job: Capture() if job.attempts == 1 else None)

    def second_run() -> None:
        assert q.backend.finish(first, JobState.FAILED, NOW + 1, now=NOW, exit_code=1,
                                error="exit 1", output="attempt 1\n",
                                history_entry={"attempt": 1, "result": "failed"})
        again = q.backend.claim("w2", "other:2/1", None, NOW + 2)
        assert again is not None and again.attempts == 2
        assert q.backend.finish(again, JobState.COMPLETED, None, now=NOW + 3, exit_code=0,
                                error=None, output="attempt 2\n",
                                history_entry={"attempt": 2, "result": "completed"})

    events = list(ev.follow(q, "flaky", sleep=_steps(second_run)))
    shown = [event.text for event in events if isinstance(event, ev.Output)]
    assert shown == ["attempt 1\n", "attempt 2\n"]
    assert isinstance(events[-1], ev.Ended) and events[-1].job.state is JobState.COMPLETED
