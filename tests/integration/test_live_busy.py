"""Busy slots come from the jobs the store holds in `processing` at the moment one
looks, not from the last heartbeat: `status`, `workers` and `metrics` agree with
`list --state processing` as soon as a job runs (both stores, a real supervisor whose
heartbeat is minutes away)."""

from __future__ import annotations

from typing import Any, Callable

from tests.conftest import wait_for
from tests.integration.conftest import Workers


def test_running_job_is_busy_before_any_heartbeat(cli: Callable[..., Any],
                                                   q: Callable[..., Any],
                                                   workers: Workers, tmp_path: Any) -> None:
    # the registration reports busy 0; the next heartbeat is 10 minutes away
    assert cli("config", "set", "lease-timeout", "1800").returncode == 0  # >= 2 beats
    assert cli("config", "set", "heartbeat-interval", "600").returncode == 0
    gate = tmp_path / "gate"
    command = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    assert cli("enqueue", "--id", "held", "--command", command).returncode == 0
    workers.start("--count", "2")
    try:
        wait_for(lambda: q("list", "--state", "processing"), timeout=30,
                 message="the job to be processing")
        processing = q("list", "--state", "processing")
        assert [job["id"] for job in processing] == ["held"]
        report = q("status")
        assert [w["busy"] for w in report["workers"]] == [1]
        assert report["busy_slots"] == 1
        assert (report["slots"], report["utilisation"]) == (2, 0.5)
        assert [(w["busy"], w["slots"]) for w in q("workers")["workers"]] == [(1, 2)]
        overall = q("metrics")["overall"]
        assert (overall["busy_slots"], overall["slots"], overall["depth"]["processing"]) == \
            (1, 2, 1)
    finally:
        gate.touch()
    wait_for(lambda: q("show", "held")["state"] == "completed", timeout=30,
             message="the job to complete")
    report = q("status")
    assert report["busy_slots"] == 0 and report["utilisation"] == 0.0
