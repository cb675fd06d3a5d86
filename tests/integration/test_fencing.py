"""Self-fencing: a supervisor cut off from PostgreSQL (bytes black-holed, sockets open)
kills its runs before its lease can expire, so the host that rescues the job never
runs it alongside the old run (SPEC section 2), and carries on once the link is back."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import run_cli, wait_for
from tests.integration.conftest import Workers
from tests.integration.proxy import Proxy


class RunWatch:
    """Samples the job's process groups (one per run) every 10 ms from /proc."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.groups_seen: set[int] = set()
        self.most_at_once = 0
        self.overlap: list[tuple[float, set[int]]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def alive(self) -> set[int]:
        groups = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read()
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if self.tag.encode() in cmdline and fields[0] != "Z":
                groups.add(int(fields[2]))
        return groups

    def _watch(self) -> None:
        while not self._stop.is_set():
            groups = self.alive()
            self.groups_seen |= groups
            self.most_at_once = max(self.most_at_once, len(groups))
            if len(groups) > 1:
                self.overlap.append((time.time(), groups))
            self.samples += 1
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def proxy(pg_url: str) -> Iterator[Proxy]:
    parts = urlsplit(pg_url)
    forwarder = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        yield forwarder
    finally:
        forwarder.close()


def _show(db: str, job_id: str) -> dict:
    result = run_cli("--json", "show", job_id, db=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _workers(db: str) -> list[dict]:
    result = run_cli("--json", "worker", "status", db=db)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["workers"]


def test_partitioned_supervisor_fences_before_its_job_is_rerun(
        pg_url: str, proxy: Proxy, tmp_path: Path) -> None:
    db = pg_url
    via_proxy = db.replace(f":{urlsplit(db).port or 5432}/", f":{proxy.port}/", 1)
    assert via_proxy != db
    for key, value in (("heartbeat-interval", "1"), ("lease-timeout", "4")):
        assert run_cli("config", "set", key, value, db=db).returncode == 0
    tag = f"{uuid.uuid4().int % 10**9:09d}"
    command = f"sleep 10.{tag}"  # no other process has it
    assert run_cli("enqueue", "--id", "long", "--command", command, db=db).returncode == 0
    pool_a = Workers(via_proxy, str(tmp_path / "a"))
    pool_b = Workers(db, str(tmp_path / "b"))
    os.makedirs(tmp_path / "a")
    os.makedirs(tmp_path / "b")
    watch = RunWatch(tag)
    try:
        a = pool_a.start("--count", "1", env={"QUEUECTL_HOST_ID": "host-a"})
        wait_for(lambda: watch.groups_seen, timeout=30, message="A runs the job")
        assert _show(db, "long")["worker"].startswith("host-a:")
        pool_b.start("--count", "1", env={"QUEUECTL_HOST_ID": "host-b"})
        wait_for(lambda: len(_workers(db)) == 2, timeout=30, message="B registered")

        proxy.partition()
        cut_at = time.monotonic()
        # B rescues the job once A's lease (4 s) has run out, and runs it again
        wait_for(lambda: len(watch.groups_seen) >= 2, timeout=30, interval=0.05,
                 message="B runs the job again")
        seen = watch.samples
        wait_for(lambda: watch.samples > seen + 1, timeout=5, interval=0.01,
                 message="another sample of /proc by the watcher")
        assert watch.most_at_once == 1, f"two runs alive at once: {watch.overlap[:3]}"
        assert _show(db, "long")["worker"].startswith("host-b:")
        assert "fenced" in pool_a.log(0), pool_a.log(0)
        # well past the lease: still one run at once
        wait_for(lambda: time.monotonic() - cut_at >= 8, timeout=30, interval=0.1)
        proxy.heal()

        # A re-registers and works again
        wait_for(lambda: any(w["host"] == "host-a" and w["pid"] == a.pid
                             for w in _workers(db)), timeout=30, interval=0.2,
                 message="A registered again")
        done = wait_for(lambda: (lambda j: j if j["state"] == "completed" else None)(
            _show(db, "long")), timeout=60, interval=0.2, message="the rerun completed")
        assert done["worker"].startswith("host-b:")
        pool_b.cleanup()
        assert run_cli("enqueue", "--id", "after", "--command", "true",
                       db=db).returncode == 0
        after = wait_for(lambda: (lambda j: j if j["state"] == "completed" else None)(
            _show(db, "after")), timeout=60, interval=0.2, message="A runs new work")
        assert after["worker"].startswith("host-a:")
        assert a.poll() is None, pool_a.log(0)
    finally:
        watch.stop()
        proxy.heal()
        pool_a.cleanup()
        pool_b.cleanup()
    assert watch.most_at_once == 1, f"two runs alive at once: {watch.overlap[:3]}"
    assert len(watch.groups_seen) == 2
