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
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers

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


def _completed(db: str) -> bool | int:
    result = run_cli("--json", "status", db=db)
    if result.returncode != 0:
        return False
    return json.loads(result.stdout)["counts"]["completed"]
