"""The job slots of a supervisor: claim -> spawn -> finish, one claim and one finish
statement per job.

All slots are served by the supervisor's single thread: each running job is a child
process watched through a pidfd in the supervisor's one `poll()`.  There is no thread
per slot: four threads fighting over the GIL and the store lock ran tiny jobs 35%
slower than one thread multiplexing four children (see docs/DECISIONS.md).
"""

from __future__ import annotations

import logging
import os
import select
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from queuectl.errors import StoreCorrupt, StoreError
from queuectl.models import Job, Outcome
from queuectl.retry import Decision, decide, effective_timeout
from queuectl.retryrules import NO_POLICY
from queuectl.states import JobState
from queuectl.worker import capture, unrecorded
from queuectl.worker.outputpub import Chunk, Drop, OutputPublisher
from queuectl.worker.runner import Run

if TYPE_CHECKING:
    from queuectl.worker.context import WorkerContext

log = logging.getLogger(__name__)

STORE_RETRY_S = 0.5  # first pause after a store error before trying again
STORE_RETRY_MAX_S = 10.0
KEEP_TIME_STEP_S = 0.25  # while waiting for the store: timeouts and signals this often
TRIM_CHECK_S = 0.1  # how often running jobs' captures are checked for trimming...
TRIM_CHECK_MIN_S = 0.02  # ...and how often at most, while a job writes fast
TRIM_GROWTH_BYTES = 2 << 20  # a job writing more than this per check is checked sooner


@dataclass
class Running:
    """A job running in a slot."""

    job: Job
    run: Run
    slot: int
    label: str  # host:pid/slot, recorded as the job's worker
    path: Optional[str]  # the output capture's file; None: in memory (capture.py)
    fenced: bool = False  # killed because this worker could not prove its lease


