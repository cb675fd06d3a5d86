"""A running job's output: readable live by `logs` from another process, held in
memory that stays bounded however much the job prints, and left nowhere on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from queuectl import capture
from queuectl.queue import Queue
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(not capture.MEMFD, reason="no memfd_create here")

PRINTED = 40 << 20  # far beyond what a capture keeps


def _held_by_worker(q: Any, job_id: str) -> int:
    """Bytes of memory the running job's capture holds, seen from outside."""
    from queuectl.maintenance import this_host

    job = q("show", job_id)
    handle = capture.open_live(job["worker"], job_id, this_host())
    if handle is None:
        return -1
    with handle:
        return os.fstat(handle.fileno()).st_blocks * 512


def test_a_chatty_job_holds_bounded_memory_and_logs_shows_its_end(
        cli: Any, q: Any, workers: Any, db: str, tmp_path: Path) -> None:
    flag = tmp_path / "go-on"
    command = (f"head -c {PRINTED} /dev/zero | tr '\\0' a; echo END; "
               f"while [ ! -e {flag} ]; do sleep 0.02; done; echo done")
    assert cli("enqueue", "--id", "chatty", "--command", command).returncode == 0
    workers.start("--count", "1")
    wait_for(lambda: 0 <= _held_by_worker(q, "chatty")
             <= capture.KEEP_BYTES + capture.TRIM_AT_BYTES
             and cli("logs", "chatty").stdout.endswith("END\n"), timeout=20,
             message="the capture trimmed after the job printed")
    shown = cli("--json", "logs", "chatty")
    live = json.loads(shown.stdout)
    assert live["live"] is True and live["state"] == "processing"
    assert live["output"].endswith("a" * 100 + "END\n")
    assert capture.KEEP_BYTES <= len(live["output"]) < PRINTED
    assert set(live["output"][:-4]) == {"a"}  # nothing released reads back as NULs
    with Queue(db) as queue:
        assert not os.path.exists(queue.job_log_path("chatty"))  # nothing on disk
    flag.touch()
    wait_for(lambda: q("show", "chatty")["state"] == "completed", timeout=20,
             message="completed")
    assert cli("logs", "chatty").stdout.endswith("aaaEND\ndone\n")
