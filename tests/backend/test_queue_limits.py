"""Per-queue concurrency limits (`queue limit`), on both stores: a claim never takes a
limited queue past its limit (batches included), takes other queues' jobs meanwhile,
frees the slot on every way out of `processing`, and holds under claims racing from
many connections; setting a limit and resuming a queue wake idle workers."""

from __future__ import annotations

import select
import threading
import time
from typing import Any, Iterator

import pytest

from queuectl import wakeup
from queuectl.backends import open_backend
from queuectl.errors import InvalidInput
from queuectl.models import Job, NewJob
from queuectl.queue import Queue
from queuectl.states import JobState, Transition

T0 = 1_700_000_000.0


@pytest.fixture
def q(store_url: str) -> Iterator[Queue]:
    queue = Queue(store_url, clock=lambda: T0)
    queue.backend.clear()
    _reset(queue)
    try:
        yield queue
    finally:
        _reset(queue)
        queue.close()


def _reset(queue: Queue) -> None:
    queue.set_paused([], False, every=True)
    for name, _, limit in queue.backend.queue_rows():
        if limit is not None:
            queue.set_limit(name, None)


def _claim(q: Queue, slots: int, queues: list[str] | None = None,
           results: list[Any] | None = None, worker_id: str = "w1") -> list[Job]:
    _, jobs = q.backend.finish_and_claim(
        results or [], worker_id=worker_id, workers=[f"h:1/{n}" for n in range(slots)],
        queues=queues, now=T0 + 10)
    return jobs


def _done(job: Job, state: JobState = JobState.COMPLETED) -> tuple[Any, ...]:
    return (job, state, T0 + 100 if state is JobState.FAILED else None,
            dict(now=T0 + 11, exit_code=0, error=None, output=None, history_entry={}))


def _running(q: Queue, queue: str) -> int:
    return q.backend.queue_counts().get(queue, {}).get(JobState.PROCESSING, 0)


def _enqueue(q: Queue, queue: str, count: int, priority: int = 5) -> None:
    q.backend.enqueue([NewJob(command="true", id=f"{queue}{i}", queue=queue,
                              priority=priority) for i in range(count)], T0)


def test_a_batch_claim_takes_the_room_and_fills_up_from_other_queues(q: Queue) -> None:
    _enqueue(q, "a", 6, priority=9)  # the limited queue's jobs come first in claim order
    _enqueue(q, "b", 6)
    assert q.set_limit("a", 2) == "a"
    first = _claim(q, 4)
    assert [job.id for job in first] == ["a0", "a1", "b0", "b1"]
    assert [job.id for job in _claim(q, 3)] == ["b2", "b3", "b4"]  # a is full
    assert _claim(q, 2, ["a"]) == [] and q.backend.claim("w1", "x", ["a"], T0 + 10) is None
    listed = {row["name"]: row for row in q.queue_list()}
    assert (listed["a"]["limit"], listed["a"]["running"]) == (2, 2)
    # the finishing step's freed slot takes the limited queue's next job at once
    assert [job.id for job in _claim(q, 1, results=[_done(first[0])])] == ["a2"]
    q.set_limit("a", None)
    assert [job.id for job in _claim(q, 3, ["a"])] == ["a3", "a4", "a5"]


def test_every_way_out_of_processing_frees_the_slot(q: Queue) -> None:
    """The room is counted from the running jobs, so nothing can drift: a finish
    (completed, failed for a retry, dead), a requeue (rescue, stop --now), a cancel."""
    _enqueue(q, "a", 8)
    q.set_limit("a", 1)
    ways = [
        lambda job: _claim(q, 0, results=[_done(job)]),
        lambda job: _claim(q, 0, results=[_done(job, JobState.FAILED)]),
        lambda job: _claim(q, 0, results=[_done(job, JobState.DEAD)]),
        lambda job: q.backend.requeue(job, now=T0 + 11, count_attempt=True, rescued=True,
                                      history_entry={"event": "rescued"}),
        lambda job: q.backend.transition(job.id, Transition.CANCEL, T0 + 11),
    ]
    for way in ways:
        held = _claim(q, 2)
        assert len(held) == 1 and _claim(q, 2) == []
        way(held[0])
        assert _running(q, "a") == 0
    assert len(_claim(q, 3)) == 1  # still exactly one