class Executor:
    """`count` concurrent job slots, driven by the supervisor's loop."""

    def __init__(self, ctx: "WorkerContext", count: int) -> None:
        self.ctx = ctx
        self.count = count
        self.running: dict[int, Running] = {}  # slot index -> running job
        self.maybe_work = True  # False after a claim found nothing, until a wake-up
        self.unrecorded = 0  # ended runs whose results a store call is retrying
        #: copies long runs' output into the store for followers on other hosts
        self.publisher = (OutputPublisher(ctx.clock.mono)
                          if ctx.queue.publishes_output else None)
        self._labels: list[str] = []
        self._labels_pid = 0
        # The supervisor's poll set: job pidfds come and go with their jobs.
        self.poller = select.poll()
        self.by_fd: dict[int, int] = {}  # pidfd -> slot

    @property
    def busy(self) -> int:
        return len(self.running)

    def label(self, slot: int) -> str:
        """host:pid/slot, recorded as the worker of the slot's jobs."""
        pid = os.getpid()
        if self._labels_pid != pid:
            self._labels = [f"{self.ctx.host}:{pid}/{n}" for n in range(self.count + 1)]
            self._labels_pid = pid
        return self._labels[slot]

    def jobs(self) -> list[Job]:
        return [item.job for item in self.running.values()]

    # -- claiming -----------------------------------------------------------------------
    def fill(self) -> None:
        """Claim jobs into the free slots (one transaction for all) while there may be
        work."""
        ctx = self.ctx
        if not self.maybe_work or ctx.stopping:
            return
        free = self._free_slots()
        if not free or ctx.fence.fenced:
            return
        try:
            _, jobs = ctx.backend.finish_and_claim(
                [], worker_id=ctx.worker_id, workers=[self.label(slot) for slot in free],
                queues=ctx.queues, now=time.time())
        except StoreCorrupt:
            raise  # nothing more is written to a damaged store: the worker stops
        except StoreError as exc:
            log.warning("claim failed: %s", exc)
            return  # the loop's next poll tick tries again
        self._start_claimed(free, jobs)

    def _free_slots(self) -> list[int]:
        return [slot for slot in range(1, self.count + 1) if slot not in self.running]

    def _start_claimed(self, free: list[int], jobs: list[Job]) -> None:
        """Start claimed jobs in the free slots, in claim order."""
        if len(jobs) < len(free):
            self.maybe_work = False  # the queue ran dry: wait for a wake-up
        for slot, job in zip(free, jobs):
            self.start(job, slot)

    def start(self, job: Job, slot: int) -> None:
        ctx = self.ctx
        settings = ctx.settings
        path = None if capture.MEMFD else ctx.queue.job_log_path(job.id)
        env = dict(job.env or {})
        env["QUEUECTL_JOB_ID"] = job.id
        env["QUEUECTL_JOB_ATTEMPT"] = str(job.attempts)
        run = Run(job.command, output_path=path, capture_id=job.id, cwd=job.cwd, env=env,
                  timeout_s=effective_timeout(job, settings),
                  output_limit=settings.output_limit,
                  keep_path=(ctx.queue.job_output_file(job.id)
                             if settings.output_file_max > 0 else None),
                  keep_max=settings.output_file_max)
        run.start()
        if self.publisher is not None and run.output_fd >= 0:
            self.publisher.track(run, job.id, job.attempts, run.output_fd)
        self.running[slot] = Running(job, run, slot, self.label(slot), path)
        fd = run.fileno()
        if fd >= 0:
            self.by_fd[fd] = slot
            self.poller.register(fd, select.POLLIN)
        ctx.job_started()
        if ctx.stop_now:
            run.kill()

    # -- the loop's view ----------------------------------------------------------------
    def next_wakeup(self) -> Optional[float]:
        """When a run needs attention without its pidfd firing (a timeout, a KILL due
        after the grace, or a child without a pidfd)."""
        soonest = None
        for item in self.running.values():
            wake = item.run.next_wakeup()
            if wake is not None and (soonest is None or wake < soonest):
                soonest = wake
        return soonest

    def service(self, ready_fds: Iterable[int]) -> None:
        """Check runs whose pidfd fired or whose timer is due; finish the ended ones."""
        due = {self.by_fd[fd] for fd in ready_fds if fd in self.by_fd}
        now = time.time()
        for slot, item in self.running.items():
            if slot not in due:
                wake = item.run.next_wakeup()
                if wake is not None and wake <= now:
                    due.add(slot)
        ended: list[tuple[Running, Outcome]] = []
        for slot in sorted(due):
            item = self.running[slot]
            fd = item.run.fileno()
            outcome = item.run.check()
            if outcome is not None:
                if self.publisher is not None:
                    rest = self.publisher.finish(item.run)
                    if rest:  # a run that published: its followers see the end
                        self._publish(rest, [])
                del self.running[slot]
                if fd >= 0:
                    self.poller.unregister(fd)
                    del self.by_fd[fd]
                if self._needs_result(item, outcome):
                    ended.append((item, outcome))
        if ended:
            self._finish(ended)

    def trim_outputs(self, interval: float) -> float:
        """Bound the memory (or disk) that running jobs' output holds (see
        capture.trim); returns when to check again: sooner while a job writes fast.  A
        capture holds at most 9 MiB plus what its job prints between two checks: 0.1 s
        at first, 20 ms while it prints fast (a job printing 3 GB/s from its start
        holds ~300 MB for a moment, then ~70 MB)."""
        grown = max((item.run.trim_output() for item in self.running.values()), default=0)
        if grown <= TRIM_GROWTH_BYTES:
            return TRIM_CHECK_S
        return max(TRIM_CHECK_MIN_S, interval * TRIM_GROWTH_BYTES / grown)

    def publish_output(self) -> None:
        """Publish what long runs printed since the last round (worker.outputpub)."""
        if self.publisher is not None:
            chunks, drops = self.publisher.collect()
            if chunks or drops:
                self._publish(chunks, drops)

    def _publish(self, chunks: list[Chunk], drops: list[Drop]) -> None:
        try:
            self.ctx.backend.publish_output(chunks, drops, now=time.time())
        except StoreError as exc:  # followers elsewhere miss a part; the run goes on
            log.debug("could not publish output: %s", exc)

    def close(self) -> None:
        if self.publisher is not None:
            self.publisher.close()

    def fence_kill(self) -> int:
        """KILL every running job's process group now (called from the fencing
        watchdog thread; the loop collects the runs as usual)."""
        killed = 0
        for item in list(self.running.values()):
            item.fenced = True
            item.run.kill_now()
            killed += 1
        return killed

    def kill(self, job_id: Optional[str] = None) -> int:
        """Kill running jobs (all, or the one with `job_id`); returns how many."""
        killed = 0
        for item in self.running.values():
            if job_id is None or item.job.id == job_id:
                item.run.kill()
                killed += 1
        return killed

    # -- jobs ended ---------------------------------------------------------------------
    def _needs_result(self, item: Running, outcome: Outcome) -> bool:
        """Settle a run that was stopped (stop --now) or cancelled by a user; True when
        its result is to be recorded instead."""
        ctx = self.ctx
        job = item.job
        if item.fenced:
            log.warning("job %s was killed by fencing; its result is not recorded (the "
                        "job is rescued, or given back once the store answers)", job.id)
        elif outcome.cancelled and ctx.stop_now:
            self.give_back(job, item.label, outcome)
        elif outcome.cancelled and self._cancelled_by_user(job):
            log.info("job %s cancelled while running (%s)", job.id, item.label)
        else:
            return True
        _remove(item.path)
        ctx.job_done()
        return False

    def _cancelled_by_user(self, job: Job) -> bool:
        current = self._retrying(lambda: self.ctx.backend.get(job.id))
        return current is None or current.state is JobState.CANCELLED

    def _finish(self, ended: list[tuple[Running, Outcome]]) -> None:
        """Record the results of runs that ended together and claim the free slots'
        next jobs, in one transaction (one statement on PostgreSQL)."""
        ctx = self.ctx
        now = time.time()
        results = []
        for item, outcome in ended:
            job = item.job
            # a success needs no rules: the policy is resolved for failures only
            decision = decide(job, outcome, ctx.settings, now, policy=NO_POLICY
                              if outcome.ok else ctx.retry_policy(job))
            entry = {
                "attempt": job.attempts, "started_at": outcome.started_at,
                "finished_at": outcome.finished_at, "worker": item.label,
                "exit_code": outcome.exit_code, "signal": outcome.signal,
                "timed_out": outcome.timed_out, "error": decision.error,
                "result": decision.state.value,
                "output_bytes": outcome.output_bytes,
                "output_dropped": outcome.output_dropped,
            }
            if outcome.output_file is not None:
                entry["output_file"] = outcome.output_file
            if decision.rule is not None:
                entry["rule"] = decision.rule
            fields = dict(now=now, exit_code=outcome.exit_code, error=decision.error,
                          output=outcome.output_tail or None, history_entry=entry)
            results.append((item, decision, fields))
        free = [] if ctx.stopping else self._free_slots()
        batch = [(item.job, decision.state, decision.run_at, fields)
                 for item, decision, fields in results]
        recorded = self._retrying(lambda: ctx.backend.finish_and_claim(
            batch, worker_id=ctx.worker_id, workers=[self.label(slot) for slot in free],
            queues=ctx.queues, now=now), pending=len(batch))
        if recorded is None:  # given up (stop --now): kept for the next worker here
            self._keep([unrecorded.finished(*entry) for entry in batch])
            for item, _, _ in results:
                _remove(item.path)
                ctx.job_done()
            return
        done, jobs = recorded
        for (item, decision, _), ok in zip(results, done):
            self._recorded(item, decision, now, ok)
        self._start_claimed(free, jobs)

    def _recorded(self, item: Running, decision: Decision, now: float, done: bool) -> None:
        """Log a recorded result and let go of its capture file."""
        job = item.job
        if not done:
            log.warning("job %s was taken from this worker while it ran; result dropped",
                        job.id)
        elif decision.state is JobState.COMPLETED:
            log.info("job %s completed in %.3fs (attempt %d, %s)", job.id,
                     now - job.started_at if job.started_at else 0.0, job.attempts,
                     item.label)
        elif decision.state is JobState.FAILED:
            log.warning("job %s failed in %.3fs (attempt %d): %s; retry in %.1fs", job.id,
                        now - job.started_at if job.started_at else 0.0, job.attempts,
                        decision.error, (decision.run_at or now) - now)
            self.ctx.note_due(decision.run_at)
        else:
            log.error("job %s is %s in %.3fs after %d attempt(s): %s", job.id,
                      decision.state.value, now - job.started_at if job.started_at
                      else 0.0, job.attempts, decision.error)
        _remove(item.path)
        self.ctx.job_done()

    def give_back(self, job: Job, label: str, outcome: Optional[Outcome],
                  reason: str = "worker stopped --now; attempt not counted") -> None:
        entry = {"attempt": job.attempts, "event": "requeued", "worker": label,
                 "started_at": outcome.started_at if outcome else None,
                 "finished_at": outcome.finished_at if outcome else None, "error": reason}
        done = self._retrying(lambda: self.ctx.backend.requeue(
            job, now=time.time(), count_attempt=False, rescued=False,
            history_entry=entry), pending=1)
        if done is None:
            self._keep([unrecorded.given_back(job, entry)])
        elif done:
            log.info("job %s put back to pending (%s)", job.id, reason)

    def _keep(self, records: list[dict[str, Any]]) -> None:
        path = unrecorded.save(self.ctx.queue.url, self.ctx.worker_id, records)
        if path:
            log.error("kept %d result(s) that could not be recorded in %s: the next "
                      "worker started on this host records them", len(records), path)

    def _retrying(self, action: Callable[[], Any], pending: int = 0) -> Any:
        """Run a store call until it succeeds: a result must not be lost to a store
        that is locked, full or restarting for a while.  Gives up (None) only after
        stop --now has waited long enough; the caller keeps what was not recorded."""
        ctx = self.ctx
        delay = STORE_RETRY_S
        told_stopping = False
        try:
            while True:
                try:
                    return action()
                except StoreCorrupt:
                    raise
                except StoreError as exc:
                    self.unrecorded = pending
                    ctx.check_signals()
                    if ctx.stop_now and ctx.exit_deadline_passed():
                        log.error("giving up recording %d result(s) for now: %s",
                                  pending, exc)
                        return None
                    if ctx.stopping and not ctx.stop_now and not told_stopping:
                        told_stopping = True
                        log.warning(
                            "stopping, but %d ended job result(s) cannot be recorded "
                            "(%s); still trying. A second signal (or worker stop "
                            "--now) keeps them on disk for the next worker on this "
                            "host and exits", pending, exc)
                    else:
                        log.warning("store error, retrying in %.1fs: %s", delay, exc)
                    self._keep_time_for(delay)
                    delay = min(delay * 2, STORE_RETRY_MAX_S)
        finally:
            self.unrecorded = 0

    def _keep_time_for(self, seconds: float) -> None:
        """Wait before the store is tried again, enforcing the running jobs' timeouts
        meanwhile: a store may stay unreachable for long, and a job's timeout still
        holds (its exit is collected, and its result recorded, once the store is back)."""
        until = time.time() + seconds
        while True:
            for item in list(self.running.values()):
                item.run.enforce_deadlines()
            now = time.time()
            if now >= until or (self.ctx.stop_now and self.ctx.exit_deadline_passed()):
                return
            wake = self.next_wakeup()
            pause = min(until, wake if wake is not None else until) - now
            time.sleep(min(max(pause, 0.01), KEEP_TIME_STEP_S))
            self.ctx.check_signals()  # stop (--now) is noticed meanwhile too


def _remove(path: Optional[str]) -> None:
    if path is None:  # an in-memory capture: nothing on disk
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("cannot remove %s: %s", path, exc)
