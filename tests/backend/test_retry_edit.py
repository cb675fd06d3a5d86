"""Edit-then-retry (`retry ID --command ...`, `dlq retry ID --env ...`), both stores:
the change and the move happen together, the history says what changed (old, new;
environment variables by name only), bad values and jobs not in a retryable state
change nothing."""

from __future__ import annotations

from typing import Iterator

import pytest

from queuectl.errors import InvalidInput, InvalidTransition
from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState

T0 = 1_700_000_000.0


@pytest.fixture
def q(store_url: str) -> Iterator[Queue]:
    queue = Queue(store_url, clock=lambda: T0 + 5)
    queue.backend.clear()
    try:
        yield queue
    finally:
        queue.close()


def _bury(q: Queue, job_id: str) -> None:
    job = q.backend.claim("w1", "h:1/1", None, T0 + 1)
    assert job is not None and job.id == job_id
    q.backend.finish(job, JobState.DEAD, None, now=T0 + 2, exit_code=3, error="exit 3",
                     output=None, history_entry={"attempt": 1})


def test_dlq_retry_with_changes(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="exit 3", id="j1", env={"KEEP": "1", "TOKEN": "a"})],
                      T0)
    _bury(q, "j1")
    job = q.dlq_retry("j1", {"command": "echo fixed", "timeout": "5m", "priority": 9,
                             "queue": "slow", "max_retries": 1, "env": {"TOKEN": "b"}})
    assert (job.state, job.attempts, job.command, job.timeout, job.priority, job.queue,
            job.max_retries, job.env) == (JobState.PENDING, 0, "echo fixed", 300.0, 9,
                                          "slow", 1, {"KEEP": "1", "TOKEN": "b"})
    edit = [h for h in job.history if h.get("event") == "edit"]
    assert edit == [{"event": "edit", "at": T0 + 5, "changed": {
        "command": ["exit 3", "echo fixed"], "timeout": [None, 300.0], "priority": [5, 9],
        "queue": ["default", "slow"], "max_retries": [None, 1],
        "env": [["KEEP", "TOKEN"], ["KEEP", "TOKEN"]]}}]
    assert job.history[-1]["event"] == "dlq retry"


def test_bad_changes_and_wrong_states_change_nothing(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="exit 3", id="dead1"),
                       NewJob(command="true", id="pending1")], T0)
    _bury(q, "dead1")
    before = q.get("dead1")
    with pytest.raises(InvalidInput, match="priority must be between 1 and 10"):
        q.retry("dead1", {"command": "echo new", "priority": 0})
    with pytest.raises(InvalidInput, match="invalid queue name"):
        q.dlq_retry("dead1", {"queue": "no spaces"})
    with pytest.raises(InvalidTransition, match="pending"):
        q.retry("pending1", {"command": "echo new"})
    assert q.get("dead1") == before
    assert q.get("pending1").command == "true"
