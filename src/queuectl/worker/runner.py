"""Run one job command: `/bin/sh -c`, its own process group (and its own session when
the worker has a controlling terminal), output captured while it runs (an in-memory
file per run, or a named file; see `queuectl.worker.capture`), a timeout that kills the whole
group.

Nothing a job starts outlives it: with a cgroup per run (`queuectl.worker.cgroup`)
whatever is left in it when the command exits, times out or is cancelled is killed,
`setsid` daemons included; without cgroups the process group is killed, and on a
timeout or cancel also the descendants found through /proc while the command still ran
(a daemon that double-forked away from its session then escapes).  A job whose command
exited keeps its own result; the leftovers are killed and a line is logged.

The child is watched through a pidfd, so a supervisor can sleep in one `poll()` on
all its running jobs and its wake-up socket, and notice an exit, a timeout or a
cancel at once, without a thread per job.  Everything is reaped; nothing here raises
for a job's own failure: the result is an `Outcome`.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import threading
import time
from typing import Mapping, Optional

from queuectl.models import Outcome
from queuectl.worker import capture, cgroup

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
MAX_ARG_BYTES = 128 * 1024 - 1  # Linux's limit on one argument (MAX_ARG_STRLEN)
EMPTY_WAIT_S = 1.0  # how long a run's end waits for its killed leftovers to exit


class Run:
    """One execution of a command.

    Event-loop use (the supervisor runs many at once in one thread): `start()`, put
    `fileno()` (a pidfd, readable when the child exits) in a poll set, call `check()`
    when it is readable or at `next_wakeup()`; `check()` returns the `Outcome` once the
    child is reaped.  Blocking use: `start()`, then `wait()`.  `kill()` works from any
    thread: TERM to the group now, KILL after `grace_s`.
    """

    def __init__(self, command: str, *, output_path: Optional[str] = None,
                 capture_id: str = "run", cwd: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None, timeout_s: float = 0,
                 output_limit: int = 65536, grace_s: float = 2.0,
                 keep_path: Optional[str] = None, keep_max: int = 0) -> None:
        self.command = command
        #: a file that gets the run's output as it is written, its first `keep_max`
        #: bytes (output-file-max); None: only the tail is kept
        self.keep_path = keep_path if keep_max > 0 else None
        self.keep_max = keep_max
        self._keep_fd = -1
        self._kept = 0  # bytes copied into keep_path
        self._output_size = self._output_dropped = 0
        self.output_path = output_path  # None: an in-memory capture named `capture_id`
        self.capture_id = capture_id
        self.cwd = cwd
        self.env = dict(env or {})
        self.timeout_s = float(timeout_s or 0)
        self.output_limit = max(0, int(output_limit))
        self.grace_s = grace_s
        self.pid: Optional[int] = None
        self._proc: Optional[_Child] = None
        self._pidfd: Optional[int] = None
        self._spawn_error: Optional[str] = None
        self._spawn_permanent = False  # a retry would fail the same way
        self._started_at = 0.0
        self._deadline: Optional[float] = None  # the timeout, while not terminating
        self._kill_at: Optional[float] = None  # when TERM turns into KILL
        self._timed_out = False
        self._killed = False
        self._outcome: Optional[Outcome] = None
        self._lock = threading.Lock()
        self._kill_r = self._kill_w = -1  # created by wait() for cross-thread kills
        self._out_fd = -1  # kept open (read-write) to read the tail back at the end
        self._trimmed_to = 0  # output before this offset was released (capture.trim)
        self._size_seen = 0
        self._group: Optional[cgroup.Group] = None  # the run's cgroup, while it runs
        self._pool: Optional[cgroup.Pool] = None
        self._tree: list[int] = []  # no cgroup: pidfds of descendants found at TERM

    # -- control ------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the command.  Never raises: a spawn failure is recorded and reported
        as the outcome."""
        self._started_at = time.time()
        out_fd = -1
        try:
            out_fd = self._out_fd = (capture.open_memfd(self.capture_id)
                                     if self.output_path is None
                                     else _open_output(self.output_path))
            env = dict(_base_env())
            for key, value in self.env.items():
                env[os.fsencode(key)] = os.fsencode(value)
            command = self.command
            self._pool = pool = cgroup.pool()
            group = self._group = pool.acquire() if pool is not None else None
            entered = group is not None and \
                len(group.enter) + len(command.encode()) <= MAX_ARG_BYTES
            if entered and group is not None:
                command = group.enter + command  # in its group before anything runs
            self._proc = _Child.spawn(command, out_fd, self.cwd, env)
            self.pid = self._proc.pid
            if group is not None and not entered:  # a command near the 128 KiB limit
                try:
                    group.add(self.pid)
                except OSError:  # it has already exited; its group is still killed
                    pass
            self._pidfd = _pidfd(self.pid)
            if self.timeout_s > 0:
                self._deadline = self._started_at + self.timeout_s
        except OSError as exc:
            self._spawn_error = _describe(exc, self.cwd)
            self._spawn_permanent = self.cwd is not None and not os.path.isdir(self.cwd)
        except ValueError as exc:  # e.g. a NUL byte in an environment value
            self._spawn_error = str(exc)
            self._spawn_permanent = True
        finally:
            if self._proc is None:
                self._close_output()
                self._release_group()
        if self._killed and self._proc is not None:  # kill() came before start()
            self._terminate()

    @property
    def output_fd(self) -> int:
        """The capture's descriptor while the run is live (-1 when there is none)."""
        return self._out_fd

    def fileno(self) -> int:
        """A descriptor that becomes readable when the child exits (-1: poll by time)."""
        return -1 if self._pidfd is None else self._pidfd

    def kill(self) -> None:
        """Stop the run (cancel or stop --now): TERM the group, KILL after the grace."""
        with self._lock:
            if self._killed:
                return
            self._killed = True
            if self._proc is not None and self._outcome is None:
                self._terminate()
            if self._kill_w >= 0:
                try:
                    os.write(self._kill_w, b"x")
                except OSError:
                    pass

    def kill_now(self) -> None:
        """KILL the whole group at once, from any thread (fencing: a run that may no
        longer be this worker's must be gone before its lease can run out)."""
        with self._lock:
            self._killed = True
            if self._proc is not None and self._outcome is None:
                self._kill_tree()

    @property
    def killed(self) -> bool:
        return self._killed

    def next_wakeup(self) -> Optional[float]:
        """The next time (epoch) `check()` must run even if the pidfd stays quiet."""
        if self._outcome is not None:
            return None
        if self._proc is None:  # a failed spawn has no pidfd: check it now
            return self._started_at if self._spawn_error is not None else None
        times = [t for t in (self._deadline, self._kill_at) if t is not None]
        if self._pidfd is None:
            times.append(time.time() + 0.05)  # no pidfd: poll the child
        return min(times) if times else None

    def check(self) -> Optional[Outcome]:
        """Advance the run without blocking: enforce the timeout and the KILL after the
        grace, and return the outcome once the child has exited (None until then)."""
        if self._outcome is not None:
            return self._outcome
        proc = self._proc
        if proc is None:
            self._outcome = Outcome(exit_code=None,
                                    spawn_error=self._spawn_error or "not started",
                                    spawn_permanent=self._spawn_permanent,
                                    started_at=self._started_at, finished_at=time.time())
            return self._outcome
        returncode = proc.poll()
        if returncode is None:
            self.enforce_deadlines()
            return None
        with self._lock:  # kill_now() from another thread must not hit a reused group
            self._end_leftovers()
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            exit_code = returncode if returncode >= 0 else None
            sig = -returncode if returncode < 0 else None
            self._outcome = Outcome(exit_code=exit_code, signal=sig,
                                    timed_out=self._timed_out,
                                    cancelled=self._killed and not self._timed_out,
                                    output_tail=self.output_tail(),
                                    started_at=self._started_at, finished_at=time.time())
            self._keep_output()
            self._outcome.output_bytes = self._output_size
            self._outcome.output_dropped = self._output_dropped
            self._outcome.output_file = self._close_keep()
            self._close_output()  # the leftovers are gone: the capture's memory is freed
        return self._outcome

    def _end_leftovers(self) -> None:
        """The command has exited: kill whatever it left running (its cgroup, its
        process group, and when it was stopped the descendants found meanwhile), wait
        for those to exit, and give the group back."""
        assert self._proc is not None
        group = self._group
        left = group.pids() if group is not None and group.populated() else []
        if group is not None and left:
            group.kill()
        in_group = _killpg(self._proc.pid, signal.SIGKILL)  # also without a cgroup
        escaped = _signal_all(self._tree, signal.SIGKILL)
        if group is not None and left:
            group.wait_empty(EMPTY_WAIT_S)
        self._release_group()
        if (left or in_group or escaped) and not (self._timed_out or self._killed):
            log.warning("job %s: its command exited leaving %s running; killed",
                        self.capture_id, f"{len(left)} process(es)" if left
                        else "processes of its group")

    def _release_group(self) -> None:
        for fd in self._tree:
            try:
                os.close(fd)
            except OSError:
                pass
        self._tree = []
        if self._group is not None and self._pool is not None:
            self._pool.release(self._group)
        self._group = None

    def enforce_deadlines(self) -> None:
        """The timeout (TERM to the group) and the KILL after the grace, when due;
        nothing is reaped (`check()` does that).  A supervisor also calls this while it
        waits for an unreachable store, so that a timeout still holds then."""
        if self._proc is None or self._outcome is not None:
            return
        now = time.time()
        if self._deadline is not None and now >= self._deadline:
            self._timed_out = True
            self._terminate()
        if self._kill_at is not None and now >= self._kill_at:
            with self._lock:
                if self._outcome is None:
                    self._kill_tree()
            self._kill_at = None

    def _terminate(self) -> None:
        """TERM the whole tree (the cgroup, or the process group and the descendants
        found through /proc); KILL follows at `_kill_at`."""
        if self._proc is None or self._kill_at is not None:
            return
        self._deadline = None
        pid = self._proc.pid
        if self._group is not None:
            self._group.signal(signal.SIGTERM)
        else:
            self._tree += _descendants(pid, self._tree)
            _signal_all(self._tree, signal.SIGTERM)
        _killpg(pid, signal.SIGTERM)  # the child leads its own group
        self._kill_at = time.time() + self.grace_s

    def _kill_tree(self) -> None:
        """KILL the whole tree now (the caller holds the lock, the run is not over)."""
        assert self._proc is not None
        if self._group is not None:
            self._group.kill()
        else:
            self._tree += _descendants(self._proc.pid, self._tree)
            _signal_all(self._tree, signal.SIGKILL)
        _killpg(self._proc.pid, signal.SIGKILL)

    # -- blocking use -------------------------------------------------------------------
    def wait(self) -> Outcome:
        """Block until the run ends (timeout and cross-thread kill() included)."""
        with self._lock:
            self._kill_r, self._kill_w = os.pipe()
            os.set_blocking(self._kill_w, False)
            if self._killed and self._proc is not None:
                self._terminate()
        try:
            while True:
                outcome = self.check()
                if outcome is not None:
                    return outcome
                wake = self.next_wakeup()
                timeout = None if wake is None else max(0.0, wake - time.time())
                _sleep(self._pidfd, self._kill_r, timeout)
        finally:
            with self._lock:
                for fd in (self._kill_r, self._kill_w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                self._kill_r = self._kill_w = -1

    def output_tail(self) -> str:
        """The last `output_limit` bytes the command wrote; a tail that had to be cut
        starts at a line (when one starts in its first half).  Records the output's
        size and how much of it was dropped."""
        try:
            if self._out_fd >= 0:
                size = os.fstat(self._out_fd).st_size
                data = os.pread(self._out_fd, self.output_limit,
                                max(0, size - self.output_limit)) if size else b""
            elif self.output_path is not None:
                with open(self.output_path, "rb") as handle:
                    handle.seek(0, os.SEEK_END)
                    size = handle.tell()
                    handle.seek(max(0, size - self.output_limit))
                    data = handle.read(self.output_limit)
            else:
                return ""
        except OSError:
            return ""
        if size > len(data):  # cut: begin at the first whole line
            newline = data.find(b"\n", 0, len(data) // 2)
            if newline >= 0:
                data = data[newline + 1:]
        self._output_size, self._output_dropped = size, size - len(data)
        return data.decode("utf-8", "replace")

    def _keep_output(self) -> None:
        """Copy what was written since the last call into `keep_path`, up to
        `keep_max` bytes (before a trim releases it, and at the end)."""
        if self.keep_path is None or self._out_fd < 0 or self._kept >= self.keep_max:
            return
        try:
            if self._keep_fd < 0:
                folder = os.path.dirname(self.keep_path)
                if not os.path.isdir(folder):
                    os.makedirs(folder, mode=0o700, exist_ok=True)
                self._keep_fd = os.open(self.keep_path, os.O_WRONLY | os.O_CREAT |
                                        os.O_TRUNC | os.O_CLOEXEC, 0o600)
            size = os.fstat(self._out_fd).st_size
            while self._kept < min(size, self.keep_max):
                data = os.pread(self._out_fd, min(1 << 20, min(size, self.keep_max)
                                                  - self._kept), self._kept)
                if not data:
                    break
                os.write(self._keep_fd, data)
                self._kept += len(data)
        except OSError as exc:  # a full disk: the tail in the store still comes
            import logging

            logging.getLogger(__name__).warning("could not keep the output in %s: %s",
                                                self.keep_path, exc)
            self._close_keep()
            self.keep_path = None

    def _close_keep(self) -> Optional[str]:
        """Close the kept-output file; its path (None when none was kept)."""
        if self._keep_fd < 0:
            return None
        try:
            os.close(self._keep_fd)
        except OSError:
            pass
        self._keep_fd = -1
        return self.keep_path

    def trim_output(self) -> int:
        """Release the capture's memory (or disk) beyond what is kept of its end;
        returns how many bytes were written since the last call."""
        if self._out_fd < 0:
            return 0
        self._keep_output()  # what a trim releases is copied first
        try:
            size, self._trimmed_to = capture.trim(
                self._out_fd, self._trimmed_to, max(capture.KEEP_BYTES, self.output_limit),
                not_past=None if self.keep_path is None or self._kept >= self.keep_max
                else self._kept)
        except OSError:
            return 0
        grown, self._size_seen = size - self._size_seen, size
        return grown

    def _close_output(self) -> None:
        if self._out_fd >= 0:
            try:
                os.close(self._out_fd)
            except OSError:
                pass
            self._out_fd = -1


def _open_output(path: str) -> int:
    """A fresh capture file; the folder is made on first use only.  An earlier
    attempt's file is unlinked, not truncated: the shell of a run whose supervisor was
    SIGKILLed may still be writing to it, and must not write into this run's output."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    for _ in range(3):
        try:
            return os.open(path, flags, 0o600)
        except FileExistsError:  # an earlier attempt's (rare: no unlink per job)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    return os.open(path, flags, 0o600)


class _Child:
    """A spawned job process.  `posix_spawn` (a vfork-style clone, with the environment
    converted in C) when no working directory is asked for; `subprocess` otherwise,
    since posix_spawn cannot change directory before Python 3.13 (that path always
    makes a new session: `process_group` needs Python 3.11)."""

    def __init__(self, pid: int, popen: Optional[subprocess.Popen] = None) -> None:
        self.pid = pid
        self._popen = popen
        self.returncode: Optional[int] = None

    @classmethod
    def spawn(cls, command: str, out_fd: int, cwd: Optional[str],
              env: dict[bytes, bytes]) -> "_Child":
        argv = [SHELL, "-c", command]
        if cwd:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_fd,
                                     stderr=out_fd, cwd=cwd, env=env,
                                     start_new_session=True, close_fds=True)
            return cls(popen.pid, popen)
        group = {"setsid": True} if _has_terminal() else {"setpgroup": 0}
        pid = os.posix_spawn(SHELL, argv, env, **group, file_actions=[
            (os.POSIX_SPAWN_DUP2, _devnull(), 0), (os.POSIX_SPAWN_DUP2, out_fd, 1),
            (os.POSIX_SPAWN_DUP2, out_fd, 2)])
        return cls(pid)

    def poll(self) -> Optional[int]:
        if self.returncode is None:
            if self._popen is not None:
                self.returncode = self._popen.poll()
            else:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            if self._popen is not None:
                self.returncode = self._popen.wait()
            else:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


_TERMINAL: Optional[bool] = None


def _has_terminal() -> bool:
    """Whether this process has a controlling terminal.  A job gets a process group
    of its own either way (a timeout or a cancel kills the group); with a terminal it
    gets its own session too, so that it can neither read from that terminal nor be
    stopped by it.  Without one (a detached or service worker) the new session would
    change nothing for the job, and setsid cost a tiny job's spawn a tenth more."""
    global _TERMINAL
    if _TERMINAL is None:
        try:
            os.close(os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC))
            _TERMINAL = True
        except OSError:
            _TERMINAL = False
    return _TERMINAL


_DEVNULL = -1


def _devnull() -> int:
    """One read-only /dev/null descriptor for every job's stdin."""
    global _DEVNULL
    if _DEVNULL < 0:
        _DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _DEVNULL


_BASE_ENV: Optional[dict[bytes, bytes]] = None


def _base_env() -> dict[bytes, bytes]:
    """The worker's environment, encoded once: encoding os.environ for every spawn
    was a third of a tiny job's CPU cost."""
    global _BASE_ENV
    if _BASE_ENV is None:
        _BASE_ENV = dict(os.environb)
    return _BASE_ENV


def _pidfd(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # old kernel: fall back to short sleeps


def _sleep(pidfd: Optional[int], kill_fd: int, timeout: Optional[float]) -> str:
    """Sleep until the child exits ("exit"), kill() is called ("kill") or the timeout."""
    poller = select.poll()
    poller.register(kill_fd, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    else:
        timeout = 0.05 if timeout is None else min(timeout, 0.05)
    events = poller.poll(None if timeout is None else max(0, int(timeout * 1000) + 1))
    for fd, _ in events:
        if fd == kill_fd:
            try:
                os.read(kill_fd, 64)  # drained: the grace period is waited by time
            except OSError:
                pass
            return "kill"
    return "exit" if events else "timeout"


def _killpg(pgid: int, sig: int) -> bool:
    """Signal a process group; whether there was one."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _signal_all(pidfds: list[int], sig: int) -> int:
    """Signal the processes behind `pidfds`; how many were still there."""
    hit = 0
    for fd in pidfds:
        try:
            signal.pidfd_send_signal(fd, sig)
            hit += 1
        except OSError:
            pass
    return hit


def _descendants(pid: int, known: list[int]) -> list[int]:
    """Pidfds of the live descendants of `pid` (found through /proc parent links),
    but those already in `known`: without a cgroup, that is how a `setsid` child of a
    job is found while the job still runs.  (One that double-forked is a child of
    init by then and escapes.)"""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    seen: set[int] = set()
    for fd in known:
        try:
            with open(f"/proc/self/fdinfo/{fd}") as handle:
                seen.update(int(line.split()[1]) for line in handle
                            if line.startswith("Pid:"))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo.extend(children.get(child, []))
        if child in seen:
            continue
        try:
            found.append(os.pidfd_open(child))
        except OSError:
            continue
    return found


def _describe(exc: OSError, cwd: Optional[str]) -> str:
    if cwd and isinstance(exc, (FileNotFoundError, NotADirectoryError)) \
            and not os.path.isdir(cwd):
        return f"working directory {cwd!r} does not exist"
    return exc.strerror or str(exc)
