"""A cgroup (v2) per run, so that nothing a job starts outlives it: not a background
process of a job that exited, nor a `setsid` daemon of one that timed out or was
cancelled.

Where the system allows it (a cgroup v2 hierarchy is mounted, the supervisor's own
cgroup is writable, `cgroup.kill` exists: Linux 5.14), a supervisor makes a folder of its
own next to its cgroup's processes, `<own cgroup>/queuectl-<pid>/`, and in it one group
per concurrent run, reused: a run's group goes back to the pool only once it is empty.
A run's shell moves itself into its group before it runs any of the job's command (see
`Group.enter`), so whatever the job forks is in the group, however early it forks.  When
the run ends, `cgroup.kill` ends whatever is left in it.

Otherwise (no cgroup v2, not writable, an old kernel, or QUEUECTL_NO_CGROUP=1, a
diagnostic switch) `pool()` is None and the runner kills the job's process group and
the descendants it finds through /proc (see `queuectl.worker.runner`).
"""

from __future__ import annotations

import errno
import os
import select
import signal
import threading
from typing import Optional

DISABLE_ENV = "QUEUECTL_NO_CGROUP"  # set (non-empty): per-run cgroups are not used
_PREFIX = "queuectl-"


class Group:
    """One run's cgroup.  `enter` is a shell command that moves the shell running it
    into the group (it costs the shell one builtin, and no process is forked before)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.procs = f"{path}/cgroup.procs"
        self.enter = f"echo 0 2>/dev/null >{_quote(self.procs)} || :; "
        self._events = os.open(f"{path}/cgroup.events", os.O_RDONLY | os.O_CLOEXEC)

    def populated(self) -> bool:
        """Whether any process is in the group (one read of cgroup.events)."""
        try:
            return b"populated 1" in os.pread(self._events, 256, 0)
        except OSError:
            return False

    def pids(self) -> list[int]:
        try:
            with open(self.procs, "rb") as handle:
                return [int(pid) for pid in handle.read().split()]
        except OSError:
            return []

    def add(self, pid: int) -> None:
        """Move a process into the group from outside (what it forked before is not
        moved: `enter` is the way without that race)."""
        fd = os.open(self.procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)

    def signal(self, sig: int) -> int:
        """Send `sig` to every process in the group; how many there were."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        return len(pids)

    def kill(self) -> None:
        """SIGKILL everything in the group (and whatever it forks meanwhile)."""
        try:
            fd = os.open(f"{self.path}/cgroup.kill", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"1")
            finally:
                os.close(fd)
        except OSError:  # gone, or no cgroup.kill after all: kill what is listed
            self.signal(signal.SIGKILL)

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until no process is left (killed processes take a moment to exit);
        False if some still are after `timeout_s`."""
        import time

        deadline = time.monotonic() + timeout_s
        poller = select.poll()
        poller.register(self._events, select.POLLPRI)
        while self.populated():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(left, 0.05) * 1000 + 1)  # a change wakes it at once
        return True

    def remove(self) -> bool:
        try:
            os.close(self._events)
        except OSError:
            pass
        try:
            os.rmdir(self.path)
            return True
        except OSError:
            return False


class Pool:
    """A supervisor's run groups under `base` (its own folder): `acquire()` an empty
    one for a run, `release()` it when the run has ended."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._free: list[Group] = []
        self._draining: list[Group] = []  # released with processes still exiting
        self._made = 0
        self._lock = threading.Lock()

    def acquire(self) -> Optional[Group]:
        """An empty group; None if none can be made (the run goes without)."""
        with self._lock:
            if self._draining:
                self._recycle()
            if self._free:
                return self._free.pop()
            self._made += 1
            path = f"{self.base}/{self._made}"
        try:
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            return Group(path)
        except OSError:
            return None

    def release(self, group: Group) -> None:
        """Back to the pool once empty (a group still exiting is set aside and
        checked again at the next acquire)."""
        with self._lock:
            (self._draining if group.populated() else self._free).append(group)

    def _recycle(self) -> None:
        still: list[Group] = []
        for group in self._draining:
            (still if group.populated() else self._free).append(group)
        self._draining = still

    def close(self) -> None:
        """Remove the pool's folders (the ones still holding processes stay)."""
        with self._lock:
            for group in self._free + self._draining:
                group.remove()
            self._free, self._draining = [], []
        try:
            os.rmdir(self.base)
        except OSError:
            pass


_POOL: Optional[Pool] = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()


def pool() -> Optional[Pool]:
    """This process's pool of run groups; None where cgroups cannot be used (found
    out once per process)."""
    global _POOL, _POOL_PID
    if os.environ.get(DISABLE_ENV):
        return None
    pid = os.getpid()
    if _POOL_PID != pid:
        with _POOL_LOCK:
            if _POOL_PID != pid:
                _POOL = _make_pool(pid)
                _POOL_PID = pid
    return _POOL


def _make_pool(pid: int) -> Optional[Pool]:
    here = own_cgroup_dir()
    if here is None or not os.access(f"{here}/cgroup.procs", os.W_OK):
        return None
    _remove_stale(here)
    base = f"{here}/{_PREFIX}{pid}"
    try:
        os.mkdir(base, 0o755)
    except FileExistsError:  # an earlier process with this pid was killed
        pass
    except OSError:  # read-only, not delegated to us, too many groups...
        return None
    if not os.path.exists(f"{base}/cgroup.kill"):  # before Linux 5.14
        try:
            os.rmdir(base)
        except OSError:
            pass
        return None
    made = Pool(base)
    import atexit

    atexit.register(made.close)
    return made


def own_cgroup_dir() -> Optional[str]:
    """The folder of this process's cgroup in the cgroup v2 hierarchy; None when
    none is mounted (or this process is not in it)."""
    try:
        with open("/proc/self/cgroup") as handle:
            own = next((line[3:].rstrip("\n") for line in handle
                        if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as handle:
            mounts = handle.read().splitlines()
    except OSError:
        return None
    if own is None or not own.startswith("/"):
        return None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if right.split(" ", 1)[0] != "cgroup2" or len(fields) < 5:
            continue
        root, point = _unescape(fields[3]), _unescape(fields[4])
        if root == "/":
            return point + own.rstrip("/") if own != "/" else point
        if own == root or own.startswith(root.rstrip("/") + "/"):
            return point + own[len(root):]
    return None


def _remove_stale(here: str) -> None:
    """Remove the empty folders that supervisors which died without cleaning up
    left next to this one (a folder still holding processes is left alone)."""
    try:
        entries = [entry for entry in os.listdir(here) if entry.startswith(_PREFIX)]
    except OSError:
        return
    for entry in entries:
        owner = entry[len(_PREFIX):]
        if not owner.isdigit() or _alive(int(owner)):
            continue
        folder = f"{here}/{entry}"
        try:
            for child in os.listdir(folder):
                if os.path.isdir(f"{folder}/{child}"):
                    os.rmdir(f"{folder}/{child}")
            os.rmdir(folder)
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"),
                       ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"
