"""The quick enqueue lane (`queuectl enqueue "CMD"` without click): it stores exactly
the job the full CLI would, and declines everything else without writing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from queuectl.cli.quick import quick_enqueue
from tests.conftest import run_cli

Cli = Callable[..., subprocess.CompletedProcess[str]]
VOLATILE = {"id", "created_at", "updated_at", "run_at"}


def _show(cli: Cli, job_id: str) -> dict[str, Any]:
    result = cli("show", job_id, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_plain_enqueue_stores_the_same_job_as_the_full_cli(cli: Cli) -> None:
    plain = cli("enqueue", "echo 'hi there'")
    assert plain.returncode == 0, plain.stderr
    # an option sends the same job through the full CLI
    full = cli("enqueue", "--queue", "default", "echo 'hi there'")
    assert full.returncode == 0, full.stderr
    first, second = _show(cli, plain.stdout.strip()), _show(cli, full.stdout.strip())
    assert {k: v for k, v in first.items() if k not in VOLATILE} == \
        {k: v for k, v in second.items() if k not in VOLATILE}
    assert first["state"] == "pending" and first["priority"] == 5
    status = json.loads(cli("status", "--json").stdout)
    assert status["counts"]["pending"] == 2


def _in_fresh_interpreter(db: str, *args: str) -> dict[str, Any]:
    code = ("import json, sys\n"
            "from queuectl.cli.quick import quick_enqueue\n"
            "code = quick_enqueue(sys.argv[1:])\n"
            "print(json.dumps({'code': code, 'click': 'click' in sys.modules,\n"
            "                  'models': 'queuectl.models' in sys.modules,\n"
            "                  'psycopg': 'psycopg' in sys.modules}))\n")
    out = subprocess.run([sys.executable, "-c", code, "--db", db, *args],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    data["ids"] = out.stdout.splitlines()[:-1]
    return data


def test_the_lane_loads_neither_click_nor_the_job_model(sqlite_url: str) -> None:
    assert run_cli("migrate", db=sqlite_url).returncode == 0  # create the store
    seen = _in_fresh_interpreter(sqlite_url, "add", "sleep 1")
    assert seen["code"] == 0 and not seen["click"] and not seen["models"]
    with sqlite3.connect(sqlite_url) as conn:
        rows = conn.execute("SELECT id, command, state FROM jobs").fetchall()
    assert rows == [(seen["ids"][0], "sleep 1", "pending")]


def _jobs_and_bytes(path: str) -> tuple[int, bytes]:
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return count, Path(path).read_bytes()


@pytest.mark.parametrize("args", [
    ["enqueue", "--priority", "5", "true"],
    ["enqueue", '{"command": "true"}'],
    ["enqueue", "  {not json"],
    ["enqueue", "-c", "true"],
    ["enqueue", "true", "extra"],
    ["--json", "enqueue", "true"],
    ["enqueue", "--json", "true"],
    ["enqueue", "   "],
    ["enqueue", ""],
    ["enqueue", "echo \udcff"],  # argv bytes that are not UTF-8
    ["list", "true"],
    ["enqueue"],
])
def test_the_lane_declines_anything_but_the_plain_form(sqlite_url: str,
                                                       args: list[str]) -> None:
    assert run_cli("migrate", db=sqlite_url).returncode == 0
    before = _jobs_and_bytes(sqlite_url)
    assert quick_enqueue(["--db", sqlite_url, *args]) is None
    assert _jobs_and_bytes(sqlite_url) == before


def test_the_lane_leaves_new_stores_to_the_full_cli(tmp_path: Path, pg_url: str) -> None:
    new = tmp_path / "new.db"
    assert quick_enqueue(["--db", str(new), "enqueue", "true"]) is None
    assert not new.exists()
    assert quick_enqueue(["--db", pg_url, "enqueue", "true"]) is None  # no schema yet
    assert _pg_tables(pg_url) == []
    # ... which creates the store and takes the job
    for db in (str(new), pg_url):
        result = run_cli("enqueue", "true", db=db)
        assert result.returncode == 0, result.stderr
    assert new.exists() and "jobs" in _pg_tables(pg_url)


def _pg_tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


def test_the_lane_on_postgresql_does_without_psycopg(pg_url: str) -> None:
    """`import psycopg` alone cost a PostgreSQL enqueue ~0.45 s of CPU: the lane calls
    libpq through ctypes, stores the job the full CLI would, and notifies."""
    assert run_cli("status", db=pg_url).returncode == 0  # the schema
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN queuectl_jobs")
        seen = _in_fresh_interpreter(pg_url, "add", "echo 'from the lane'")
        assert seen["code"] == 0
        assert not seen["psycopg"] and not seen["click"] and not seen["models"]
        notified = next(listener.notifies(timeout=10, stop_after=1), None)
    assert notified is not None and notified.channel == "queuectl_jobs"
    listed = json.loads(run_cli("list", "--json", db=pg_url).stdout)
    assert [(job["id"], job["command"], job["state"]) for job in listed] == \
        [(seen["ids"][0], "echo 'from the lane'", "pending")]


def test_the_lane_declines_a_postgresql_store_at_another_schema_version(pg_url: str
                                                                       ) -> None:
    assert run_cli("status", db=pg_url).returncode == 0
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version SELECT MAX(version) + 1, 'future', 0 "
                     "FROM schema_version")
        assert quick_enqueue(["--db", pg_url, "enqueue", "true"]) is None
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0


def test_an_unreachable_postgresql_server_is_one_line_exit_3(tmp_path: Path) -> None:
    import socket

    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    url = f"postgresql://nobody:s3cret@127.0.0.1:{port}/queue"
    result = run_cli("enqueue", "true", db=url)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"queuectl: error: cannot reach PostgreSQL at 127.0.0.1:{port}"
                               "/queue: "), lines[0]
    assert "s3cret" not in result.stderr


def test_the_libpq_of_the_binary_wheel_is_found_and_loads() -> None:
    """Where no system libpq.so.5 exists, the lane uses the one psycopg-binary ships."""
    import ctypes

    from queuectl.backends.libpq import _bundled_libpq

    pytest.importorskip("psycopg_binary")
    path = _bundled_libpq()
    assert path is not None and "psycopg_binary.libs" in path
    assert ctypes.CDLL(path).PQlibVersion() >= 100000


def test_the_lane_declines_a_store_at_another_schema_version(sqlite_url: str) -> None:
    assert run_cli("migrate", db=sqlite_url).returncode == 0
    with sqlite3.connect(sqlite_url) as conn:
        conn.execute("INSERT INTO schema_version SELECT MAX(version) + 1, 'future', 0 "
                     "FROM schema_version")
    before = _jobs_and_bytes(sqlite_url)
    assert quick_enqueue(["--db", sqlite_url, "enqueue", "true"]) is None
    assert _jobs_and_bytes(sqlite_url) == before


def test_the_lane_uses_queuectl_db_and_the_default_store(sqlite_url: str,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    assert run_cli("migrate", db=sqlite_url).returncode == 0
    monkeypatch.setenv("QUEUECTL_DB", sqlite_url)
    seen = _in_fresh_interpreter("", "enqueue", "true")  # --db "" defers to the env
    assert seen["code"] == 0
    listed = run_cli("list", "--json")
    assert [job["id"] for job in json.loads(listed.stdout)] == seen["ids"]
    monkeypatch.delenv("QUEUECTL_DB")
    assert run_cli("enqueue", "echo default").returncode == 0  # creates the default store
    seen = _in_fresh_interpreter("", "enqueue", "echo again")
    assert seen["code"] == 0
    default = Path(os.environ["XDG_DATA_HOME"]) / "queuectl" / "queue.db"
    with sqlite3.connect(default) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 2


def test_a_locked_store_falls_back_and_reports_exit_3(sqlite_url: str) -> None:
    assert run_cli("migrate", db=sqlite_url).returncode == 0
    holder = sqlite3.connect(sqlite_url, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run_cli("enqueue", "true", db=sqlite_url,
                         timeout=120)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("queuectl: error: ") and "locked" in result.stderr
    assert "Traceback" not in result.stderr
