"""The periodic services on a supervisor's loop, each a small class on an injected
clock (worker.context.Clock), so that each is unit-tested on a fake clock.

A service says when it next wants to run (`next_at`, monotonic; None: only when an
event asks) and does its work in `tick(mono)` when that moment has come.  The loop
sleeps until the earliest `next_at` of all services, the executor's run deadlines and
the wake-up sources, then ticks every service.  None of them blocks: a store error is
logged and the work is tried again at the next tick.

    Heartbeat   report alive, prove the lease (the fence), read stop requests and
                settings
    Rescue      take back dead workers' jobs; give back jobs held without a run
    Promotion   relabel due scheduled/backing-off jobs pending, at their due time
    PollTick    the safety net for lost wake-ups and work enqueued on other hosts
    Trim        bound running jobs' captures (sooner while a job prints fast)
    Publish     copy long runs' output into the store for followers on other hosts
    CancelWatch kill running jobs that a user cancelled
    CronFire    enqueue the runs of due cron schedules (each instant once, whichever
                supervisor of whichever host gets there first)
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Callable, Optional

from queuectl.errors import StoreError
from queuectl.maintenance import rescue
from queuectl.models import WorkerInfo
from queuectl.states import JobState
from queuectl.worker import unrecorded
from queuectl.worker.context import WorkerContext
from queuectl.worker.executor import TRIM_CHECK_S, Executor

log = logging.getLogger("queuectl.worker.supervisor")

CRON_CHECK_S = 1.0  # new, resumed or removed schedules are seen within about this long
RESCUE_INTERVAL_S = 1.0  # dead local pids are seen within about this long
CANCEL_CHECK_S = 0.1  # at most this often, look for cancelled running jobs on wake-up


def store_call(action: Callable[[], Any]) -> Any:
    """Run a store call; a store error is logged and gives None."""
    try:
        return action()
    except StoreError as exc:
        log.warning("store error: %s", exc)
        return None


def apply_priority_aging(ctx: WorkerContext) -> None:
    """Claim in the order the `priority-aging` setting asks (re-read with the settings
    on every heartbeat, so `config set` reaches running workers)."""
    aging = ctx.settings.priority_aging
    store_call(lambda: ctx.backend.use_priority_aging(aging))


def load_queue_rules(ctx: WorkerContext) -> None:
    """Cache the queues' retry rules (`queue policy`): read at start and with every
    heartbeat, so a finish resolves a job's policy without a query of its own."""
    from queuectl.retryrules import Rules

    found = store_call(ctx.backend.queue_policies)
    if found is not None:
        ctx.queue_rules = {name: Rules.from_json(policy) for name, policy in found.items()}


def worker_info(ctx: WorkerContext, now: float) -> WorkerInfo:
    return WorkerInfo(id=ctx.worker_id, host=ctx.host, pid=os.getpid(), slots=ctx.slots,
                      queues=ctx.queues or [], started_at=now, heartbeat_at=now)


