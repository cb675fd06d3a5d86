"""After any sequence of operations, a store's per-state counts (`counts()`, which
SQLite keeps in a table through triggers and enqueue, PostgreSQL in job_counts through
triggers) and per-queue counts (`queue_counts()`) equal both a GROUP BY over the jobs
and a model the test keeps, on both stores."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from queuectl.backends import open_backend
from queuectl.models import Job, NewJob
from queuectl.states import FINISHED, JobState, Transition

NOW = 1_700_000_000.0
S = JobState


class StoreMachine(RuleBasedStateMachine):
    url: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.store = open_backend(self.url)
        self.store.clear()
        self.model: dict[str, JobState] = {}
        self.held: dict[str, Job] = {}  # processing jobs, as claimed
        self.queues: dict[str, str] = {}  # each job's queue
        self.now = NOW
        self.serial = 0

    def teardown(self) -> None:
        self.store.close()

    def _tick(self) -> float:
        self.now += 1
        return self.now

    @rule(count=st.integers(1, 3), later=st.booleans(), queue=st.sampled_from(["a", "b"]))
    def enqueue(self, count: int, later: bool, queue: str) -> None:
        now = self._tick()
        jobs = []
        for _ in range(count):
            self.serial += 1
            jobs.append(NewJob(command="true", id=f"j{self.serial}", queue=queue,
                               run_at=now + 5 if later else None))
        for job in self.store.enqueue(jobs, now):
            self.model[job.id] = S.SCHEDULED if later else S.PENDING
            self.queues[job.id] = queue

    @rule()
    def claim(self) -> None:
        now = self._tick()
        job = self.store.claim("w1", "h:1/1", None, now)
        if job is not None:
            assert self.model[job.id] in Transition.CLAIM.sources
            self.model[job.id] = S.PROCESSING
            self.held[job.id] = job

    @precondition(lambda self: self.held)
    @rule(data=st.data(), state=st.sampled_from([S.COMPLETED, S.FAILED, S.DEAD]))
    def finish(self, data: st.DataObject, state: JobState) -> None:
        job = self.held.pop(data.draw(st.sampled_from(sorted(self.held))))
        now = self._tick()
        run_at = now + 3 if state is S.FAILED else None
        done = self.store.finish(job, state, run_at, now=now, exit_code=0, error=None,
                                 output=None, history_entry={})
        assert done == (self.model[job.id] is S.PROCESSING)
        if done:
            self.model[job.id] = state

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        job = self.held.pop(data.draw(st.sampled_from(sorted(self.held))))
        done = self.store.requeue(job, now=self._tick(), count_attempt=False,
                                  rescued=False, history_entry={})
        assert done == (self.model[job.id] is S.PROCESSING)
        if done:
            self.model[job.id] = S.PENDING

    def _user(self, data: st.DataObject, transition: Transition) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.model)))
        moved = self.store.transition(job_id, transition, self._tick())
        assert (moved is not None) == transition.allowed_from(self.model[job_id])
        if moved is not None:
            self.model[job_id] = transition.target
            self.held.pop(job_id, None)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self._user(data, Transition.CANCEL)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        self._user(data, Transition.RETRY)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), queue=st.sampled_from(["a", "b"]))
    def retry_elsewhere(self, data: st.DataObject, queue: str) -> None:
        """`retry --queue`: the queue and the state change in one transaction."""
        job_id = data.draw(st.sampled_from(sorted(self.model)))
        moved = self.store.retry_edited(job_id, Transition.RETRY, {"queue": queue},
                                        self._tick())
        assert (moved is not None) == Transition.RETRY.allowed_from(self.model[job_id])
        if moved is not None:
            self.model[job_id], self.queues[job_id] = moved.state, queue

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.model)))
        if self.model[job_id] is S.PROCESSING:  # `rm` never deletes a running job
            assert not self.store.delete(job_id)
            return
        assert self.store.delete(job_id)
        del self.model[job_id]
        self.held.pop(job_id, None)

    @rule()
    def promote(self) -> None:
        self.store.promote_due(self._tick())  # relabels due waiting jobs: read them back
        for job_id, state in list(self.model.items()):
            if state in (S.SCHEDULED, S.FAILED):
                self.model[job_id] = self.store.get(job_id).state

    @rule(state=st.sampled_from(sorted(FINISHED)))
    def purge(self, state: JobState) -> None:
        gone = [job_id for job_id, s in self.model.items() if s is state]
        assert self.store.purge([state], None) == len(gone)
        for job_id in gone:
            del self.model[job_id]

    @invariant()
    def counts_agree(self) -> None:
        expected = {state: 0 for state in JobState}
        for state in self.model.values():
            expected[state] += 1
        assert self.store.counts() == expected
        grouped = {JobState(state): n for state, n in self._grouped() if n}
        assert grouped == {state: n for state, n in expected.items() if n}
        per_queue: dict[str, dict[JobState, int]] = {}
        for job_id, state in self.model.items():
            found = per_queue.setdefault(self.queues[job_id], {s: 0 for s in JobState})
            found[state] += 1
        assert self.store.queue_counts() == per_queue

    def _grouped(self) -> list[Any]:
        return self.store.execute_raw("SELECT state, COUNT(*) FROM jobs GROUP BY state")


def test_counts_follow_every_operation(store_url: str) -> None:
    StoreMachine.url = store_url
    run: Optional[Any] = StoreMachine.TestCase
    assert run is not None
    run.settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow])
    run().runTest()


@pytest.fixture(autouse=True)
def _reset_url() -> Any:
    yield
    StoreMachine.url = ""
