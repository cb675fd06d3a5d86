"""Shared fixtures: every test gets a fresh HOME, no QUEUECTL_* variables, and a fresh
store.  Store-parametrised fixtures run against SQLite and, when a server is
reachable, PostgreSQL (QUEUECTL_TEST_PG, default the local test server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from hypothesis import settings

PG_URL = os.environ.get("QUEUECTL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# Property tests draw the same examples on every run, so that a run (and CI) gives the
# same answer each time; QUEUECTL_FUZZ_EXPLORE=1 draws new ones (that is how two JSON
# keys that strip alike, "\r" and "\x85", were found to be misreported).
settings.register_profile("queuectl", derandomize=not os.environ.get("QUEUECTL_FUZZ_EXPLORE"))
settings.load_profile("queuectl")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the package once, as pip does for an installed one: the tests start
    hundreds of `queuectl` processes, and an editable install (or PYTHONDONTWRITEBYTECODE)
    would otherwise have each of them compile every module again (~80 ms apiece)."""
    import compileall

    import queuectl

    compileall.compile_dir(os.path.dirname(queuectl.__file__), quiet=1)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A fresh folder with a short path (`/tmp/qt-XXXXXXXX`): a test's tmp_path can be
    too long a base for the wake-up sockets (Unix socket paths hold ~107 bytes), and
    under parallel test workers it is longer still."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="qt-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_home(tmp_path: Path, short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and data dir, a private runtime dir; QUEUECTL_* variables
    scrubbed."""
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith("QUEUECTL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    run = short_dir / "run"
    run.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    return home


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "queue.db")


def wait_for(condition: Callable[[], object], timeout: float = 10.0,
             interval: float = 0.01, message: str = "condition") -> object:
    """Poll `condition` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def run_cli(*args: str, db: str | None = None, input: str | None = None,
            env: dict[str, str] | None = None, timeout: float = 60.0,
            ) -> subprocess.CompletedProcess[str]:
    """Run `python -m queuectl ARGS` as a real subprocess."""
    argv = [sys.executable, "-m", "queuectl"]
    if db is not None:
        argv += ["--db", db]
    argv += list(args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv, input=input, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@pytest.fixture
def cli(sqlite_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`cli("enqueue", "echo hi")` against a fresh SQLite store."""
    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, db=sqlite_url, **kwargs)  # type: ignore[arg-type]
    return call


def _pg_reachable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(PG_URL, connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"no PostgreSQL server reachable at {PG_URL}: {exc}".splitlines()[0]
    return None


_PG_SKIP: list[str | None] = []


def pg_skip_reason() -> str | None:
    if not _PG_SKIP:
        _PG_SKIP.append(_pg_reachable())
    return _PG_SKIP[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database (created per test, dropped after)."""
    reason = pg_skip_reason()
    if reason:
        pytest.skip(reason)
    import uuid

    import psycopg

    name = "qtest_" + uuid.uuid4().hex[:12]
    admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres_available() -> bool:
    try:
        import queuectl.backends.postgres  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store: SQLite, and PostgreSQL when its backend and a server exist."""
    if request.param == "sqlite":
        return str(tmp_path / "queue.db")
    if not _postgres_available():
        pytest.skip("the PostgreSQL backend is not built yet")
    return request.getfixturevalue("pg_url")


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pid_in(path: Path, timeout: float = 20.0) -> int:
    """The pid a job wrote to `path`, once it has."""
    text = wait_for(lambda: path.exists() and path.read_text().strip(), timeout=timeout,
                    message=f"a pid in {path.name}")
    return int(str(text))


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Pids a test saw started: any left alive (the test failed) are killed after it."""
    started: list[int] = []
    yield started
    for pid in started:
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def read_terminal(leader: int, proc: subprocess.Popen, deadline: float) -> bytes:
    """What a process drew on the pseudo-terminal whose leader side is `leader`, until
    it closes the terminal or exits, or `deadline` (monotonic) passes."""
    import select

    chunks: list[bytes] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    return b"".join(chunks)