class Service:
    """Runs `run()` every `interval()` seconds of the context's monotonic clock."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.next_at: Optional[float] = ctx.clock.mono() + self.interval()

    def interval(self) -> float:
        raise NotImplementedError

    def wanted_at(self) -> Optional[float]:
        return self.next_at

    def tick(self, mono: float) -> None:
        if self.next_at is not None and mono >= self.next_at:
            self.next_at = mono + self.interval()
            self.run()

    def run(self) -> None:
        raise NotImplementedError


class CancelWatch:
    """Kills running jobs whose row says `cancelled`: after every heartbeat, and on
    wake-ups (a cancel sends one) at most every CANCEL_CHECK_S."""

    def __init__(self, ctx: WorkerContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self.last_check = 0.0

    def wanted_at(self) -> Optional[float]:
        return None  # event-driven only

    def tick(self, mono: float) -> None:
        pass

    def on_wakeup(self, mono: float) -> None:
        if self.executor.busy and mono - self.last_check >= CANCEL_CHECK_S:
            self.check(mono)

    def check(self, mono: float) -> None:
        self.last_check = mono
        backend = self.ctx.backend
        for job in self.executor.jobs():
            current = store_call(partial(backend.get, job.id))
            if current is not None and current.state is JobState.CANCELLED:
                if self.executor.kill(job.id):
                    log.info("job %s was cancelled: killing it", job.id)


class Heartbeat(Service):
    """Reports this worker alive; an acknowledged heartbeat renews the lease the fence
    counts from.  Its answer carries stop requests (`worker stop [--now]`); settings
    are re-read with it."""

    def __init__(self, ctx: WorkerContext, executor: Executor, cancels: CancelWatch,
                 begin_stop: Callable[[bool], None]) -> None:
        self.executor = executor
        self.cancels = cancels
        self.begin_stop = begin_stop
        super().__init__(ctx)

    def interval(self) -> float:
        return self.ctx.settings.heartbeat_interval

    def run(self) -> None:
        ctx = self.ctx
        fence = ctx.fence
        sent = fence.clock()
        try:
            request = ctx.backend.heartbeat(ctx.worker_id, busy=self.executor.busy,
                                            jobs_done=ctx.jobs_done, now=ctx.clock.wall())
            if request == "gone":
                log.warning("this worker's registration was removed (considered dead); "
                            "registering again")
                ctx.backend.register_worker(worker_info(ctx, ctx.clock.wall()))
        except StoreError as exc:
            log.warning("store error: %s", exc)
            return  # not acknowledged: the fence deadline keeps running
        if fence.acknowledged(sent):
            log.warning("the store answers again: fence lifted, claiming again")
            self.executor.maybe_work = True
        refreshed = store_call(ctx.queue.settings)
        if refreshed is not None:
            ctx.settings = refreshed
            fence.update(refreshed.lease_timeout, refreshed.heartbeat_interval)
            apply_priority_aging(ctx)
        load_queue_rules(ctx)
        if request == "now":
            ctx.exit_reason = "worker stop --now"
            self.begin_stop(True)
        elif request == "graceful" and not ctx.stopping:
            ctx.exit_reason = "worker stop"
            self.begin_stop(False)
        self.cancels.check(ctx.clock.mono())


class Rescue(Service):
    """Takes back the jobs of dead workers (any host: a remote one when its lease ran
    out, a local one as soon as its pid is gone), and gives back jobs the store says
    this worker holds but no slot runs (a claim whose answer was lost with a broken
    connection, or a finish lost to a server crash)."""

    def __init__(self, ctx: WorkerContext, executor: Executor) -> None:
        self.executor = executor
        super().__init__(ctx)

    def interval(self) -> float:
        return RESCUE_INTERVAL_S

    def run(self) -> None:
        ctx = self.ctx
        # results a supervisor here could not record before it exited come first:
        # otherwise their jobs would be rescued and run again
        if store_call(lambda: unrecorded.replay(ctx.backend, ctx.queue.url,
                                                ctx.clock.wall())):
            self.executor.maybe_work = True
        report = store_call(lambda: rescue(ctx.backend, ctx.settings, ctx.clock.wall(),
                                           host=ctx.host, exclude=ctx.worker_id))
        if report and report.requeued:
            self.executor.maybe_work = True
        self.reclaim_lost()

    def reclaim_lost(self) -> None:
        ctx = self.ctx
        held = store_call(lambda: ctx.backend.processing_jobs([ctx.worker_id]))
        running = {job.id for job in self.executor.jobs()}
        for job in held or []:
            if job.id not in running:
                log.warning("job %s was held by this worker without running; requeued",
                            job.id)
                self.executor.give_back(job, job.worker or ctx.host, None,
                                        "claim or result lost with the store connection")


class Promotion:
    """Relabels due scheduled and backing-off jobs as pending at their due time.  It
    knows the next due time from the store (refreshed on wake-ups and poll ticks) and
    from hints (a retry the executor just scheduled)."""

    def __init__(self, ctx: WorkerContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self.hint: Optional[float] = None  # wall time
        self.next_due: Optional[float] = None  # wall time, from the store
        self.refresh()

    @property
    def due_at(self) -> Optional[float]:
        """The wall time of the next promotion, if any."""
        if self.next_due is None:
            return self.hint
        return self.next_due if self.hint is None else min(self.hint, self.next_due)

    def wanted_at(self) -> Optional[float]:
        due = self.due_at
        if due is None:
            return None
        clock = self.ctx.clock
        return clock.mono() + (due - clock.wall())

    def note_due(self, run_at: Optional[float]) -> None:
        if run_at is not None and (self.hint is None or run_at < self.hint):
            self.hint = run_at

    def refresh(self) -> None:
        """Ask the store when the next waiting job of this worker's queues is due."""
        ctx = self.ctx
        self.next_due = store_call(lambda: ctx.backend.next_run_at(ctx.queues,
                                                                   ctx.clock.wall()))

    def tick(self, mono: float) -> None:
        due = self.due_at
        if due is not None and due <= self.ctx.clock.wall():
            self.hint = None
            store_call(lambda: self.ctx.backend.promote_due(self.ctx.clock.wall()))
            self.executor.maybe_work = True
            self.refresh()


