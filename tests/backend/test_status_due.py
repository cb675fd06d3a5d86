"""`status` is truthful about scheduled/failed jobs whose time has come while no
supervisor runs to relabel them pending: it keeps their stored label and says how many
are due now (both stores, on an injected clock)."""

from __future__ import annotations

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState

NOW = 1_700_000_000.0


def test_status_counts_due_scheduled_jobs(store_url: str) -> None:
    clock = [NOW]
    with Queue(store_url, clock=lambda: clock[0]) as q:
        q.enqueue([NewJob(command="true", id="a", run_at=NOW + 10),
                   NewJob(command="true", id="b", run_at=NOW + 100),
                   NewJob(command="true", id="now")])
        report = q.status()
        assert report.counts[JobState.SCHEDULED] == 2 and report.due_waiting == 0
        clock[0] = NOW + 20
        report = q.status()
        assert report.counts[JobState.SCHEDULED] == 2  # still their stored label
        assert report.due_waiting == 1
        assert report.to_dict()["due_waiting"] == 1
        clock[0] = NOW + 200
        assert q.status().due_waiting == 2


def test_due_count_is_bounded(store_url: str) -> None:
    with Queue(store_url, clock=lambda: NOW) as q:
        q.enqueue([NewJob(command="true", run_at=NOW + 1 + i) for i in range(5)])
        assert q.backend.due_waiting(NOW + 50, 3) == 3
