"""Hooks: the `on-dead` / `on-complete` commands, run by a supervisor service.

The store records a hook event in the same transaction as a job's final transition
(migration 0008's trigger, only when a hook is configured for it), so the worker's
finish path does nothing more.  Every supervisor runs a HookRunner: it asks the store
every HOOK_CHECK_S whether an event waits (a read), claims up to its free hook slots
(one caller gets each event, on any host), and runs each hook as `sh -c HOOK` in a
process group of its own with the job's fields in QUEUECTL_* variables.  The loop wakes
on the hook's pidfd; past `hook-timeout` the group is killed.  The outcome (ok, failed,
timeout, error) is recorded on the event and in the job's history, and a failure is
logged: a hook is never run again (at most once; DECISIONS 49).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Callable, Optional

from queuectl.errors import StoreError
from queuectl.models import HookEvent
from queuectl.worker.context import WorkerContext

log = logging.getLogger("queuectl.worker.supervisor")

HOOK_CHECK_S = 1.0  # a new event is seen within about this long
HOOK_SLOTS = 4  # hooks one supervisor runs at once
PURGE_EVERY_S = 3600.0  # ended events older than `retention` go this often
ENV_TEXT_MAX = 4096  # characters of the error and command put in the environment
OUTPUT_TAIL = 300  # bytes of a failed hook's output in the log and the history


def hook_env(event: HookEvent, store: str, base: Optional[dict[str, str]] = None
             ) -> dict[str, str]:
    """The hook's environment: the supervisor's, the store (so `queuectl show
    "$QUEUECTL_JOB_ID"` works) and the job's fields."""
    env = dict(os.environ if base is None else base)

    def text(value: Optional[str]) -> str:
        return ("" if value is None else value)[:ENV_TEXT_MAX].replace("\0", "")

    env.update({
        "QUEUECTL_DB": store,
        "QUEUECTL_HOOK_EVENT": event.event,
        "QUEUECTL_JOB_ID": event.job_id,
        "QUEUECTL_JOB_STATE": event.event,
        "QUEUECTL_EXIT_CODE": "" if event.exit_code is None else str(event.exit_code),
        "QUEUECTL_ERROR": text(event.error),
        "QUEUECTL_QUEUE": event.queue,
        "QUEUECTL_ATTEMPTS": str(event.attempts),
        "QUEUECTL_COMMAND": text(event.command),
    })
    return env


@dataclass
class HookRun:
    """One hook process."""

    event: HookEvent
    proc: subprocess.Popen[bytes]
    pidfd: int
    output: IO[bytes]
    deadline: float  # monotonic
    started: float  # monotonic


