"""A PostgreSQL server restart mid-run loses no job.  The test starts its own
throwaway server (initdb into a temp dir, a free port); never the shared one."""

from __future__ import annotations

import collections
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers, process_running

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="queuectl-pg-")
        self.port = _free_port()
        self.data = os.path.join(self.dir, "data")
        owner = pwd.getpwnam("postgres")
        os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._as_postgres([f"{BIN[-1]}/initdb", "-D", self.data, "-A", "trust",
                           "-U", "postgres"])
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, argv: list[str]) -> None:
        def demote() -> None:
            owner = pwd.getpwnam("postgres")
            os.setgid(owner.pw_gid)
            os.setuid(owner.pw_uid)
        subprocess.run(argv, check=True, capture_output=True, preexec_fn=demote,
                       cwd=self.dir, timeout=120)

    def start(self) -> None:
        self._as_postgres([f"{BIN[-1]}/pg_ctl", "-D", self.data, "-w", "-l",
                           os.path.join(self.dir, "log"), "-o",
                           f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                           "start"])

    def stop(self) -> None:
        self._as_postgres([f"{BIN[-1]}/pg_ctl", "-D", self.data, "-w", "-m", "fast",
                           "stop"])

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def server() -> Iterator[Server]:
    if not BIN or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's initdb and root (to run it as the postgres user)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed")
    srv = Server()
    try:
        srv.start()
        yield srv
    finally:
        srv.remove()


def test_jobs_survive_a_server_restart(server: Server, tmp_path: Path) -> None:
    db = server.url
    out = tmp_path / "ran"
    ids = [f"job-{i:04d}" for i in range(300)]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("".join(json.dumps(
        {"id": i, "command": f'sleep 0.02; echo "$QUEUECTL_JOB_ID" >> {out}'}) + "\n"
        for i in ids))
    assert run_cli("enqueue", "--file", str(batch), db=db).returncode == 0
    pool = Workers(db, str(tmp_path))
    try:
        proc = pool.start("--count", "4")
        wait_for(lambda: out.exists() and len(out.read_text().split()) >= 30, timeout=60,
                 message="progress before the restart")
        server.stop()  # mid-run: finishes and claims now fail
        server.start()
        wait_for(lambda: out.exists() and len(set(out.read_text().split())) == len(ids),
                 timeout=120, interval=0.2, message="every job ran after the restart")
        status = wait_for(lambda: _completed(db) == len(ids), timeout=60, interval=0.2,
                          message="every job recorded completed")
        assert status
        assert run_cli("worker", "stop", db=db).returncode == 0
        assert proc.wait(timeout=60) == 0
    finally:
        pool.cleanup()
    runs = collections.Counter(out.read_text().split())
    for job_id in [j for j, n in runs.items() if n > 1]:
        shown = json.loads(run_cli("--json", "show", job_id, db=db).stdout)
        assert any("lost" in (h.get("error") or h.get("event") or "")
                   for h in shown["history"]), (job_id, shown["history"])


def test_a_timeout_holds_while_the_server_is_down(server: Server, tmp_path: Path) -> None:
    """The loop waits for the store to come back (a result must not be lost), and
    enforces the running jobs' timeouts meanwhile."""
    db = server.url
    tag = f"{uuid.uuid4().int % 10**9:09d}"
    long, short = f"sleep 1000.{tag}", f"sleep 3.{tag}"  # no other process has them
    for job in ({"id": "long", "command": long, "timeout": 5, "max_retries": 0},
                {"id": "short", "command": short}):
        assert run_cli("enqueue", json.dumps(job), db=db).returncode == 0
    pool = Workers(db, str(tmp_path))
    try:
        pool.start("--count", "2")
        wait_for(lambda: process_running(long) and process_running(short), timeout=30,
                 message="both jobs started")
        server.stop()
        assert process_running(short), "the short job ended before the server was down"
        # the short job ends and its result cannot be stored: the loop is retrying
        wait_for(lambda: not process_running(short), timeout=30, message="short job ended")
        wait_for(lambda: not process_running(long), timeout=30,
                 message="the long job killed at its timeout, the server still down")
        wait_for(lambda: "store error" in pool.log(0), timeout=10,
                 message="the worker saw the store down")
        server.start()
        shown = wait_for(lambda: _job_if_finished(db, "long"), timeout=60, interval=0.2,
                         message="the timeout recorded once the server is back")
        assert shown["state"] == "dead" and "timeout" in (shown["error"] or ""), shown
        assert wait_for(lambda: _job_if_finished(db, "short"), timeout=60,
                        interval=0.2)["state"] == "completed"
    finally:
        pool.cleanup()


def _job_if_finished(db: str, job_id: str) -> dict | None:
    result = run_cli("--json", "show", job_id, db=db)
    if result.returncode != 0:
        return None
    job = json.loads(result.stdout)
    return job if job["state"] not in ("pending", "processing") else None


def _completed(db: str) -> bool | int:
    result = run_cli("--json", "status", db=db)
    if result.returncode != 0:
        return False
    return json.loads(result.stdout)["counts"]["completed"]