def test_a_lowered_limit_lets_running_jobs_finish_and_starts_none_until_below(
        q: Queue) -> None:
    _enqueue(q, "a", 6)
    held = _claim(q, 3)
    q.set_limit("a", 1)
    assert _claim(q, 2) == []
    _claim(q, 0, results=[_done(held[0])])
    assert _claim(q, 2) == []  # 2 still run
    _claim(q, 0, results=[_done(held[1])])
    assert _claim(q, 2) == []
    assert len(_claim(q, 2, results=[_done(held[2])])) == 1
    q.set_limit("a", 0)  # a limit of 0 starts nothing, like a pause
    assert _running(q, "a") == 1 and _claim(q, 2) == []


def test_bad_limits_change_nothing(q: Queue) -> None:
    for bad in (-1, 2**31, 1.5, True, "3"):
        with pytest.raises(InvalidInput, match="whole number"):
            q.set_limit("a", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="invalid queue name"):
        q.set_limit("bad name", 3)
    assert q.backend.queue_rows() == [] or all(
        limit is None for _, _, limit in q.backend.queue_rows())


def test_racing_claims_from_many_connections_never_exceed_the_limit(
        q: Queue, store_url: str) -> None:
    """8 connections, 2 slots each, claiming and finishing as fast as they can: the
    limit's queue never has more than 3 running, seen by each claimer after each of
    its claims (an excess would last until a finish), and it does reach 3."""
    limit, per_thread = 3, 25
    _enqueue(q, "a", 8 * per_thread)
    _enqueue(q, "b", 40)
    q.set_limit("a", limit)
    seen: list[int] = []
    errors: list[BaseException] = []

    def claimer(index: int) -> None:
        backend = open_backend(store_url, durable=False)
        held: list[Job] = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                finished = [_done(job) for job in held[:1]]
                _, claimed = backend.finish_and_claim(
                    finished, worker_id=f"w{index}", queues=["a"],
                    workers=[f"h{index}:1/{n}" for n in range(2 - len(held) + len(finished))],
                    now=T0 + 10)
                held = held[len(finished):] + claimed
                running = backend.queue_counts().get("a", {}).get(JobState.PROCESSING, 0)
                seen.append(running)
                counts = backend.queue_counts().get("a", {})
                if not held and not counts.get(JobState.PENDING, 0):
                    return
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            backend.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    assert max(seen) == limit, max(seen)
    counts = q.backend.queue_counts()
    assert counts["a"][JobState.COMPLETED] == 8 * per_thread
    assert counts["b"][JobState.PENDING] == 40  # other queues were not touched


def _wakeups(q: Queue) -> Any:
    """A wake-up channel as a supervisor of this store has: LISTEN on PostgreSQL,
    a socket in the wake folder on SQLite.  Returns (fd, drain)."""
    if q.backend.notifies_through_store:
        listener_backend = open_backend(q.url)
        fd = listener_backend.wakeup_fd()
        assert fd is not None
        return listener_backend, fd, listener_backend.drain_wakeups
    listener = wakeup.Listener(q.url, "test-listener")
    return listener, listener.fileno(), listener.drain


def _woken(fd: int, drain: Any) -> bool:
    ready, _, _ = select.select([fd], [], [], 5.0)
    drain()
    return bool(ready)


def test_a_limit_change_a_resume_and_a_freed_slot_wake_idle_workers(q: Queue) -> None:
    _enqueue(q, "a", 3)
    holder, fd, drain = _wakeups(q)
    try:
        drain()
        q.set_limit("a", 1)
        assert _woken(fd, drain)
        q.set_paused(["a"], True)
        q.set_paused(["a"], False)
        assert _woken(fd, drain)
        held = _claim(q, 2)
        assert len(held) == 1
        drain()
        _claim(q, 0, results=[_done(held[0])])  # a slot of a limited queue frees
        assert _woken(fd, drain)
    finally:
        holder.close()
