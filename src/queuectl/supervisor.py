"""A worker supervisor: one process, N slots (threads), one registration in the store.

The main thread never runs jobs.  It sleeps on the wake-up socket (plus a self-pipe for
signals) until: a wake-up arrives (new work: bump the slots), a retry or scheduled job
comes due, a heartbeat is due (report alive, read stop requests, rescue jobs of dead
workers, notice cancelled jobs), or a stop was asked for.

Signals only set flags.  First SIGINT/SIGTERM: stop claiming, let running jobs finish,
exit.  Second (or `worker stop --now`): kill running jobs' process groups and put the
jobs back to pending without counting the attempt.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from queuectl import wakeup
from queuectl.config import Settings
from queuectl.errors import StoreError
from queuectl.maintenance import rescue, this_host
from queuectl.models import WorkerInfo
from queuectl.queue import Queue
from queuectl.states import JobState
from queuectl.worker import Slot, WorkSignal

log = logging.getLogger(__name__)

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
        self.work = WorkSignal()
        self.stopping = False
        self.stop_now = False
        self.settings: Settings = self.queue.settings()
        self.jobs_done = 0
        self.exit_reason = ""
        self._slots: list[Slot] = []
        self._signals = 0
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        os.set_blocking(self._pipe_w, False)
        self._due_hint: Optional[float] = None
        self._last_activity = time.monotonic()
        self._stop_now_at: Optional[float] = None
        self._lock = threading.Lock()
        self._stop_requested = False
        self._previous_wakeup_fd = -1

    # -- called from slots --------------------------------------------------------------
    def note_due(self, run_at: Optional[float]) -> None:
        """A retry is due at `run_at`: make sure the main loop wakes for it."""
        if run_at is None:
            return
        with self._lock:
            if self._due_hint is None or run_at < self._due_hint:
                self._due_hint = run_at
        self._poke()

    def on_job_started(self) -> None:
        self._last_activity = time.monotonic()

    def on_job_done(self) -> None:
        with self._lock:
            self.jobs_done += 1
        self._last_activity = time.monotonic()

    def on_slot_idle(self) -> None:
        if self.options.burst or self.options.idle_timeout_s is not None:
            self._poke()

    def request_stop(self, reason: str) -> None:
        """Ask for a graceful stop from another thread (e.g. the demo's progress view)."""
        self.exit_reason = self.exit_reason or reason
        self._stop_requested = True
        self._poke()

    def exit_deadline_passed(self) -> bool:
        return (self._stop_now_at is not None
                and time.monotonic() - self._stop_now_at > STOP_NOW_GRACE_S)

    # -- lifecycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        listener = wakeup.Listener(self.url, self.worker_id)
        listener.add_fd(self._pipe_r)
        previous = self._install_signals()
        now = time.time()
        self.queue.backend.register_worker(WorkerInfo(
            id=self.worker_id, host=self.host, pid=os.getpid(), slots=self.options.slots,
            queues=self.options.queues or [], started_at=now, heartbeat_at=now))
        log.info("worker %s started: %d slot(s), queues %s, store %s", self.worker_id,
                 self.options.slots, ",".join(self.options.queues or ["*"]), self.url)
        try:
            self._rescue()
            self._slots = [Slot(self, i) for i in range(1, self.options.slots + 1)]
            for slot in self._slots:
                slot.start()
            self._main_loop(listener)
            self._drain()
        finally:
            self._restore_signals(previous)
            listener.close()
            try:
                self.queue.backend.unregister_worker(self.worker_id)
            except StoreError as exc:
                log.warning("could not unregister: %s", exc)
            self.queue.close()
            os.close(self._pipe_r)
            os.close(self._pipe_w)
        log.info("worker %s stopped (%s); %d job(s) done", self.worker_id,
                 self.exit_reason or "stopped", self.jobs_done)
        return 0

    def _main_loop(self, listener: wakeup.Listener) -> None:
        mono = time.monotonic()
        next_beat = mono + self.settings.heartbeat_interval
        next_rescue = mono + RESCUE_INTERVAL_S
        last_cancel_check = 0.0
        next_due = self._next_due()
        while not self.stopping:
            mono = time.monotonic()
            timeout = min(next_beat, next_rescue, mono + self.settings.poll_interval) - mono
            due = self._earliest_due(next_due)
            if due is not None:
                timeout = min(timeout, due - time.time())
            if self.options.idle_timeout_s is not None:
                timeout = min(timeout, self._last_activity + self.options.idle_timeout_s
                              - mono)
            woken = listener.wait(max(0.0, timeout))
            self._drain_pipe()
            if self._signals:
                self._on_signal()
                if self.stopping:
                    break
            if self._stop_requested:
                self._begin_stop(now=False)
                break
            mono = time.monotonic()
            if woken:
                self.work.bump()
                if self._busy() and mono - last_cancel_check >= CANCEL_CHECK_S:
                    last_cancel_check = mono
                    self._kill_cancelled()
            due = self._earliest_due(next_due)
            if due is not None and due <= time.time():
                with self._lock:
                    self._due_hint = None
                self._promote()
                self.work.bump()
                next_due = self._next_due()
            elif woken or timeout >= self.settings.poll_interval - 1e-3:
                next_due = self._next_due()  # new or remote work may be due later
            if mono >= next_beat:
                next_beat = mono + self.settings.heartbeat_interval
                self._heartbeat()
                self._kill_cancelled()
                last_cancel_check = mono
            if mono >= next_rescue:
                next_rescue = mono + RESCUE_INTERVAL_S
                self._rescue()
            self._check_exit()

    def _earliest_due(self, next_run_at: Optional[float]) -> Optional[float]:
        hint = self._due_hint
        if next_run_at is None:
            return hint
        return next_run_at if hint is None else min(hint, next_run_at)

    def _check_exit(self) -> None:
        if self.stopping or not self._slots:
            return
        all_idle = all(slot.idle for slot in self._slots) and not self._busy()
        if self.options.burst and all_idle:
            if self._store(self._nothing_left):
                self.exit_reason = "burst: nothing left to run"
                self._begin_stop(now=False)
        if (self.options.idle_timeout_s is not None and all_idle
                and time.monotonic() - self._last_activity >= self.options.idle_timeout_s):
            self.exit_reason = f"idle for {self.options.idle_timeout_s:g}s"
            self._begin_stop(now=False)

    def _nothing_left(self) -> bool:
        """Burst mode's end: nothing due now and no failed job waiting for its retry
        (jobs scheduled for later do not keep a burst worker alive)."""
        backend = self.queue.backend
        if backend.oldest_due(time.time()) is not None:
            return False
        if not self.options.queues:
            return backend.counts().get(JobState.FAILED, 0) == 0
        return not any(backend.list_jobs([JobState.FAILED], name, 1)
                       for name in self.options.queues)

    def _drain(self) -> None:
        """Wait for the slots to finish (graceful) or to give their jobs back (now)."""
        self.work.bump()
        while any(slot.is_alive() for slot in self._slots):
            for slot in self._slots:
                slot.join(0.1)
            self._drain_pipe()
            if self._signals >= 2 and not self.stop_now:
                self._begin_stop(now=True)
            if not self.stop_now and self._heartbeat_due():
                self._heartbeat()

    _last_beat = 0.0

    def _heartbeat_due(self) -> bool:
        return time.monotonic() - self._last_beat >= self.settings.heartbeat_interval

    # -- periodic work ------------------------------------------------------------------
    def _store(self, action: Any) -> Any:
        try:
            return action()
        except StoreError as exc:
            log.warning("store error: %s", exc)
            return None

    def _busy(self) -> int:
        return sum(1 for slot in self._slots if slot.job is not None)

    def _heartbeat(self) -> None:
        self._last_beat = time.monotonic()
        request = self._store(lambda: self.queue.backend.heartbeat(
            self.worker_id, busy=self._busy(), jobs_done=self.jobs_done, now=time.time()))
        refreshed = self._store(self.queue.settings)
        if refreshed is not None:
            self.settings = refreshed
        if request == "gone":
            log.warning("this worker's registration was removed (considered dead); "
                        "registering again")
            now = time.time()
            self._store(lambda: self.queue.backend.register_worker(WorkerInfo(
                id=self.worker_id, host=self.host, pid=os.getpid(),
                slots=self.options.slots, queues=self.options.queues or [],
                started_at=now, heartbeat_at=now)))
        elif request == "now":
            self.exit_reason = "worker stop --now"
            self._begin_stop(now=True)
        elif request == "graceful" and not self.stopping:
            self.exit_reason = "worker stop"
            self._begin_stop(now=False)

    def _rescue(self) -> None:
        report = self._store(lambda: rescue(self.queue.backend, self.settings, time.time(),
                                            host=self.host, exclude=self.worker_id))
        if report and report.requeued:
            self.work.bump()

    def _promote(self) -> None:
        self._store(lambda: self.queue.backend.promote_due(time.time()))

    def _next_due(self) -> Optional[float]:
        """When the next waiting (scheduled or backing-off) job becomes due."""
        return self._store(lambda: self.queue.backend.next_run_at(self.options.queues,
                                                                  time.time()))

    def _kill_cancelled(self) -> None:
        for slot in self._slots:
            job = slot.job
            if job is None:
                continue
            current = self._store(lambda: self.queue.backend.get(job.id))
            if current is not None and current.state is JobState.CANCELLED:
                if slot.kill(job.id):
                    log.info("job %s was cancelled: killing it", job.id)

    # -- stopping -----------------------------------------------------------------------
    def _begin_stop(self, *, now: bool) -> None:
        if now and not self.stop_now:
            self.stop_now = True
            self._stop_now_at = time.monotonic()
            log.warning("stopping now: killing running jobs and putting them back")
            for slot in self._slots:
                slot.kill()
        elif not self.stopping:
            busy = self._busy()
            log.info("stopping: %s", f"waiting for {busy} running job(s) to finish"
                     if busy else "no job running")
        self.stopping = True
        self.work.bump()

    def _on_signal(self) -> None:
        if self._signals >= 2:
            self.exit_reason = self.exit_reason or "second signal"
            self._begin_stop(now=True)
            return
        # A signal from `worker stop --now` on this host comes with a store flag.
        request = self._store(lambda: self.queue.backend.heartbeat(
            self.worker_id, busy=self._busy(), jobs_done=self.jobs_done, now=time.time()))
        self.exit_reason = self.exit_reason or "signal"
        self._begin_stop(now=request == "now")

    def _install_signals(self) -> dict[int, Any]:
        """Signals only count: the C-level handler writes one byte per delivered signal
        to the self-pipe (set_wakeup_fd), so two quick Ctrl-Cs are two, even when
        Python would run its handler only once for both."""
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous
        for signum in (signal.SIGINT, signal.SIGTERM):
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
        try:
            os.write(self._pipe_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _drain_pipe(self) -> None:
        stop_signals = (signal.SIGINT, signal.SIGTERM)
        while True:
            try:
                data = os.read(self._pipe_r, 512)
            except (BlockingIOError, InterruptedError, OSError):
                return
            if not data:
                return
            self._signals += sum(1 for byte in data if byte in stop_signals)
