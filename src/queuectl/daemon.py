"""Detached supervisors: start one in the background with a pid file and a log file,
and find / stop the ones running on this host."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from queuectl.errors import WorkerError
from queuectl.maintenance import pid_alive
from queuectl.paths import make_private_dir, open_private
from queuectl.queue import Queue

START_TIMEOUT_S = 15.0


@dataclass
class Detached:
    pid: int
    log_path: str
    pid_path: str


def log_path(queue: Queue) -> str:
    return os.path.join(queue.runtime_dir(), "worker.log")


def pid_dir(queue: Queue) -> str:
    return os.path.join(queue.runtime_dir(), "pids")


def start_detached(queue: Queue, worker_args: Sequence[str]) -> Detached:
    """Start `queuectl worker start ARGS` in its own session, logging to the store's
    worker.log, and return once it has registered in the store."""
    make_private_dir(pid_dir(queue))
    log_file = log_path(queue)
    # the store goes in the environment, not argv: `ps` shows argv (and a password in
    # a PostgreSQL URL) to every user of the host
    argv = [sys.executable, "-m", "queuectl", "worker", "start", *worker_args]
    env = dict(os.environ, QUEUECTL_DB=queue.url)
    # started with SIGHUP ignored (inherited through exec, as nohup does): a daemon
    # has no terminal, and a stray hang-up must not stop it
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with os.fdopen(open_private(log_file), "ab") as log, \
                open(os.devnull, "rb") as devnull:
            proc = subprocess.Popen(argv, stdin=devnull, stdout=log, stderr=log, env=env,
                                    start_new_session=True, close_fds=True)
    finally:
        signal.signal(signal.SIGHUP, hangup)
    pid_file = os.path.join(pid_dir(queue), f"{proc.pid}.pid")
    with os.fdopen(open_private(pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                   "w") as handle:
        handle.write(f"{proc.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _remove(pid_file)
            raise WorkerError(f"the worker exited at start (code {proc.returncode}); "
                              f"see {log_file}:\n{_tail(log_file)}")
        if any(w.pid == proc.pid for w, _ in queue.workers()):
            return Detached(proc.pid, log_file, pid_file)
        time.sleep(0.05)
    raise WorkerError(f"the worker (pid {proc.pid}) did not register within "
                      f"{START_TIMEOUT_S:g}s; see {log_file}")


def reap_pid_files(queue: Queue) -> list[int]:
    """Pids of detached supervisors still running; stale pid files are removed."""
    folder = pid_dir(queue)
    alive: list[int] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return alive
    for name in names:
        path = os.path.join(folder, name)
        try:
            pid = int(name.split(".")[0])
            os.kill(pid, 0)
            alive.append(pid)
        except (ValueError, ProcessLookupError):
            _remove(path)
        except PermissionError:
            alive.append(pid)
    return alive


def wait_until_gone(queue: Queue, pids: Sequence[int], timeout_s: Optional[float]) -> list[int]:
    """Wait for local supervisor pids to exit; returns those still running."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    remaining = list(pids)
    while remaining:
        remaining = [pid for pid in remaining if _alive(pid)]
        if not remaining or (deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(0.05)
    reap_pid_files(queue)
    return remaining


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
        if finished:
            return False
    except ChildProcessError:
        pass
    return pid_alive(pid)


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 4096))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def remove_file(path: str) -> None:
    """Remove a file if it is there (a supervisor's own pid file on its way out)."""
    _remove(path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
