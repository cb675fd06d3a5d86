"""Plumbing for the benchmark suite: fresh stores, worker processes that are always
cleaned up, timing helpers, and the result rows the table is made of."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Sequence

PYTHON = sys.executable


@dataclass
class Row:
    """One measured figure beside its reference and target."""

    id: str
    figure: str
    value: float
    unit: str
    target: str
    passed: Optional[bool]  # None = informational
    reference: str = ""
    ratio: Optional[float] = None
    store: str = "sqlite"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queuectl_argv() -> list[str]:
    """How a user runs queuectl: the console script next to this Python if installed."""
    script = os.path.join(os.path.dirname(PYTHON), "queuectl")
    return [script] if os.path.exists(script) else [PYTHON, "-m", "queuectl"]


class Workspace:
    """A temporary folder with its own HOME/XDG dirs (never the user's data dir) and a
    registry of started processes, all killed on exit."""

    def __init__(self, name: str) -> None:
        self.root = tempfile.mkdtemp(prefix=f"queuectl-bench-{name}-")
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith("QUEUECTL_"):
                del self.env[key]
        for var, sub in (("HOME", "home"), ("XDG_DATA_HOME", "data"),
                         ("XDG_RUNTIME_DIR", "run")):
            path = os.path.join(self.root, sub)
            os.makedirs(path, mode=0o700, exist_ok=True)
            self.env[var] = path
        self.procs: list[subprocess.Popen[bytes]] = []
        self._saved_env: dict[str, Optional[str]] = {}

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def __enter__(self) -> "Workspace":
        # The in-process API (enqueue, wake-ups) must use the same runtime dirs.
        for key in ("HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR"):
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = self.env[key]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.root, ignore_errors=True)

    def spawn(self, args: Sequence[str], log: str = "worker.log") -> subprocess.Popen[bytes]:
        with open(self.path(log), "ab") as out:
            proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=self.env,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def worker(self, db: str, *args: str, log: str = "worker.log") -> subprocess.Popen[bytes]:
        return self.spawn([*queuectl_argv(), "--db", db, "worker", "start", *args], log)

    def run(self, args: Sequence[str], stdin: Optional[bytes] = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(list(args), input=stdin, capture_output=True, env=self.env,
                                timeout=600)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): "
                               f"{result.stderr.decode(errors='replace')[-500:]}")
        return result


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def timed(argv: Sequence[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall times of running a command `runs` times (seconds)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(list(argv), env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def xargs_rate(count: int, parallel: int, workdir: str) -> float:
    """Trivial commands per second that `xargs -P N -n 1 sh -c` achieves here."""
    lines = b"true\n" * count
    start = time.perf_counter()
    subprocess.run(["xargs", "-P", str(parallel), "-n", "1", "sh", "-c"], input=lines,
                   check=True, cwd=workdir)
    return count / (time.perf_counter() - start)


def store_counts(db: str) -> dict[str, int]:
    from queuectl.queue import Queue

    with Queue(db) as queue:
        return {state.value: n for state, n in queue.backend.counts().items()}


def wait_registered(db: str, pids: Sequence[int], timeout: float = 30) -> None:
    from queuectl.queue import Queue

    with Queue(db) as queue:
        wait_until(lambda: {w.pid for w, alive in queue.workers() if alive} >= set(pids),
                   timeout, "worker registration", 0.02)


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
