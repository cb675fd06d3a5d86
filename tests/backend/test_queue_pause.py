"""Paused queues (`queue pause`), on both stores: no claim takes their jobs (with or
without a queue filter), a worker's sleep and a burst's end do not wait for them,
running jobs are untouched, resuming gives them back in order; `queue list`'s figures."""

from __future__ import annotations

from typing import Iterator

import pytest

from queuectl.errors import InvalidInput
from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState

T0 = 1_700_000_000.0


@pytest.fixture
def q(store_url: str) -> Iterator[Queue]:
    queue = Queue(store_url, clock=lambda: T0)
    queue.backend.clear()
    queue.set_paused([], False, every=True)
    try:
        yield queue
    finally:
        queue.set_paused([], False, every=True)
        queue.close()


def _claim_all(q: Queue, queues: list[str] | None = None) -> list[str]:
    ids = []
    while (job := q.backend.claim("w1", "h:1/1", queues, T0 + 10)) is not None:
        ids.append(job.id)
    return ids


def test_a_paused_queue_is_not_claimed_until_resumed(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="true", id="m1", queue="mail", priority=9),
                       NewJob(command="true", id="d1"),
                       NewJob(command="true", id="m2", queue="mail", priority=9)], T0)
    assert q.set_paused(["mail"], True) == ["mail"]
    assert _claim_all(q) == ["d1"]
    assert _claim_all(q, ["mail"]) == []
    assert q.backend.oldest_due(T0 + 10) is None  # nothing due that may run
    q.backend.enqueue([NewJob(command="true", id="m3", queue="mail", run_at=T0 + 50)], T0)
    assert q.backend.next_run_at(None, T0 + 10) is None
    assert q.backend.next_run_at(["mail"], T0 + 10) is None
    q.set_paused(["mail"], False)
    assert q.backend.oldest_due(T0 + 10) == T0
    assert _claim_all(q, ["mail"]) == ["m1", "m2"]
    assert q.backend.next_run_at(None, T0 + 10) == T0 + 50


def test_running_jobs_of_a_paused_queue_finish(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="true", id="m1", queue="mail")], T0)
    held = q.backend.claim("w1", "h:1/1", None, T0 + 1)
    q.set_paused(["mail"], True)
    assert q.backend.finish(held, JobState.COMPLETED, None, now=T0 + 2, exit_code=0,
                            error=None, output=None, history_entry={})
    assert q.get("m1").state is JobState.COMPLETED


def test_queue_list_and_pause_all(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="true", id="m1", queue="mail"),
                       NewJob(command="true", id="r1", queue="reports")], T0)
    q.backend.claim("w1", "h:1/1", ["reports"], T0 + 1)
    assert q.set_paused([], True, every=True) == ["default", "mail", "reports"]
    listed = {row["name"]: row for row in q.queue_list()}
    assert sorted(listed) == ["default", "mail", "reports"]
    assert all(row["paused"] for row in listed.values())
    assert listed["reports"]["running"] == 1 and listed["reports"]["total"] == 1
    assert listed["mail"]["counts"]["pending"] == 1 and listed["default"]["total"] == 0
    assert q.status().paused_queues == ["default", "mail", "reports"]
    q.set_paused(["mail"], False)
    assert q.status().paused_queues == ["default", "reports"]
    assert _claim_all(q) == ["m1"]


def test_bad_queue_names_change_nothing(q: Queue) -> None:
    with pytest.raises(InvalidInput, match="invalid queue name"):
        q.set_paused(["ok", "bad name"], True)
    with pytest.raises(InvalidInput, match="name a queue"):
        q.set_paused([], True)
    assert not [row for row in q.queue_list() if row["paused"] or row["name"] == "ok"]
