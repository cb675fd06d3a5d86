"""A damaged store (bytes flipped inside a page, not the file header) is reported as
corrupt by every command: exit 3, one line that says what to do, never a traceback or
the raw bytes of a row, and the file left exactly as it was.  `queuectl doctor` reads
every page."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from queuectl.backends import open_backend
from queuectl.errors import StoreCorrupt
from queuectl.models import NewJob
from tests.conftest import run_cli

JOBS = 300
MARKER = "newest-job-marker"
WRITERS = (["enqueue", "echo hi"], ["enqueue", "--id", "x1", "echo hi"],
           ["config", "set", "max-retries", "5"], ["list"],
           ["worker", "start", "--burst"])


def make_store(path: Path) -> None:
    """A store with JOBS pending jobs, the last one's command MARKER, all in the main
    file (no -wal left behind)."""
    lines = [json.dumps({"command": f"echo job {n} with text that fills pages"})
             for n in range(JOBS - 1)] + [json.dumps({"command": f"echo {MARKER}"})]
    batch = path.parent / "jobs.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    done = run_cli("enqueue", "--file", str(batch), db=str(path))
    assert done.returncode == 0, done.stderr
    assert not Path(str(path) + "-wal").exists()


def pages(path: Path) -> list[tuple[int, str]]:
    """(page number, b-tree path) of the jobs table's leaf pages, in key order."""
    with sqlite3.connect(path) as conn:
        return [(row[0], row[1]) for row in conn.execute(
            "SELECT pageno, path FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf' "
            "ORDER BY path")]


def damage_page(path: Path, page: int, offset: int, length: int = 8) -> None:
    """Flip `length` bytes at `offset` inside page `page` (1-based)."""
    with sqlite3.connect(path) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (page - 1) * size + offset
    assert start >= 100  # never the file header
    for at in range(start, start + length):
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corrupt_line(result: subprocess.CompletedProcess[str], *, only_line: bool = True) -> str:
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if only_line:
        assert len(lines) == 1, result.stderr
    line = lines[-1]
    assert line.startswith("queuectl: error: store is corrupt"), line
    assert "doctor" in line and ".recover" in line, line
    assert "fills pages" not in line and MARKER not in line  # no row contents
    return line


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "queue.db"
    make_store(path)
    return path


def test_a_damaged_page_where_new_rows_go_is_refused_by_every_command(store: Path) -> None:
    """The page holding the newest jobs, where an enqueue writes: its cell pointers
    are damaged.  Before the cheap probe at open, enqueue and config set wrote to the
    store and list quoted a row."""
    newest = pages(store)[-1][0]
    assert MARKER.encode() in store.read_bytes()[(newest - 1) * 4096:newest * 4096]
    damage_page(store, newest, 8)  # the cell pointer array, after the 8-byte header
    before = digest(store)
    for args in WRITERS:
        corrupt_line(run_cli(*args, db=str(store)))
    assert digest(store) == before
    assert not Path(str(store) + "-wal").exists()
    doctor = run_cli("doctor", db=str(store))
    assert doctor.returncode == 3, doctor.stderr
    assert f"tree page {newest}" in doctor.stdout
    assert "store is corrupt" in doctor.stderr and "Traceback" not in doctor.stderr
    report = json.loads(run_cli("doctor", "--json", db=str(store)).stdout)
    assert report["ok"] is False and report["corrupt"] is True and report["problems"]
    assert digest(store) == before


def test_damage_off_the_probed_paths_is_reported_when_reached(store: Path) -> None:
    """A page in the middle of the job table: the probe at open does not read it, so
    an enqueue may still succeed; a command that reads it says the store is corrupt,
    and so does a worker that reaches it while claiming (it stops, exit 3, instead of
    retrying forever)."""
    leaves = pages(store)
    assert len(leaves) >= 5
    damage_page(store, leaves[len(leaves) // 2][0], 8)
    before = digest(store)
    corrupt_line(run_cli("list", "--limit", "0", db=str(store)))
    assert digest(store) == before  # list wrote nothing
    corrupt_line(run_cli("worker", "start", "--burst", db=str(store), timeout=60),
                 only_line=False)  # after the worker's own log lines
    assert run_cli("doctor", db=str(store)).returncode == 3


def test_a_flipped_value_is_corrupt_without_quoting_it(store: Path) -> None:
    """Bytes flipped inside a stored command: SQLite's structure is intact (quick_check
    says ok), but the text is no longer UTF-8; list used to print it back."""
    data = store.read_bytes()
    at = data.index(MARKER.encode())
    damage_page(store, at // 4096 + 1, at % 4096, len(MARKER))
    before = digest(store)
    corrupt_line(run_cli("list", db=str(store)))
    assert digest(store) == before


def test_doctor_on_a_healthy_store(store_url: str) -> None:
    assert run_cli("enqueue", "echo hi", db=store_url).returncode == 0
    result = run_cli("doctor", db=store_url)
    assert result.returncode == 0, result.stderr
    assert "Integrity: ok" in result.stdout and result.stderr == ""
    report = json.loads(run_cli("--json", "doctor", db=store_url).stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["schema_version"] == report["latest_schema_version"]
    if report["kind"] == "postgresql":
        assert "server" in " ".join(report["notes"])
    checked = run_cli("migrate", "--check", db=store_url)
    assert checked.returncode == 0 and "Integrity: ok" in checked.stdout


def test_the_backend_refuses_every_statement_once_it_has_seen_damage(store: Path) -> None:
    leaves = pages(store)
    damage_page(store, leaves[len(leaves) // 2][0], 8)
    before = digest(store)
    backend = open_backend(str(store))  # the probe does not reach the damage
    try:
        with pytest.raises(StoreCorrupt):
            backend.list_jobs(None, None, 10_000)
        with pytest.raises(StoreCorrupt):  # a write to a healthy page is refused too
            backend.enqueue([NewJob(command="echo late")], now=0.0)
        with pytest.raises(StoreCorrupt):
            open_backend(str(store)).close()  # and so is a new connection
    finally:
        backend.close()
    assert digest(store) == before
