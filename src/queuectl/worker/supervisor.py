"""A worker supervisor: one process, one thread, N job slots, one registration in the
store.

The loop sleeps in a single `poll()` on: the wake-up socket (new work on this host),
the PostgreSQL LISTEN connection when there is one, a self-pipe (signals, requests
from other threads), and a pidfd per running job.  It wakes when a job ends, new work
arrives, a timeout or a retry comes due, or a heartbeat is due (report alive, read
stop requests, rescue jobs of dead workers, notice cancelled jobs).

Signals only count.  First SIGINT/SIGTERM: stop claiming, let running jobs finish,
exit.  Second (or `worker stop --now`): kill running jobs' process groups and put the
jobs back to pending without counting the attempt.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from queuectl import wakeup
from queuectl.config import Settings
from queuectl.errors import StoreCorrupt, StoreError
from queuectl.maintenance import rescue, this_host
from queuectl.models import WorkerInfo
from queuectl.queue import Queue
from queuectl.states import JobState
from queuectl.worker.executor import TRIM_CHECK_S, Executor
from queuectl.worker.fence import Fence, Watchdog

log = logging.getLogger(__name__)

#: Signals that stop a supervisor: the first gracefully, the second now.  SIGHUP (the
#: terminal closed) counts as one for a foreground worker, so its running jobs are
#: never left behind unsupervised; a detached worker starts with it ignored.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

RESCUE_INTERVAL_S = 1.0  # dead local pids are seen within about this long
CANCEL_CHECK_S = 0.1  # at most this often, look for cancelled running jobs on wake-up
STOP_NOW_GRACE_S = 10.0  # after stop --now, how long to keep trying to record results


@dataclass
class SupervisorOptions:
    slots: int = 1
    queues: Optional[list[str]] = None
    burst: bool = False  # exit when nothing is runnable
    idle_timeout_s: Optional[float] = None  # exit after this long without work
    flags: dict[str, Any] = field(default_factory=dict)


class Supervisor:
    """Runs jobs with `options.slots` concurrent slots until stopped."""

    def __init__(self, url: Optional[str], options: SupervisorOptions,
                 env: Mapping[str, str] | None = None) -> None:
        self.options = options
        self.queue = Queue(url, flags=options.flags, env=env, durable=False)
        self.url = self.queue.url
        self.host = this_host()
        self.worker_id = uuid.uuid4().hex[:12]
        self.stopping = False
        self.stop_now = False
        self.settings: Settings = self.queue.settings()
        self.jobs_done = 0
        self.exit_reason = ""
        self.executor = Executor(self, options.slots)
        self.fence = Fence(self.settings.lease_timeout, self.settings.heartbeat_interval)
        self._signals = 0
        self._last_signal = ""  # the name of the last stop signal, for the log
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        os.set_blocking(self._pipe_w, False)
        self._due_hint: Optional[float] = None
        self._last_activity = time.monotonic()
        self._stop_now_at: Optional[float] = None
        self._stop_requested = False
        self._previous_wakeup_fd = -1

    # -- called by the slots ------------------------------------------------------------
    def note_due(self, run_at: Optional[float]) -> None:
        """A retry is due at `run_at`: make sure the loop wakes for it."""
        if run_at is not None and (self._due_hint is None or run_at < self._due_hint):
            self._due_hint = run_at

    def on_job_started(self) -> None:
        self._last_activity = time.monotonic()

    def on_job_done(self) -> None:
        self.jobs_done += 1
        self._last_activity = time.monotonic()

    def request_stop(self, reason: str) -> None:
        """Ask for a graceful stop from another thread (e.g. the demo's progress view)."""
        self.exit_reason = self.exit_reason or reason
        self._stop_requested = True
        self._poke()

    def exit_deadline_passed(self) -> bool:
        return (self._stop_now_at is not None
                and time.monotonic() - self._stop_now_at > STOP_NOW_GRACE_S)

    def check_signals(self) -> None:
        """Act on signals now (also called while a store call is being retried)."""
        self._drain_pipe()
        if self._signals:
            self._on_signal()
        if self._stop_requested and not self.stopping:
            self._begin_stop(now=False)

    # -- lifecycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        _raise_fd_limit(4 * self.options.slots + 64)  # a pidfd and a capture per job
        _keep_freed_heap()
        listener = wakeup.Listener(self.url, self.worker_id)
        previous = self._install_signals()
        watchdog = Watchdog(self.fence, self._fenced)
        now = time.time()
        try:
            sent = self.fence.clock()
            self.queue.backend.register_worker(self._info(now))
            self.fence.acknowledged(sent)
            watchdog.start()
            log.info("worker %s started: %d slot(s), queues %s, store %s", self.worker_id,
                     self.options.slots, ",".join(self.options.queues or ["*"]),
                     self.queue.display_url)
            self._rescue()
            self._loop(listener)
        except StoreCorrupt:
            self.executor.fence_kill()  # their results could not be recorded
            raise
        finally:
            watchdog.stop()
            self._restore_signals(previous)
            listener.close()
            try:
                self.queue.backend.unregister_worker(self.worker_id)
            except StoreError as exc:
                log.warning("could not unregister: %s", exc)
            self.queue.close()
            os.close(self._pipe_r)
            os.close(self._pipe_w)
        log.info("worker %s stopped (%s) after %d run(s)", self.worker_id,
                 self.exit_reason or "stopped", self.jobs_done)
        return 0

    def _info(self, now: float) -> WorkerInfo:
        return WorkerInfo(id=self.worker_id, host=self.host, pid=os.getpid(),
                          slots=self.options.slots, queues=self.options.queues or [],
                          started_at=now, heartbeat_at=now)

    def _loop(self, listener: wakeup.Listener) -> None:
        slots = self.executor
        backend = self.queue.backend
        store_fd: Optional[int] = None
        poller = slots.poller  # job pidfds are registered as jobs start and end
        poller.register(listener.fileno(), select.POLLIN)
        poller.register(self._pipe_r, select.POLLIN)
        mono = time.monotonic()
        next_beat = mono + self.settings.heartbeat_interval
        next_rescue = mono + RESCUE_INTERVAL_S
        next_poll = mono + self.settings.poll_interval
        trim_every = TRIM_CHECK_S
        next_trim = mono + trim_every
        last_cancel_check = 0.0
        next_due = self._next_due()
        while True:
            if not self.stopping:
                slots.fill()
                self._check_exit()  # a burst over an empty queue ends now, not in 1 s
            if self.stopping and not slots.busy:
                return
            # -- sleep until something can happen --------------------------------------
            now, mono = time.time(), time.monotonic()
            deadline = min(next_beat, next_rescue, next_poll) - mono
            if slots.busy:
                deadline = min(deadline, next_trim - mono)
            for moment in (self._earliest_due(next_due), slots.next_wakeup()):
                if moment is not None:
                    deadline = min(deadline, moment - now)
            if self.options.idle_timeout_s is not None and not slots.busy:
                deadline = min(deadline, self._last_activity + self.options.idle_timeout_s
                               - mono)
            # the LISTEN connection is re-made after a server restart: ask every time
            fd = backend.wakeup_fd()
            if fd != store_fd:
                if store_fd is not None and store_fd not in slots.by_fd:
                    try:
                        poller.unregister(store_fd)  # the old, closed connection
                    except KeyError:
                        pass
                if fd is not None:
                    poller.register(fd, select.POLLIN)
                store_fd = fd
            events = poller.poll(max(0, int(deadline * 1000) + 1))
            ready = [fd for fd, _ in events]
            # -- react -----------------------------------------------------------------
            if self._pipe_r in ready or self._stop_requested:
                self.check_signals()
            woken = listener.fileno() in ready
            if woken:
                listener.drain()
            if store_fd is not None and store_fd in ready:
                self._store(backend.drain_wakeups)
                woken = True
            if woken:
                slots.maybe_work = True
            slots.service(ready)
            mono = time.monotonic()
            if woken and slots.busy and mono - last_cancel_check >= CANCEL_CHECK_S:
                last_cancel_check = mono
                self._kill_cancelled()
            due = self._earliest_due(next_due)
            if due is not None and due <= time.time():
                self._due_hint = None
                self._promote()
                slots.maybe_work = True
                next_due = self._next_due()
            elif woken:
                next_due = self._next_due()  # new work may be due later
            if mono >= next_poll:  # the safety net for lost wake-ups and remote work
                next_poll = mono + self.settings.poll_interval
                slots.maybe_work = True
                next_due = self._next_due()
            if mono >= next_beat:
                next_beat = mono + self.settings.heartbeat_interval
                self._heartbeat()
                self._kill_cancelled()
                last_cancel_check = mono
            if mono >= next_rescue:
                next_rescue = mono + RESCUE_INTERVAL_S
                self._rescue()
            if mono >= next_trim:
                trim_every = slots.trim_outputs(trim_every)
                next_trim = mono + trim_every
            self._check_exit()

    def _earliest_due(self, next_run_at: Optional[float]) -> Optional[float]:
        hint = self._due_hint
        if next_run_at is None:
            return hint
        return next_run_at if hint is None else min(hint, next_run_at)

    def _check_exit(self) -> None:
        if self.stopping:
            return
        idle = not self.executor.busy and not self.executor.maybe_work
        if self.options.burst and idle and self._store(self._nothing_left):
            self.exit_reason = "burst: nothing left to run"
            self._begin_stop(now=False)
        if (self.options.idle_timeout_s is not None and idle
                and time.monotonic() - self._last_activity >= self.options.idle_timeout_s):
            self.exit_reason = f"idle for {self.options.idle_timeout_s:g}s"
            self._begin_stop(now=False)

    def _nothing_left(self) -> bool:
        """Burst mode's end: nothing due now and no failed job waiting for its retry
        (jobs scheduled for later do not keep a burst worker alive)."""
        backend = self.queue.backend
        now = time.time()
        if self.options.queues:  # only this worker's queues count
            first = backend.next_run_at(self.options.queues, 0.0)
            due = first is not None and first <= now
        else:
            due = backend.oldest_due(now) is not None
        if due:
            self.executor.maybe_work = True
            return False
        if not self.options.queues:
            return backend.counts().get(JobState.FAILED, 0) == 0
        return not any(backend.list_jobs([JobState.FAILED], name, 1)
                       for name in self.options.queues)

    # -- periodic work ------------------------------------------------------------------
    def _store(self, action: Any) -> Any:
        try:
            return action()
        except StoreError as exc:
            log.warning("store error: %s", exc)
            return None

    def _heartbeat(self) -> None:
        sent = self.fence.clock()
        try:
            request = self.queue.backend.heartbeat(
                self.worker_id, busy=self.executor.busy, jobs_done=self.jobs_done,
                now=time.time())
            if request == "gone":
                log.warning("this worker's registration was removed (considered dead); "
                            "registering again")
                self.queue.backend.register_worker(self._info(time.time()))
        except StoreError as exc:
            log.warning("store error: %s", exc)
            return  # not acknowledged: the fence deadline keeps running
        if self.fence.acknowledged(sent):
            log.warning("the store answers again: fence lifted, claiming again")
            self.executor.maybe_work = True
        refreshed = self._store(self.queue.settings)
        if refreshed is not None:
            self.settings = refreshed
            self.fence.update(refreshed.lease_timeout, refreshed.heartbeat_interval)
        if request == "now":
            self.exit_reason = "worker stop --now"
            self._begin_stop(now=True)
        elif request == "graceful" and not self.stopping:
            self.exit_reason = "worker stop"
            self._begin_stop(now=False)

    def _fenced(self) -> None:
        """The watchdog thread: no heartbeat was acknowledged for too long."""
        killed = self.executor.fence_kill()
        log.error("fenced: the store has not acknowledged a heartbeat for %.1fs (it "
                  "rescues jobs after lease-timeout); killed %d running job(s) and stopped "
                  "claiming until it answers", self.fence.fence_after, killed)
        self._poke()

    def _rescue(self) -> None:
        report = self._store(lambda: rescue(self.queue.backend, self.settings, time.time(),
                                            host=self.host, exclude=self.worker_id))
        if report and report.requeued:
            self.executor.maybe_work = True
        self._reclaim_lost()

    def _reclaim_lost(self) -> None:
        """Jobs the store says this worker runs but no slot does: a claim whose answer
        was lost with a broken connection, or a finish lost to a server crash.  They
        go back to pending (the history says why) instead of waiting forever."""
        held = self._store(lambda: self.queue.backend.processing_jobs([self.worker_id]))
        running = {job.id for job in self.executor.jobs()}
        for job in held or []:
            if job.id not in running:
                log.warning("job %s was held by this worker without running; requeued",
                            job.id)
                self.executor.give_back(job, job.worker or self.host, None,
                                     "claim or result lost with the store connection")

    def _promote(self) -> None:
        self._store(lambda: self.queue.backend.promote_due(time.time()))

    def _next_due(self) -> Optional[float]:
        """When the next waiting (scheduled or backing-off) job becomes due."""
        return self._store(lambda: self.queue.backend.next_run_at(self.options.queues,
                                                                  time.time()))

    def _kill_cancelled(self) -> None:
        for job in self.executor.jobs():
            current = self._store(lambda job_id=job.id: self.queue.backend.get(job_id))
            if current is not None and current.state is JobState.CANCELLED:
                if self.executor.kill(job.id):
                    log.info("job %s was cancelled: killing it", job.id)

    # -- stopping -----------------------------------------------------------------------
    def _begin_stop(self, *, now: bool) -> None:
        if now and not self.stop_now:
            self.stop_now = True
            self._stop_now_at = time.monotonic()
            log.warning("stopping now: killing running jobs and putting them back")
            self.executor.kill()
        elif not self.stopping:
            busy = self.executor.busy
            log.info("stopping: %s", f"waiting for {busy} running job(s) to finish"
                     if busy else "no job running")
        self.stopping = True

    def _on_signal(self) -> None:
        if self._signals >= 2:
            self.exit_reason = self.exit_reason or "second signal"
            self._begin_stop(now=True)
            return
        if self.stopping:
            return
        # A signal from `worker stop --now` on this host comes with a store flag.
        request = self._store(lambda: self.queue.backend.heartbeat(
            self.worker_id, busy=self.executor.busy, jobs_done=self.jobs_done, now=time.time()))
        self.exit_reason = self.exit_reason or self._last_signal or "signal"
        self._begin_stop(now=request == "now")

    def _install_signals(self) -> dict[int, Any]:
        """Signals only count: the C-level handler writes one byte per delivered signal
        to the self-pipe (set_wakeup_fd), so two quick Ctrl-Cs are two, even when
        Python would run its handler only once for both."""
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous
        for signum in STOP_SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # detached (or under nohup): a hang-up is not for this worker
            previous[signum] = signal.signal(signum, self._handle_signal)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._pipe_w)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        if previous:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _handle_signal(self, signum: int, frame: Any) -> None:
        pass  # counted from the wake-up bytes in _drain_pipe

    def _poke(self) -> None:
        """Wake the loop (from any thread)."""
        try:
            os.write(self._pipe_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _drain_pipe(self) -> None:
        while True:
            try:
                data = os.read(self._pipe_r, 512)
            except (BlockingIOError, InterruptedError, OSError):
                return
            if not data:
                return
            for byte in data:
                if byte in STOP_SIGNALS:
                    self._signals += 1
                    self._last_signal = signal.Signals(byte).name


def _raise_fd_limit(wanted: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit to %d: %s", target, exc)


HEAP_TRIM_THRESHOLD = 16 << 20


def _keep_freed_heap() -> None:
    """Let glibc keep up to 16 MiB of freed memory at the top of the heap instead of
    giving it back to the kernel as soon as 128 KiB are free.  With several
    supervisors on one SQLite file, every transaction finds the file changed by another
    process and drops its page cache; each drop freed the heap's top, and allocating it
    again cost ~60 page faults per job (a third of a supervisor's CPU)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-1, HEAP_TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: its allocator decides