class PollTick(Service):
    """Every poll-interval: try to claim and re-read the next due time, whatever the
    wake-ups said (a lost datagram, work enqueued on another host of a store without
    notifications)."""

    def __init__(self, ctx: WorkerContext, executor: Executor,
                 promotion: Promotion) -> None:
        self.executor = executor
        self.promotion = promotion
        super().__init__(ctx)

    def interval(self) -> float:
        return self.ctx.settings.poll_interval

    def run(self) -> None:
        self.executor.maybe_work = True
        self.promotion.refresh()


class Publish:
    """Copies long runs' new output into the store every outputpub.PUBLISH_EVERY_S,
    for `logs -f` on other hosts; idle while no run is tracked."""

    def __init__(self, ctx: WorkerContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor

    def wanted_at(self) -> Optional[float]:
        publisher = self.executor.publisher
        return None if publisher is None else publisher.next_at()

    def tick(self, mono: float) -> None:
        moment = self.wanted_at()
        if moment is not None and mono >= moment:
            self.executor.publish_output()


class Trim(Service):
    """Bounds the output running jobs hold: every TRIM_CHECK_S, sooner while a job
    prints fast (Executor.trim_outputs); idle while nothing runs."""

    def __init__(self, ctx: WorkerContext, executor: Executor) -> None:
        self.executor = executor
        self.every = TRIM_CHECK_S
        super().__init__(ctx)

    def interval(self) -> float:
        return self.every

    def tick(self, mono: float) -> None:
        if self.next_at is not None and mono >= self.next_at:
            self.every = self.executor.trim_outputs(self.every)
            self.next_at = mono + self.every

    def wanted_at(self) -> Optional[float]:
        return self.next_at if self.executor.busy else None


class CronFire:
    """Enqueues the runs of due cron schedules: at the earliest next instant the store
    knows of, and every CRON_CHECK_S (a schedule added, resumed or fired elsewhere).
    Every supervisor runs one; the store's compare-and-set lets one of them enqueue
    each instant (queuectl.cron.fire_due)."""

    def __init__(self, ctx: WorkerContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self.next_due: Optional[float] = None  # wall time, from the store
        self.check_at = ctx.clock.mono()  # at once: instants missed while none ran

    def wanted_at(self) -> Optional[float]:
        if self.ctx.stopping:
            return None
        clock = self.ctx.clock
        if self.next_due is None:
            return self.check_at
        return min(self.check_at, clock.mono() + (self.next_due - clock.wall()))

    def tick(self, mono: float) -> None:
        ctx = self.ctx
        wall = ctx.clock.wall()
        due = self.next_due is not None and self.next_due <= wall
        if ctx.stopping or not (due or mono >= self.check_at):
            return
        from queuectl import cron

        self.check_at = mono + CRON_CHECK_S
        if store_call(lambda: cron.fire_due(ctx.backend, wall)):
            self.executor.maybe_work = True
            store_call(ctx.queue.wake_workers)  # the other supervisors of this host
        self.next_due = store_call(ctx.backend.cron_next_fire_at)
