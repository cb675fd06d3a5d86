"""A queue's concurrency limit with real supervisors, on both stores: the jobs
themselves stamp their start and end into a file, and the concurrency those stamps
show never exceeds the limit across 8 supervisors of 2 slots, and reaches it; a pause
and resume under that load loses nothing; a worker serving two queues keeps running
the other while one is at its limit, and the limit holds after a timeout, a killed
job and a cancel."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState
from tests.conftest import wait_for
from tests.integration.conftest import process_running


@pytest.fixture
def store(db: str) -> Iterator[Queue]:
    queue = Queue(db)
    try:
        yield queue
    finally:
        queue.close()


def _stamped(path: Path, seconds: float) -> str:
    """A job that appends `s ID TIME` when it starts and `e ID TIME` before it ends."""
    return (f'echo "s $QUEUECTL_JOB_ID $(date +%s.%N)" >> {path}; sleep {seconds}; '
            f'echo "e $QUEUECTL_JOB_ID $(date +%s.%N)" >> {path}')


def _stamps(path: Path) -> list[tuple[str, str, float]]:
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(kind, job, float(at)) for kind, job, at in rows]


def _max_concurrency(stamps: list[tuple[str, str, float]]) -> int:
    """Most jobs between their start and end stamps at once (an end at the same
    instant as a start counts first)."""
    running = peak = 0
    for kind, _, _ in sorted(stamps, key=lambda s: (s[2], s[0] == "s")):
        running += 1 if kind == "s" else -1
        peak = max(peak, running)
    return peak


def _running(store: Queue, queue: str) -> int:
    return store.queue_counts().get(queue, {}).get(JobState.PROCESSING, 0)


def test_eight_supervisors_never_run_more_than_the_limit(store: Queue, workers: Any,
                                                         tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    count = 18
    store.set_limit("a", 3)
    store.enqueue([NewJob(command=_stamped(stamps, 0.3), id=f"a{i:02d}", queue="a")
                   for i in range(count)])
    for _ in range(8):
        workers.start("--count", "2")
    wait_for(lambda: len([s for s in _stamps(stamps) if s[0] == "s"]) >= 6, 60, 0.05)
    store.set_paused(["a"], True)  # under load: running jobs finish, none starts
    wait_for(lambda: _running(store, "a") == 0, 30)
    started = len([s for s in _stamps(stamps) if s[0] == "s"])
    assert started < count
    assert store.queue_counts()["a"][JobState.PENDING] == count - started
    store.set_paused(["a"], False)
    wait_for(lambda: store.queue_counts()["a"].get(JobState.COMPLETED, 0) == count, 90)
    seen = _stamps(stamps)
    peak = _max_concurrency(seen)
    print(f"max concurrency observed by the jobs: {peak} (limit 3)")
    assert peak == 3
    # every job ran once, start and end
    assert sorted(job for kind, job, _ in seen if kind == "s") == \
        [f"a{i:02d}" for i in range(count)]
    assert sorted(job for kind, job, _ in seen if kind == "e") == \
        [f"a{i:02d}" for i in range(count)]
    assert all(store.get(f"a{i:02d}").attempts == 1 for i in range(count))


def test_a_worker_runs_the_other_queue_and_the_limit_survives_failures(
        store: Queue, workers: Any, tmp_path: Path) -> None:
    stamps = tmp_path / "stamps"
    marker = f"{os.getpid()}{time.monotonic_ns() % 10**6:06d}"
    store.set_limit("a", 1)
    store.enqueue([
        NewJob(command="sleep 30", id="a-timeout", queue="a", priority=10, timeout=1.5,
               max_retries=0),
        NewJob(command="kill -9 $$", id="a-killed", queue="a", priority=9, max_retries=0),
        NewJob(command=f"sleep 30.{marker}", id="a-cancel", queue="a", priority=8),
        *[NewJob(command=_stamped(stamps, 0.2), id=f"a-last{i}", queue="a", priority=1)
          for i in range(3)],
    ])
    store.enqueue([NewJob(command="true", id=f"b{i}", queue="b") for i in range(6)])
    workers.start("--count", "3", "--queue", "a", "--queue", "b")
    # while a-timeout holds a's only slot, the other slots run all of b
    wait_for(lambda: store.queue_counts().get("b", {}).get(JobState.COMPLETED, 0) == 6, 30)
    assert store.get("a-timeout").state is JobState.PROCESSING
    assert _running(store, "a") == 1
    wait_for(lambda: store.get("a-cancel").state is JobState.PROCESSING, 30)
    assert store.get("a-timeout").state is JobState.DEAD
    assert store.get("a-killed").state is JobState.DEAD
    store.cancel("a-cancel")
    wait_for(lambda: all(store.get(f"a-last{i}").state is JobState.COMPLETED
                         for i in range(3)), 30)
    # after a timeout, a kill and a cancel the limit still admits exactly one
    assert _max_concurrency(_stamps(stamps)) == 1
    assert store.get("a-cancel").state is JobState.CANCELLED
    wait_for(lambda: not process_running(f"sleep 30.{marker}"), 10)
