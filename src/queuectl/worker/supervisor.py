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
from queuectl.errors import StoreCorrupt, StoreError, StoreLocked
from queuectl.maintenance import this_host
from queuectl.queue import Queue
from queuectl.states import JobState
from queuectl.worker.context import WorkerContext
from queuectl.worker.executor import Executor
from queuectl.worker.fence import Fence, Watchdog
from queuectl.worker.hooks import HookRunner
from queuectl.worker.services import (
    CancelWatch,
    CronFire,
    Heartbeat,
    PollTick,
    Promotion,
    Publish,
    Rescue,
    Trim,
    apply_priority_aging,
    load_queue_rules,
    store_call,
    worker_info,
)

log = logging.getLogger(__name__)

#: Signals that stop a supervisor: the first gracefully, the second now.  SIGHUP (the
#: terminal closed) counts as one for a foreground worker, so its running jobs are
#: never left behind unsupervised; a detached worker starts with it ignored.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: `worker stop` (graceful): "a stop was requested in the store"; never escalates
STOP_REQUEST_SIGNAL = signal.SIGUSR1

START_RETRY_S = 0.5  # first pause when the store cannot be reached at start-up
START_RETRY_MAX_S = 5.0


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
        self._signals = 0
        self._signals_handled = 0
        self._last_signal = ""  # the name of the last stop signal, for the log
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        os.set_blocking(self._pipe_w, False)
        self._stop_requested = False
        self._early_reason = ""
        self._previous_wakeup_fd = -1
        self._previous_signals: dict[int, Any] = {}
        self.worker_id = uuid.uuid4().hex[:12]

    def _build(self, settings: Settings) -> None:
        """The context, the executor and the services, once the settings are read."""
        options = self.options
        self.ctx = WorkerContext(
            queue=self.queue, worker_id=self.worker_id, host=this_host(),
            slots=options.slots, queues=options.queues, settings=settings,
            fence=Fence(settings.lease_timeout, settings.heartbeat_interval),
            exit_reason=self._early_reason, check_signals=self.check_signals)
        apply_priority_aging(self.ctx)
        load_queue_rules(self.ctx)
        self.executor = ex = Executor(self.ctx, options.slots)
        self.promotion = Promotion(self.ctx, ex)
        self.ctx.note_due = self.promotion.note_due
        self.cancels = CancelWatch(self.ctx, ex)
        self.heartbeat = Heartbeat(self.ctx, ex, self.cancels,
                                   lambda now: self._begin_stop(now=now))
        self.rescue = Rescue(self.ctx, ex)
        self.poll_tick = PollTick(self.ctx, ex, self.promotion)
        self.trim = Trim(self.ctx, ex)
        self.publish = Publish(self.ctx, ex)
        self.cron = CronFire(self.ctx, ex)
        self.hooks = HookRunner(self.ctx, ex.poller)
        #: in the order they run when several are due at one wake-up
        self.services: tuple[Any, ...] = (self.promotion, self.poll_tick, self.heartbeat,
                                          self.rescue, self.trim, self.publish, self.cron,
                                          self.hooks)

    def request_stop(self, reason: str) -> None:
        """Ask for a graceful stop from another thread (e.g. the demo's progress view)."""
        ctx = getattr(self, "ctx", None)
        if ctx is None:
            self._early_reason = self._early_reason or reason
        else:
            ctx.exit_reason = ctx.exit_reason or reason
        self._stop_requested = True
        self._poke()

    def check_signals(self) -> None:
        """Act on signals now (also called while a store call is being retried)."""
        self._drain_pipe()
        if self._signals > self._signals_handled:
            self._signals_handled = self._signals
            self._on_signal()
        if self._stop_requested and not self.ctx.stopping:
            self._begin_stop(now=False)

    # -- lifecycle ----------------------------------------------------------------------
    def run(self) -> int:
        """Run until stopped; returns the process exit code."""
        _raise_fd_limit(4 * self.options.slots + 64)  # a pidfd and a capture per job
        self._install_signals()  # before the first store call: start-up may wait
        try:
            settings = self._starting(self.queue.settings)
            if settings is None:
                return 0
            self._build(settings)
            return self._run_registered()
        finally:
            self._restore_signals()
            self.queue.close()
            os.close(self._pipe_r)
            os.close(self._pipe_w)

    def _run_registered(self) -> int:
        ctx = self.ctx
        listener = wakeup.Listener(self.url, ctx.worker_id)
        watchdog = Watchdog(ctx.fence, self._fenced)
        registered = False
        try:
            sent = ctx.fence.clock()
            registered = self._starting(self._register) is not None
            if not registered:
                return 0  # stopped while the store could not be reached
            ctx.fence.acknowledged(sent)
            watchdog.start()
            log.info("worker %s started: %d slot(s), queues %s, store %s", ctx.worker_id,
                     self.options.slots, ",".join(self.options.queues or ["*"]),
                     self.queue.display_url)
            self.rescue.run()
            self._loop(listener)
        except StoreCorrupt:
            self.executor.fence_kill()  # their results could not be recorded
            raise
        finally:
            watchdog.stop()
            listener.close()
            self.hooks.close()
            self.executor.close()
            if registered:
                try:
                    ctx.backend.unregister_worker(ctx.worker_id)
                except StoreError as exc:
                    log.warning("could not unregister: %s", exc)
        log.info("worker %s stopped (%s) after %d run(s)", ctx.worker_id,
                 ctx.exit_reason or "stopped", ctx.jobs_done)
        return 0

    def _register(self) -> bool:
        self.ctx.backend.register_worker(worker_info(self.ctx, time.time()))
        return True

    def _starting(self, action: Any) -> Any:
        """A start-up store call, retried while the store is locked, as the running
        loop rides such moments out; a stop signal meanwhile ends the start (returns
        None).  Other store errors (unreachable, read-only, corrupt) end it at once."""
        delay = START_RETRY_S
        said = False
        while True:
            try:
                return action()
            except StoreLocked as exc:
                if not said:
                    log.warning("store locked at start-up, retrying (Ctrl-C "
                                "stops): %s", exc)
                    said = True
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                self._drain_pipe()
                if self._signals or self._stop_requested:
                    log.info("stopped before the store could be reached")
                    return None
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, START_RETRY_MAX_S)

    def _loop(self, listener: wakeup.Listener) -> None:
        ctx = self.ctx
        ex = self.executor
        poller = ex.poller  # job pidfds are registered as jobs start and end
        poller.register(listener.fileno(), select.POLLIN)
        poller.register(self._pipe_r, select.POLLIN)
        store_fd: Optional[int] = None
        heap_kept = False
        while True:
            if not ctx.stopping:
                ex.fill()
                self._check_exit()  # a burst over an empty queue ends now, not in 1 s
            if not heap_kept:  # after the first jobs started: ctypes is ~5 ms to import
                _keep_freed_heap()
                heap_kept = True
            if ctx.stopping and not ex.busy and self.hooks.settled():
                return
            store_fd = self._watch_store_fd(store_fd)
            events = poller.poll(self._sleep_ms())
            ready = [fd for fd, _ in events]
            # -- react -----------------------------------------------------------------
            if self._pipe_r in ready or self._stop_requested:
                self.check_signals()
            woken = listener.fileno() in ready
            if woken:
                listener.drain()
            if store_fd is not None and store_fd in ready:
                store_call(ctx.backend.drain_wakeups)
                woken = True
            ex.service(ready)
            mono = ctx.clock.mono()
            if woken:
                ex.maybe_work = True
                self.cancels.on_wakeup(mono)
                self.promotion.refresh()  # new work may be due later
            for service in self.services:
                service.tick(mono)
            self._check_exit()

    def _sleep_ms(self) -> int:
        """How long the loop may sleep: until the first service, run deadline or idle
        timeout."""
        ctx, ex = self.ctx, self.executor
        now, mono = ctx.clock.wall(), ctx.clock.mono()
        deadline = ctx.settings.poll_interval
        for service in self.services:
            moment = service.wanted_at()
            if moment is not None:
                deadline = min(deadline, moment - mono)
        wake = ex.next_wakeup()
        if wake is not None:
            deadline = min(deadline, wake - now)
        if self.options.idle_timeout_s is not None and not ex.busy:
            deadline = min(deadline, ctx.last_activity + self.options.idle_timeout_s
                           - mono)
        return max(0, int(deadline * 1000) + 1)

    def _watch_store_fd(self, store_fd: Optional[int]) -> Optional[int]:
        """The LISTEN connection is re-made after a server restart: ask every time."""
        fd = self.ctx.backend.wakeup_fd()
        if fd != store_fd:
            poller = self.executor.poller
            if store_fd is not None and store_fd not in self.executor.by_fd:
                try:
                    poller.unregister(store_fd)  # the old, closed connection
                except KeyError:
                    pass
            if fd is not None:
                poller.register(fd, select.POLLIN)
        return fd

    def _check_exit(self) -> None:
        ctx = self.ctx
        if ctx.stopping:
            return
        idle = not self.executor.busy and not self.executor.maybe_work
        if self.options.burst and idle and store_call(self._nothing_left):
            ctx.exit_reason = "burst: nothing left to run"
            self._begin_stop(now=False)
        if (self.options.idle_timeout_s is not None and idle
                and ctx.clock.mono() - ctx.last_activity >= self.options.idle_timeout_s):
            ctx.exit_reason = f"idle for {self.options.idle_timeout_s:g}s"
            self._begin_stop(now=False)

    def _nothing_left(self) -> bool:
        """Burst mode's end: nothing due now and no failed job waiting for its retry
        (jobs scheduled for later do not keep a burst worker alive)."""
        backend = self.ctx.backend
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

    def _fenced(self) -> None:
        """The watchdog thread: no heartbeat was acknowledged for too long."""
        killed = self.executor.fence_kill()
        log.error("fenced: the store has not acknowledged a heartbeat for %.1fs (it "
                  "rescues jobs after lease-timeout); killed %d running job(s) and stopped "
                  "claiming until it answers", self.ctx.fence.fence_after, killed)
        self._poke()

    # -- stopping -----------------------------------------------------------------------
    def _begin_stop(self, *, now: bool) -> None:
        ctx = self.ctx
        if now and not ctx.stop_now:
            ctx.stop_now = True
            ctx.stop_now_at = ctx.clock.mono()
            log.warning("stopping now: killing running jobs and putting them back")
            self.executor.kill()
            self.hooks.kill_all("the worker was stopped with --now")
        elif not ctx.stopping:
            busy, waiting = self.executor.busy, self.executor.unrecorded
            if waiting:
                log.warning("stopping: %d ended job result(s) are not recorded yet (the "
                            "store refuses writes), %d job(s) in slots", waiting, busy)
            else:
                log.info("stopping: %s", f"waiting for {busy} running job(s) to finish"
                         if busy else "no job running")
        ctx.stopping = True

    def _on_signal(self) -> None:
        ctx = self.ctx
        if self._signals >= 2:
            ctx.exit_reason = ctx.exit_reason or "second signal"
            self._begin_stop(now=True)
            return
        if ctx.stop_now:
            return
        # A signal from `worker stop --now` on this host comes with a store flag (also
        # while a graceful stop is under way).
        request = store_call(lambda: ctx.backend.heartbeat(
            ctx.worker_id, busy=self.executor.busy, jobs_done=ctx.jobs_done,
            now=time.time()))
        if ctx.stopping and request != "now":
            return
        ctx.exit_reason = ctx.exit_reason or self._last_signal or "signal"
        self._begin_stop(now=request == "now")

    def _install_signals(self) -> None:
        """Signals only count: the C-level handler writes one byte per delivered signal
        to the self-pipe (set_wakeup_fd), so two quick Ctrl-Cs are two, even when
        Python would run its handler only once for both."""
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            if signum == signal.SIGHUP and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # detached (or under nohup): a hang-up is not for this worker
            previous[signum] = signal.signal(signum, self._handle_signal)
        previous[STOP_REQUEST_SIGNAL] = signal.signal(STOP_REQUEST_SIGNAL,
                                                      self._handle_signal)
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._pipe_w)
        self._previous_signals = previous

    def _restore_signals(self) -> None:
        previous, self._previous_signals = self._previous_signals, {}
        if previous:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        for signum, handler in previous.items():
            if signum == STOP_REQUEST_SIGNAL and handler == signal.SIG_DFL:
                handler = signal.SIG_IGN  # a late `worker stop` must not kill the exit
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
                if byte == STOP_REQUEST_SIGNAL:
                    self._stop_requested = True
                    self._early_reason = self._early_reason or "worker stop"
                    if getattr(self, "ctx", None) is not None:
                        self.ctx.exit_reason = self.ctx.exit_reason or "worker stop"
                elif byte in STOP_SIGNALS:
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
