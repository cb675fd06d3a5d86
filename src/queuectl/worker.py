"""One worker slot: claim -> run -> finish, one claim and one finish statement per job.

A slot is a thread of the supervisor with its own store connection.  Between jobs it
claims again at once; when nothing is due it sleeps on the supervisor's `Signal`
until a wake-up (or the fallback poll) says there may be work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

from queuectl.backends import open_backend
from queuectl.errors import StoreError
from queuectl.models import Job, Outcome
from queuectl.retry import decide, effective_timeout
from queuectl.runner import Run
from queuectl.states import JobState

if TYPE_CHECKING:
    from queuectl.supervisor import Supervisor

log = logging.getLogger(__name__)

STORE_RETRY_S = 0.5  # pause after a store error before trying again


class WorkSignal:
    """A generation counter with a condition: a slot that found nothing waits until
    the generation moves, so a wake-up between its claim and its wait is never lost."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.generation = 0

    def bump(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self.generation == seen:
                self._cond.wait(timeout)


class Slot(threading.Thread):
    """A worker slot of a supervisor."""

    def __init__(self, supervisor: "Supervisor", index: int) -> None:
        super().__init__(name=f"slot-{index}", daemon=True)
        self.sup = supervisor
        self.index = index
        self.label = f"{supervisor.host}:{os.getpid()}/{index}"
        self.idle = False
        self.job: Optional[Job] = None
        self.run_handle: Optional[Run] = None
        self._lock = threading.Lock()
        self._backend: Any = None
        self._next: Optional[Job] = None  # claimed in the same transaction as a finish

    # -- loop ---------------------------------------------------------------------------
    def run(self) -> None:
        shared = self.sup.queue.backend
        own = not getattr(shared, "shareable_across_threads", False)
        try:
            self._backend = open_backend(self.sup.url, durable=False) if own else shared
        except StoreError as exc:
            log.error("slot %s cannot open the store: %s", self.label, exc)
            self.idle = True
            return
        try:
            self._loop()
        finally:
            if own:
                self._backend.close()

    def _loop(self) -> None:
        sup = self.sup
        while not sup.stopping:
            seen = sup.work.generation
            job, self._next = self._next, None
            try:
                if job is None:
                    job = self._backend.claim(sup.worker_id, self.label,
                                              sup.options.queues, time.time())
            except StoreError as exc:
                log.warning("slot %s: claim failed: %s", self.label, exc)
                time.sleep(STORE_RETRY_S)
                continue
            if job is None:
                self.idle = True
                sup.on_slot_idle()
                sup.work.wait(seen, sup.settings.poll_interval)
                continue
            self.idle = False
            self._execute(job)
        if self._next is not None:  # claimed together with the last finish, not run
            self._give_back(self._next, None, "worker stopping; job not started")
            self._next = None

    # -- one job ------------------------------------------------------------------------
    def _execute(self, job: Job) -> None:
        sup = self.sup
        settings = sup.settings
        path = sup.queue.job_log_path(job.id)
        env = dict(job.env or {})
        env["QUEUECTL_JOB_ID"] = job.id
        env["QUEUECTL_JOB_ATTEMPT"] = str(job.attempts)
        run = Run(job.command, output_path=path, cwd=job.cwd, env=env,
                  timeout_s=effective_timeout(job, settings),
                  output_limit=settings.output_limit)
        with self._lock:
            self.job, self.run_handle = job, run
        sup.on_job_started()
        try:
            run.start()
            if sup.stop_now:
                run.kill()
            outcome = run.wait()
        finally:
            with self._lock:
                self.job, self.run_handle = None, None
        if outcome.cancelled and sup.stop_now:
            self._give_back(job, outcome)
        elif outcome.cancelled and self._cancelled_by_user(job):
            log.info("job %s cancelled while running (%s)", job.id, self.label)
        else:
            self._finish(job, outcome)
        _remove(path)
        sup.on_job_done()

    def kill(self, job_id: Optional[str] = None) -> bool:
        """Kill the running job (any, or only if it is `job_id`)."""
        with self._lock:
            if self.run_handle is None or (job_id and self.job and self.job.id != job_id):
                return False
            self.run_handle.kill()
            return True

    def _cancelled_by_user(self, job: Job) -> bool:
        current = self._retrying(lambda: self._backend.get(job.id))
        return current is None or current.state is JobState.CANCELLED

    def _finish(self, job: Job, outcome: Outcome) -> None:
        now = time.time()
        decision = decide(job, outcome, self.sup.settings, now)
        entry = {
            "attempt": job.attempts, "started_at": outcome.started_at,
            "finished_at": outcome.finished_at, "worker": self.label,
            "exit_code": outcome.exit_code, "signal": outcome.signal,
            "timed_out": outcome.timed_out, "error": decision.error,
            "result": decision.state.value,
        }
        fields = dict(now=now, exit_code=outcome.exit_code, error=decision.error,
                      output=outcome.output_tail or None, history_entry=entry)
        both = getattr(self._backend, "finish_and_claim", None)
        if both is not None and not self.sup.stopping:
            sup = self.sup
            result = self._retrying(lambda: both(
                job, decision.state, decision.run_at, worker_id=sup.worker_id,
                worker=self.label, queues=sup.options.queues, **fields))
            done, self._next = result if result else (False, None)
        else:
            done = self._retrying(lambda: self._backend.finish(
                job, decision.state, decision.run_at, **fields))
        if not done:
            log.warning("job %s was taken from this worker while it ran; result dropped",
                        job.id)
            return
        if decision.state is JobState.COMPLETED:
            # DEBUG, not INFO: a line per tiny job cost a tenth of the hot loop.
            log.debug("job %s completed in %.3fs (%s)", job.id, outcome.duration,
                      self.label)
        elif decision.state is JobState.FAILED:
            log.warning("job %s failed (attempt %d): %s; retry in %.1fs", job.id,
                        job.attempts, decision.error, (decision.run_at or now) - now)
            self.sup.note_due(decision.run_at)
        else:
            log.error("job %s is dead after %d attempts: %s", job.id, job.attempts,
                      decision.error)

    def _give_back(self, job: Job, outcome: Optional[Outcome],
                   reason: str = "worker stopped --now; attempt not counted") -> None:
        entry = {"attempt": job.attempts, "event": "requeued", "worker": self.label,
                 "started_at": outcome.started_at if outcome else None,
                 "finished_at": outcome.finished_at if outcome else None, "error": reason}
        if self._retrying(lambda: self._backend.requeue(
                job, now=time.time(), count_attempt=False, rescued=False,
                history_entry=entry)):
            log.info("job %s put back to pending (%s)", job.id, reason)

    def _retrying(self, action: Any) -> Any:
        """Run a store call until it succeeds: a result must not be lost to a store
        that is locked or restarting for a while.  Gives up only on stop --now."""
        delay = STORE_RETRY_S
        while True:
            try:
                return action()
            except StoreError as exc:
                if self.sup.stop_now and self.sup.exit_deadline_passed():
                    log.error("giving up recording a result: %s", exc)
                    return None
                log.warning("store error, retrying in %.1fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.debug("cannot remove %s: %s", path, exc)
