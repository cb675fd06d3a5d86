"""Several hosts on one PostgreSQL database (hosts told apart by QUEUECTL_HOST_ID, so
liveness is judged by heartbeats only, as between real machines)."""

from __future__ import annotations

import collections
import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers


@pytest.fixture
def pg_workers(pg_url: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(pg_url, str(tmp_path))
    try:
        yield pool
    finally:
        pool.cleanup()


def _q(db: str, *args: str) -> Any:
    result = run_cli("--json", *args, db=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _enqueue(db: str, tmp_path: Path, count: int, command: str) -> list[str]:
    ids = [f"job-{i:05d}" for i in range(count)]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("".join(json.dumps({"id": i, "command": command}) + "\n" for i in ids))
    result = run_cli("enqueue", "--file", str(batch), db=db)
    assert result.returncode == 0, result.stderr
    return ids


def _runs(out: Path) -> collections.Counter[str]:
    return collections.Counter(out.read_text().split()) if out.exists() else \
        collections.Counter()


def test_two_hosts_share_5000_jobs_exactly_once(pg_workers: Workers, tmp_path: Path) -> None:
    db = pg_workers.db
    out = tmp_path / "ran"
    ids = _enqueue(db, tmp_path, 5000, f'echo "$QUEUECTL_JOB_ID $QUEUECTL_HOST_ID" >> {out}')
    hosts = [pg_workers.start("--count", "4", "--burst", env={"QUEUECTL_HOST_ID": name})
             for name in ("host-a", "host-b")]
    for proc in hosts:
        assert proc.wait(timeout=300) == 0
    lines = out.read_text().splitlines()
    runs = collections.Counter(line.split()[0] for line in lines)
    assert set(runs) == set(ids) and max(runs.values()) == 1
    per_host = collections.Counter(line.split()[1] for line in lines)
    assert per_host["host-a"] > 0 and per_host["host-b"] > 0, per_host
    assert _q(db, "status")["counts"]["completed"] == 5000


def test_a_dead_host_hands_its_jobs_over_after_the_lease(pg_workers: Workers,
                                                        tmp_path: Path) -> None:
    db = pg_workers.db
    for key, value in (("heartbeat-interval", "0.5"), ("lease-timeout", "3")):
        assert run_cli("config", "set", key, value, db=db).returncode == 0
    out = tmp_path / "ran"
    ids = _enqueue(db, tmp_path, 40, f'sleep 0.5; echo "$QUEUECTL_JOB_ID" >> {out}')
    host_a = pg_workers.start("--count", "4", env={"QUEUECTL_HOST_ID": "host-a"})
    wait_for(lambda: _q(db, "status")["counts"]["processing"] == 4, timeout=30,
             message="host-a running four jobs")
    os.killpg(host_a.pid, signal.SIGKILL)  # the machine is gone; its heartbeat stops
    host_a.wait(timeout=10)
    killed_at = time.time()
    held = {j["id"] for j in _q(db, "list", "--state", "processing")}
    assert len(held) == 4
    host_b = pg_workers.start("--count", "4", "--burst", env={"QUEUECTL_HOST_ID": "host-b"})
    assert host_b.wait(timeout=120) == 0
    assert _q(db, "status")["counts"]["completed"] == 40
    assert set(_runs(out)) == set(ids)
    for job_id in held:
        history = _q(db, "show", job_id)["history"]
        lost = [h for h in history if h.get("event") == "worker lost"]
        assert lost, history
        # host-b waited for the lease: it could not see host-a's pid, only its silence
        rescued_at = datetime.fromisoformat(lost[0]["finished_at"].replace("Z", "+00:00"))
        assert rescued_at.timestamp() - killed_at >= 2.0
