"""The supervisor's periodic services (queuectl.worker.services) on a fake clock, over a
real store (both stores): each runs when its interval has passed on the clock it was
given, not before, and does what it says in the store."""

from __future__ import annotations

import os
import time
from typing import Iterator

import pytest

from queuectl.models import NewJob, WorkerInfo
from queuectl.queue import Queue
from queuectl.states import JobState
from queuectl.worker import unrecorded
from queuectl.worker.context import Clock, WorkerContext
from queuectl.worker.executor import TRIM_CHECK_S, Executor
from queuectl.worker.fence import Fence
from queuectl.worker.services import (
    CRON_CHECK_S,
    RESCUE_INTERVAL_S,
    CancelWatch,
    CronFire,
    Heartbeat,
    PollTick,
    Promotion,
    Rescue,
    Trim,
)


class FakeClock(Clock):
    """Monotonic and wall time that move only when the test moves them."""

    def __init__(self) -> None:
        self.m = 1000.0
        self.w = time.time()

    def mono(self) -> float:
        return self.m

    def wall(self) -> float:
        return self.w

    def advance(self, seconds: float) -> None:
        self.m += seconds
        self.w += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(store_url: str, clock: FakeClock) -> Iterator[WorkerContext]:
    queue = Queue(store_url, durable=False)
    settings = queue.settings()
    context = WorkerContext(queue=queue, worker_id="w-test", host="testhost", slots=1,
                            queues=None, settings=settings,
                            fence=Fence(settings.lease_timeout,
                                        settings.heartbeat_interval, clock.mono),
                            clock=clock)
    queue.backend.register_worker(WorkerInfo(
        id="w-test", host="testhost", pid=1, slots=1, queues=[], started_at=clock.w,
        heartbeat_at=clock.w))
    yield context
    queue.close()


def heartbeat_at(ctx: WorkerContext, worker_id: str = "w-test") -> float:
    return next(w.heartbeat_at for w in ctx.backend.list_workers() if w.id == worker_id)


def test_heartbeat_reports_alive_once_its_interval_has_passed(
        ctx: WorkerContext, clock: FakeClock) -> None:
    stops: list[bool] = []
    ex = Executor(ctx, 1)
    beat = Heartbeat(ctx, ex, CancelWatch(ctx, ex), stops.append)
    start = heartbeat_at(ctx)
    interval = ctx.settings.heartbeat_interval
    clock.advance(interval - 0.01)
    beat.tick(clock.mono())
    assert heartbeat_at(ctx) == pytest.approx(start)
    clock.advance(0.01)
    beat.tick(clock.mono())
    assert heartbeat_at(ctx) == pytest.approx(clock.w)
    assert beat.wanted_at() == pytest.approx(clock.m + interval)
    assert stops == []


@pytest.mark.parametrize(("mode", "now", "reason"), [
    ("graceful", False, "worker stop"), ("now", True, "worker stop --now")])
def test_heartbeat_carries_stop_requests(ctx: WorkerContext, clock: FakeClock,
                                         mode: str, now: bool, reason: str) -> None:
    stops: list[bool] = []
    ex = Executor(ctx, 1)
    beat = Heartbeat(ctx, ex, CancelWatch(ctx, ex), stops.append)
    assert ctx.backend.request_stop(mode, ["w-test"]) == 1
    clock.advance(ctx.settings.heartbeat_interval)
    beat.tick(clock.mono())
    assert stops == [now] and ctx.exit_reason == reason


