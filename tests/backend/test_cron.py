"""Cron schedules on both stores, on an injected clock: each instant fires exactly once
however many callers race on it, catch-up after downtime, --no-overlap, --unique,
pause/resume and `cron run`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import pytest

from queuectl import cron
from queuectl.backends import open_backend
from queuectl.errors import InvalidInput, NotFound
from queuectl.queue import Queue
from queuectl.states import JobState

UTC = ZoneInfo("UTC")
# a Thursday, 10:00 UTC
T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 - 30)  # half a minute before an instant


@pytest.fixture
def queue(store_url: str, clock: Clock) -> Iterator[Queue]:
    q = Queue(store_url, clock=clock)
    try:
        yield q
    finally:
        q.close()


def add(queue: Queue, name: str = "tick", schedule: str = "* * * * *", **options: Any
        ) -> None:
    fields = {"command": options.pop("command", "echo tick")}
    fields.update(options.pop("fields", {}))
    cron.add(queue, name, schedule, fields, tz=options.pop("tz", "UTC"),
             unique=options.pop("unique", False), catch_up=options.pop("catch_up", "one"),
             no_overlap=options.pop("no_overlap", False))


def runs(queue: Queue, name: str = "tick") -> list[str]:
    return sorted(job.id for job in queue.list_jobs(limit=10_000)
                  if job.id.startswith(name + "@"))


def test_a_due_instant_fires_once_with_its_template(queue: Queue, clock: Clock) -> None:
    add(queue, fields={"queue": "mail", "priority": 8, "timeout": 30, "max_retries": 2})
    assert cron.fire_due(queue.backend, clock.now) == []  # not yet due
    clock.now = T0 + 0.5
    fired = cron.fire_due(queue.backend, clock.now)
    assert fired == ["tick@2026-12-03T10:00+00:00"]
    job = queue.get(fired[0])
    assert (job.command, job.queue, job.priority, job.timeout, job.max_retries,
            job.state) == ("echo tick", "mail", 8, 30, 2, JobState.PENDING)
    assert cron.fire_due(queue.backend, clock.now) == []  # the same instant: nothing
    schedule = cron.get(queue, "tick")
    assert schedule.next_fire_at == T0 + 60 and schedule.last_fire_at == T0
    assert schedule.last_job_id == fired[0] and schedule.last_state == "pending"
    assert queue.backend.cron_next_fire_at() == T0 + 60


def test_racing_callers_fire_each_instant_exactly_once(store_url: str, queue: Queue,
                                                       clock: Clock) -> None:
    """Eight threads, each with its own store connection (as eight supervisors on as
    many hosts), fire the same schedule at the same instants."""
    add(queue)
    add(queue, "other", "*/2 * * * *")
    racers = 8
    stores = [open_backend(store_url, durable=False) for _ in range(racers)]
    won: list[list[str]] = [[] for _ in range(racers)]
    errors: list[BaseException] = []
    for minute in range(5):
        now = T0 + minute * 60 + 1
        barrier = threading.Barrier(racers)

        def race(index: int, now: float = now, barrier: threading.Barrier = barrier
                 ) -> None:
            try:
                barrier.wait(timeout=10)
                won[index].extend(cron.fire_due(stores[index], now))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    for store in stores:
        store.close()
    assert not errors, errors
    fired = sorted(job_id for ids in won for job_id in ids)
    assert fired == sorted(set(fired))  # no instant enqueued twice
    assert fired == sorted(runs(queue, "tick") + runs(queue, "other"))
    assert runs(queue, "tick") == [f"tick@2026-12-03T10:0{m}+00:00" for m in range(5)]
    assert runs(queue, "other") == [f"other@2026-12-03T10:0{m}+00:00" for m in (0, 2, 4)]


FIRE_STEP = """
import json, sys, time
from queuectl import cron
from queuectl.backends import open_backend
store = open_backend(sys.argv[1], durable=False)
start = float(sys.argv[2])
while time.time() < start:  # all processes step in together
    time.sleep(0.001)
won = []
for minute in range(3):
    won += cron.fire_due(store, float(sys.argv[3]) + minute * 60 + 1)
