"""An idle worker starts new work on a wake-up, not on its fallback poll."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import wait_for


def test_idle_worker_picks_up_well_before_the_fallback_poll(cli: Any, q: Any,
                                                           workers: Any) -> None:
    assert cli("config", "set", "poll-interval", "60").returncode == 0
    proc = workers.start("--count", "1")
    wait_for(lambda: q("worker", "status")["workers"], timeout=20, message="registration")
    # a first job proves the worker went through its loop and is now idle
    cli("enqueue", "--id", "warm", "true")
    wait_for(lambda: q("show", "warm")["state"] == "completed", timeout=10, message="warm")
    started = time.monotonic()
    assert cli("enqueue", "--id", "fast", "true").returncode == 0
    wait_for(lambda: q("show", "fast")["state"] == "completed", timeout=10,
             interval=0.005, message="pickup")
    # the CLI process itself takes ~0.1 s; a poll would take up to 60 s
    assert time.monotonic() - started < 5
    assert proc.poll() is None


def test_plain_cli_enqueue_wakes_an_idle_worker(cli: Any, q: Any, workers: Any) -> None:
    """`queuectl enqueue "CMD"` (the quick lane on SQLite) wakes workers as well."""
    assert cli("config", "set", "poll-interval", "60").returncode == 0
    workers.start("--count", "1")
    wait_for(lambda: q("worker", "status")["workers"], timeout=20, message="registration")
    cli("enqueue", "--id", "warm", "true")
    wait_for(lambda: q("show", "warm")["state"] == "completed", timeout=10, message="warm")
    started = time.monotonic()
    added = cli("enqueue", "true")
    assert added.returncode == 0, added.stderr
    job_id = added.stdout.strip()
    wait_for(lambda: q("show", job_id)["state"] == "completed", timeout=10,
             interval=0.005, message="pickup")
    assert time.monotonic() - started < 5


def test_scheduled_job_runs_when_due_without_polling(cli: Any, q: Any,
                                                     workers: Any) -> None:
    assert cli("config", "set", "poll-interval", "60").returncode == 0
    workers.start("--count", "1")
    wait_for(lambda: q("worker", "status")["workers"], timeout=20, message="registration")
    cli("enqueue", "--id", "soon", "--delay", "1", "true")
    done = wait_for(lambda: q("show", "soon")["finished_at"], timeout=10, message="run")
    assert done
    shown = q("show", "soon")
    from datetime import datetime

    def epoch(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    lateness = epoch(shown["started_at"]) - epoch(shown["run_at"])
    assert 0 <= lateness < 1.0
