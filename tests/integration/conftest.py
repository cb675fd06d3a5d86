"""Helpers for tests that run real supervisors as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import run_cli


def process_running(text: str) -> bool:
    """Whether a live process on this machine has `text` in its command line (make the
    text unique: e.g. `sleep 1000.<random digits>`)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as handle:
                zombie = handle.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if text in cmdline and not zombie:
            return True
    return False


class Workers:
    """Starts `queuectl worker start ...` subprocesses and always cleans them up."""

    def __init__(self, db: str, tmp: str) -> None:
        self.db = db
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(os.path.join(self.tmp, f"worker-{len(self.procs)}.log"), "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "queuectl", "--db", self.db, "worker", "start", *args],
            stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, index: int) -> str:
        with open(os.path.join(self.tmp, f"worker-{index}.log"), "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(timeout=10)


@pytest.fixture
def db(store_url: str) -> str:
    """Every integration test runs against both stores (SQLite and PostgreSQL)."""
    return store_url


@pytest.fixture
def cli(db: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def call(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, db=db, **kwargs)
    return call


@pytest.fixture
def workers(db: str, tmp_path: Any) -> Iterator[Workers]:
    pool = Workers(db, str(tmp_path))
    try:
        yield pool
    finally:
        pool.cleanup()


@pytest.fixture
def q(db: str) -> Callable[..., Any]:
    """Run a CLI command with --json and return the parsed JSON (asserts exit 0)."""
    def call(*args: str, ok: bool = True) -> Any:
        result = run_cli("--json", *args, db=db)
        if ok:
            assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None
    return call