def test_an_acknowledged_heartbeat_lifts_the_fence_and_claims_again(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ex = Executor(ctx, 1)
    beat = Heartbeat(ctx, ex, CancelWatch(ctx, ex), lambda now: None)
    clock.advance(ctx.fence.fence_after)
    assert ctx.fence.trip_if_due() and ctx.fence.fenced
    ex.maybe_work = False
    beat.run()
    assert not ctx.fence.fenced and ex.maybe_work
    assert ctx.fence.deadline() == pytest.approx(clock.m + ctx.fence.fence_after)


def test_heartbeat_registers_again_when_its_registration_was_removed(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ex = Executor(ctx, 1)
    beat = Heartbeat(ctx, ex, CancelWatch(ctx, ex), lambda now: None)
    ctx.backend.unregister_worker("w-test")
    beat.run()
    assert [w.id for w in ctx.backend.list_workers()] == ["w-test"]


def test_rescue_takes_back_a_dead_remote_workers_job_after_its_lease(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ctx.queue.enqueue([NewJob(command="true", id="lost")])
    clock.advance(1)  # the enqueue took real time
    ctx.backend.register_worker(WorkerInfo(
        id="w-dead", host="otherhost", pid=99, slots=1, queues=[], started_at=clock.w,
        heartbeat_at=clock.w))
    job = ctx.backend.claim("w-dead", "otherhost:99/1", None, clock.w)
    assert job is not None and job.id == "lost"
    rescue = Rescue(ctx, Executor(ctx, 1))
    clock.advance(RESCUE_INTERVAL_S)
    rescue.tick(clock.mono())  # the lease has not run out: still processing
    assert ctx.queue.get("lost").state is JobState.PROCESSING
    clock.advance(ctx.settings.lease_timeout)
    rescue.tick(clock.mono())
    assert ctx.queue.get("lost").state is JobState.PENDING
    assert "w-dead" not in {w.id for w in ctx.backend.list_workers()}


def test_rescue_gives_back_a_job_held_by_this_worker_without_a_run(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ctx.queue.enqueue([NewJob(command="true", id="held")])
    clock.advance(1)  # the enqueue took real time
    assert ctx.backend.claim("w-test", "testhost:1/1", None, clock.w) is not None
    rescue = Rescue(ctx, Executor(ctx, 1))
    rescue.run()
    job = ctx.queue.get("held")
    assert job.state is JobState.PENDING and job.attempts == 0


def test_promotion_wakes_at_the_due_time_and_not_before(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ctx.queue.enqueue([NewJob(command="true", id="later", run_at=clock.w + 60)])
    ex = Executor(ctx, 1)
    promotion = Promotion(ctx, ex)
    assert promotion.wanted_at() == pytest.approx(clock.m + 60)
    promotion.note_due(clock.w + 5)  # a retry the executor just scheduled
    assert promotion.wanted_at() == pytest.approx(clock.m + 5)
    clock.advance(59)
    ex.maybe_work = False
    promotion.tick(clock.mono())  # the hint was due: it is spent, the job is not due
    assert ctx.queue.get("later").state is JobState.SCHEDULED
    assert promotion.wanted_at() == pytest.approx(clock.m + 1)
    clock.advance(1)
    promotion.tick(clock.mono())
    assert ctx.queue.get("later").state is JobState.PENDING and ex.maybe_work
    assert promotion.wanted_at() is None


def test_poll_tick_tries_to_claim_every_poll_interval(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ex = Executor(ctx, 1)
    poll = PollTick(ctx, ex, Promotion(ctx, ex))
    ex.maybe_work = False
    clock.advance(ctx.settings.poll_interval / 2)
    poll.tick(clock.mono())
    assert not ex.maybe_work
    clock.advance(ctx.settings.poll_interval / 2)
    poll.tick(clock.mono())
    assert ex.maybe_work


def test_trim_sleeps_while_nothing_runs(ctx: WorkerContext, clock: FakeClock) -> None:
    trim = Trim(ctx, Executor(ctx, 1))
    assert trim.wanted_at() is None  # idle: no timer keeps the loop awake
    clock.advance(TRIM_CHECK_S)
    trim.tick(clock.mono())
    assert trim.next_at == pytest.approx(clock.m + TRIM_CHECK_S)


def test_a_kept_result_is_recorded_while_its_run_still_holds_the_job(
        ctx: WorkerContext, clock: FakeClock) -> None:
    ctx.queue.enqueue([NewJob(command="true", id="kept"), NewJob(command="true",
                                                                 id="moved")])
    clock.advance(1)
    held = [ctx.backend.claim("w-gone", "testhost:9/1", None, clock.w) for _ in "ab"]
    assert all(held)
    fields = {"now": clock.w, "exit_code": 0, "error": None, "output": "out",
              "history_entry": {"attempt": 1, "result": "completed"}}
    records = [unrecorded.finished(job, JobState.COMPLETED, None, fields)
               for job in held if job]
    assert unrecorded.save(ctx.queue.url, "w-gone", records)
    moved = next(job for job in held if job and job.id == "moved")
    assert ctx.backend.requeue(moved, now=clock.w, count_attempt=True, rescued=True,
                               history_entry={"event": "worker lost"})
    assert unrecorded.replay(ctx.backend, ctx.queue.url, clock.w) == 1
    assert ctx.queue.get("kept").state is JobState.COMPLETED
    assert ctx.queue.get("moved").state is JobState.PENDING  # not overwritten
    assert os.listdir(unrecorded.folder(ctx.queue.url)) == []  # each applied or dropped
    assert unrecorded.replay(ctx.backend, ctx.queue.url, clock.w) == 0


def test_cron_fire_on_two_supervisors_enqueues_each_instant_once(
        ctx: WorkerContext, clock: FakeClock) -> None:
    from queuectl import cron

    clock.w = (clock.w // 60) * 60 + 30  # half a minute before an instant
    cron.add(ctx.queue, "tick", "* * * * *", {"command": "true"}, tz="UTC", unique=False,
             catch_up="one", no_overlap=False)
    other_queue = Queue(ctx.queue.url, durable=False)
    other = WorkerContext(queue=other_queue, worker_id="w-other", host="otherhost",
                          slots=1, queues=None, settings=ctx.settings, fence=ctx.fence,
                          clock=clock)
    services = [CronFire(ctx, Executor(ctx, 1)), CronFire(other, Executor(other, 1))]
    try:
        for service in services:
            service.tick(clock.mono())  # the first tick reads the next instant
        assert ctx.queue.list_jobs() == []
        assert services[0].wanted_at() == pytest.approx(clock.m + min(30, CRON_CHECK_S))
        clock.advance(29.9)
        for service in services:
            service.tick(clock.mono())
        assert ctx.queue.list_jobs() == []  # not yet
        for minute in range(3):
            clock.advance(60 if minute else 0.2)
            for service in services:
                service.tick(clock.mono())
        ids = sorted(job.id for job in ctx.queue.list_jobs())
        assert len(ids) == 3 and len(set(ids)) == 3
    finally:
        other_queue.close()


def test_heartbeat_refreshes_the_retry_rules_a_finish_resolves(
        ctx: WorkerContext, clock: FakeClock) -> None:
    """Queue and config rules reach a running worker with its next heartbeat, and a
    finish resolves a job's policy from the cache (no store call of its own)."""
    from queuectl.models import Job
    from queuectl.retryrules import Failure
    from queuectl.worker.services import load_queue_rules

    ex = Executor(ctx, 1)
    beat = Heartbeat(ctx, ex, CancelWatch(ctx, ex), lambda now: None)
    load_queue_rules(ctx)  # as the supervisor does at start
    job = Job(id="j", command="x", state=JobState.PROCESSING, queue="mail", attempts=1)
    assert ctx.retry_policy(job).layers == ()
    ctx.queue.set_queue_policy("mail", retry_on="75")
    ctx.queue.config_set("no-retry-on", "2")
    assert ctx.retry_policy(job).layers == ()  # not before the heartbeat
    clock.advance(ctx.settings.heartbeat_interval)
    beat.tick(clock.mono())
    policy = ctx.retry_policy(job)
    assert [source for source, _ in policy.layers] == ["queue", "config"]
    assert policy.verdict(Failure("exit", 3)).rule == \
        "not in retry-on 75 (queue)"  # type: ignore[union-attr]
    job.retry_policy = {"retry_on": ["3"]}
    assert ctx.retry_policy(job).verdict(Failure("exit", 3)).rule == \
        "retry-on 3 (job)"  # type: ignore[union-attr]
    ctx.queue.set_queue_policy("mail", clear=True)
    clock.advance(ctx.settings.heartbeat_interval)
    beat.tick(clock.mono())
    assert "mail" not in ctx.queue_rules