def _tail(handle: IO[bytes]) -> str:
    try:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - OUTPUT_TAIL))
        data = handle.read()
    except (OSError, ValueError):
        return ""
    text = data.decode("utf-8", "replace").strip().replace("\n", " | ")
    # the supervisor log and the history show it: no escape sequences from a hook
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class HookRunner:
    """The supervisor's hook service (see the module's text)."""

    def __init__(self, ctx: WorkerContext, poller: Any,
                 spawn: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen) -> None:
        self.ctx = ctx
        self.poller = poller  # the loop's select.poll: a hook's pidfd wakes it
        self.spawn = spawn
        self.running: dict[int, HookRun] = {}  # by event id
        self.check_at = ctx.clock.mono()  # at once: events recorded while none ran
        self.purge_at = ctx.clock.mono() + 60.0
        self.drained = False  # the last look before a graceful stop was taken

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def wanted_at(self) -> Optional[float]:
        moments = [run.deadline for run in self.running.values()]
        if not self.ctx.stopping and len(self.running) < HOOK_SLOTS:
            moments.append(self.check_at)
        return min(moments) if moments else None

    def tick(self, mono: float) -> None:
        self.reap(mono)
        if self.ctx.stopping or mono < self.check_at:
            return
        self.check_at = mono + HOOK_CHECK_S
        self.claim_and_start(mono)
        if mono >= self.purge_at:
            self.purge_at = mono + PURGE_EVERY_S
            self._store(lambda: self.ctx.backend.hook_purge(
                self.ctx.clock.wall() - self.ctx.settings.retention))

    def settled(self) -> bool:
        """Called while the supervisor stops with no job running: True once no hook
        runs.  A graceful stop first takes the events already recorded (a burst worker
        runs the hook of its last job) and waits for them, each bounded by its
        timeout; stop --now kills running hooks."""
        mono = self.ctx.clock.mono()
        if self.ctx.stop_now:
            self.kill_all("the worker was stopped with --now")
            return True
        if not self.drained:
            self.drained = True
            self.claim_and_start(mono)
        self.reap(mono)
        return not self.running

    # -- claiming and starting ----------------------------------------------------------
    def claim_and_start(self, mono: float) -> None:
        free = HOOK_SLOTS - len(self.running)
        backend = self.ctx.backend
        if free <= 0 or not self._store(backend.hook_pending):
            return
        events = self._store(lambda: backend.hook_claim(self.ctx.worker_id, free,
                                                        self.ctx.clock.wall()))
        for event in events or []:
            self.start(event, mono)

    def start(self, event: HookEvent, mono: float) -> None:
        timeout = self.ctx.settings.hook_timeout
        output = tempfile.TemporaryFile(prefix="queuectl-hook-")
        try:
            proc = self.spawn(["/bin/sh", "-c", event.hook], stdin=subprocess.DEVNULL,
                              stdout=output, stderr=subprocess.STDOUT,
                              env=hook_env(event, self.ctx.queue.url),
                              start_new_session=True, close_fds=True)
            pidfd = os.pidfd_open(proc.pid)
        except OSError as exc:
            output.close()
            self.finish(event, "error", f"could not start: {exc}", 0.0)
            return
        self.poller.register(pidfd, select.POLLIN)
        self.running[event.id] = HookRun(event, proc, pidfd, output, mono + timeout, mono)
        log.info("job %s %s: running hook %d", event.job_id, event.event, event.id)

    # -- ending -------------------------------------------------------------------------
    def reap(self, mono: float) -> None:
        for run in list(self.running.values()):
            code = run.proc.poll()
            if code is not None:
                self._ended(run, code, mono)
            elif mono >= run.deadline:
                self._kill(run)
                timeout = self.ctx.settings.hook_timeout
                self._ended(run, None, mono, f"timed out after {timeout:g}s (killed)")

    def kill_all(self, why: str) -> None:
        for run in list(self.running.values()):
            self._kill(run)
            self._ended(run, None, self.ctx.clock.mono(), f"killed: {why}")

    def close(self) -> None:
        """At exit: nothing may outlive the supervisor unaccounted for."""
        if self.running:
            self.kill_all("the worker exited")

    def _kill(self, run: HookRun) -> None:
        try:
            os.killpg(run.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            run.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def _ended(self, run: HookRun, code: Optional[int], mono: float,
               why: Optional[str] = None) -> None:
        del self.running[run.event.id]
        try:
            self.poller.unregister(run.pidfd)
        except KeyError:
            pass
        os.close(run.pidfd)
        # whatever the hook left running in its group goes with it
        try:
            os.killpg(run.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        tail = _tail(run.output)
        run.output.close()
        if why is not None:
            result, detail = "timeout" if "timed out" in why else "error", why
        elif code == 0:
            result, detail = "ok", "exit 0"
        else:
            detail = f"killed by signal {-code}" if code is not None and code < 0 \
                else f"exit {code}"
            result = "failed"
        if result != "ok" and tail:
            detail = f"{detail}: {tail}"
        self.finish(run.event, result, detail, mono - run.started)

    def finish(self, event: HookEvent, result: str, detail: str, seconds: float) -> None:
        if result == "ok":
            log.info("job %s %s: hook %d ok (%.2fs)", event.job_id, event.event,
                     event.id, seconds)
        else:
            log.warning("job %s %s: hook %d %s: %s (not run again)", event.job_id,
                        event.event, event.id, result, detail)
        # not "result": that key marks the entries of runs (metrics reads them)
        name = "on-dead" if event.event == "dead" else "on-complete"
        entry: dict[str, Any] = {"attempt": event.attempts, "event": f"hook {name} {result}",
                                 "at": self.ctx.clock.wall(), "hook": event.hook,
                                 "hook_result": result, "worker": self.ctx.host}
        if result != "ok":
            entry["error"] = detail
        self._store(lambda: self.ctx.backend.hook_finish(event, result, detail,
                                                         self.ctx.clock.wall(), entry))

    def _store(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except StoreError as exc:
            log.warning("store error: %s", exc)
            return None