store.close()
print(json.dumps(won))
"""


def test_racing_processes_fire_each_instant_exactly_once(store_url: str, queue: Queue
                                                         ) -> None:
    """Four processes (four supervisors' fire steps, separate connections and, on
    SQLite, separate locks) fire the same instants."""
    import time

    add(queue)
    start = time.time() + 1.5  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", FIRE_STEP, store_url, str(start),
                               str(T0)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
    fired = sorted(job_id for out, _ in outputs for job_id in json.loads(out))
    assert fired == runs(queue) == [f"tick@2026-12-03T10:0{m}+00:00" for m in range(3)]


@pytest.mark.parametrize("mode, expected", [
    ("one", ["tick@2026-12-03T10:10+00:00"]),
    ("all", [f"tick@2026-12-03T10:{m:02d}+00:00" for m in range(0, 11)]),
    ("none", []),
])
def test_catch_up_after_downtime(queue: Queue, clock: Clock, mode: str,
                                 expected: list[str]) -> None:
    add(queue, catch_up=mode)
    clock.now = T0 + 10 * 60 + 5  # nothing ran for ten minutes: 11 instants missed
    cron.fire_due(queue.backend, clock.now)
    assert runs(queue) == expected
    assert cron.get(queue, "tick").next_fire_at == T0 + 11 * 60  # the next future one
    clock.now = T0 + 11 * 60 + 1  # back to normal: the next instant fires in each mode
    cron.fire_due(queue.backend, clock.now)
    assert runs(queue)[-1] == "tick@2026-12-03T10:11+00:00"


def test_catch_up_none_still_runs_an_instant_on_time(queue: Queue, clock: Clock) -> None:
    add(queue, catch_up="none")
    clock.now = T0 + cron.ON_TIME_S - 1
    assert cron.fire_due(queue.backend, clock.now) == ["tick@2026-12-03T10:00+00:00"]
    clock.now = T0 + 60 + cron.ON_TIME_S + 1  # too late for 10:01: skipped
    assert cron.fire_due(queue.backend, clock.now) == []
    assert cron.get(queue, "tick").next_fire_at == T0 + 120


def test_no_overlap_skips_while_the_last_run_is_live(queue: Queue, clock: Clock) -> None:
    add(queue, no_overlap=True)
    clock.now = T0 + 1
    first = cron.fire_due(queue.backend, clock.now)
    assert len(first) == 1
    clock.now = T0 + 61  # the 10:00 run still pending: 10:01 is skipped
    assert cron.fire_due(queue.backend, clock.now) == []
    assert cron.get(queue, "tick").next_fire_at == T0 + 120
    job = queue.backend.claim("w1", "h:1/1", None, clock.now)
    assert job is not None and job.id == first[0]
    assert queue.backend.finish(job, JobState.COMPLETED, None, now=clock.now, exit_code=0,
                                error=None, output="", history_entry={})
    clock.now = T0 + 121  # the last run ended: 10:02 runs
    assert cron.fire_due(queue.backend, clock.now) == ["tick@2026-12-03T10:02+00:00"]
    assert cron.get(queue, "tick").last_state == "pending"


def test_unique_runs_fold_into_the_live_one(queue: Queue, clock: Clock) -> None:
    add(queue, unique=True)
    clock.now = T0 + 1
    first = cron.fire_due(queue.backend, clock.now)
    clock.now = T0 + 61
    assert cron.fire_due(queue.backend, clock.now) == first  # the live run
    assert runs(queue) == first
    assert queue.get(first[0]).unique_key == "cron:tick"


def test_pause_resume_remove_and_run(queue: Queue, clock: Clock) -> None:
    add(queue)
    clock.now = T0 + 1
    assert not cron.set_paused(queue, "tick", False).paused  # not paused: unchanged
    assert cron.get(queue, "tick").next_fire_at == T0  # the due instant is kept
    cron.set_paused(queue, "tick", True)
    clock.now = T0 + 5 * 60 + 1
    assert cron.fire_due(queue.backend, clock.now) == []
    resumed = cron.set_paused(queue, "tick", False)
    assert not resumed.paused and resumed.next_fire_at == T0 + 6 * 60  # no catch-up
    job_id = cron.run_now(queue, "tick")
    assert job_id.startswith("tick@run-") and queue.get(job_id).command == "echo tick"
    schedule = cron.get(queue, "tick")
    assert schedule.last_job_id == job_id and schedule.next_fire_at == T0 + 6 * 60
    cron.remove(queue, "tick")
    for call in (lambda: cron.remove(queue, "tick"), lambda: cron.run_now(queue, "tick"),
                 lambda: cron.set_paused(queue, "tick", True)):
        with pytest.raises(NotFound):
            call()
    assert queue.get(job_id).state is JobState.PENDING  # its runs stay


def test_a_schedule_added_again_under_an_old_name(queue: Queue, clock: Clock) -> None:
    """The run ids of a removed schedule's instants exist: the new one's runs at those
    instants are the old jobs, and the schedule moves on instead of sticking."""
    add(queue)
    clock.now = T0 + 1
    fired = cron.fire_due(queue.backend, clock.now)
    cron.remove(queue, "tick")
    clock.now = T0 - 30
    add(queue, command="echo new")
    clock.now = T0 + 1
    assert cron.fire_due(queue.backend, clock.now) == fired
    assert cron.get(queue, "tick").next_fire_at == T0 + 60


def test_bad_input_writes_nothing(queue: Queue) -> None:
    add(queue)
    before = queue.backend.cron_list()
    for schedule, options in [("61 * * * *", {}), ("@often", {}), ("* * * *", {}),
                              ("* * * * *", {"tz": "Mars/Base"}),
                              ("* * * * *", {"catch_up": "some"}),
                              ("* * * * *", {"fields": {"priority": 11}})]:
        with pytest.raises(InvalidInput):
            add(queue, "new", schedule, **options)
    with pytest.raises(InvalidInput, match="already exists"):
        add(queue)
    assert queue.backend.cron_list() == before
