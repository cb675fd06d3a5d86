"""A worker that starts while another process holds the SQLite store's lock for longer
than the busy timeout rides it out, as a running worker does, instead of exiting 3."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from queuectl.backends import sqlite_path
from queuectl.backends.sqlite_open import BUSY_TIMEOUT_MS
from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers


def test_a_starting_worker_waits_out_a_locked_store(sqlite_url: str,
                                                    tmp_path: Path) -> None:
    assert run_cli("enqueue", "--id", "j1", "true", db=sqlite_url).returncode == 0
    holder = sqlite3.connect(sqlite_path(sqlite_url), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # an exclusive writer: the worker cannot register
    workers = Workers(sqlite_url, str(tmp_path))
    try:
        proc = workers.start("--burst")
        wait_for(lambda: "locked" in workers.log(0), timeout=BUSY_TIMEOUT_MS / 1000 + 20,
                 message="the worker saying that the store is locked")
        assert proc.poll() is None, workers.log(0)  # still waiting, not exited
        holder.execute("ROLLBACK")
        assert proc.wait(timeout=30) == 0, workers.log(0)
    finally:
        holder.close()
        workers.cleanup()
    log = workers.log(0)
    assert "Traceback" not in log and "started" in log
    shown = run_cli("--json", "show", "j1", db=sqlite_url)
    assert '"completed"' in shown.stdout
