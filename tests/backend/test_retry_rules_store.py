"""Retry rules and `edit` in the store, both stores: a job's own rules are stored by
every enqueue path and come back with the claim (what the worker decides from); a
queue's rules are set, merged and cleared; `edit` changes a job where it is, guarded on
its state; `retry --explain` reads without writing."""

from __future__ import annotations

from typing import Iterator

import pytest

from queuectl.config import Settings
from queuectl.errors import InvalidInput, InvalidTransition
from queuectl.jobspec import build
from queuectl.models import NewJob, Outcome
from queuectl.queue import Queue
from queuectl.retry import decide
from queuectl.retryrules import resolve
from queuectl.states import EDITABLE, JobState

T0 = 1_700_000_000.0
RULES = {"retry_on": ["75", "SIGKILL"], "no_retry_on": ["2"]}


@pytest.fixture
def q(store_url: str) -> Iterator[Queue]:
    queue = Queue(store_url, clock=lambda: T0 + 5)
    queue.backend.clear()
    try:
        yield queue
    finally:
        queue.close()


def test_a_jobs_rules_survive_every_enqueue_path_and_the_claim(q: Queue) -> None:
    b = q.backend
    b.enqueue([NewJob(command="exit 2", id="one", retry_policy=RULES)], T0)
    b.enqueue([NewJob(command="exit 2", id="keyed", unique_key="k", retry_policy=RULES)], T0)
    b.enqueue_stream(iter([NewJob(command="true", id=f"s{i}", retry_policy=RULES)
                           for i in range(3)] + [NewJob(command="true", id="plain")]), T0)
    for job_id in ("one", "keyed", "s0", "s2"):
        assert q.get(job_id).retry_policy == RULES, job_id
    assert q.get("plain").retry_policy is None
    claimed = {}
    while (job := b.claim("w1", "h:1/1", None, T0 + 1)) is not None:
        claimed[job.id] = job.retry_policy
    assert claimed["one"] == RULES and claimed["plain"] is None
    assert q.get("one").to_dict()["no_retry_on"] == ["2"]


def test_json_fields_are_validated_into_the_stored_shape() -> None:
    job = build({"command": "x", "retry_on": "75,kill", "no-retry-on": [2, 126]}, T0)
    assert job.retry_policy == {"retry_on": ["75", "SIGKILL"], "no_retry_on": ["2", "126"]}
    with pytest.raises(InvalidInput, match="bad retry term 'SIGNOPE'"):
        build({"command": "x", "retry_on": "SIGNOPE"}, T0)
    with pytest.raises(InvalidInput, match="exit codes are 1 to 255"):
        build({"command": "x", "no_retry_on": "300"}, T0)


def test_queue_rules_are_set_merged_and_cleared(q: Queue) -> None:
    assert q.backend.queue_policies() == {}
    assert q.set_queue_policy("mail", retry_on="75,timeout") == {"retry_on": ["75",
                                                                             "timeout"]}
    # a list not given is kept
    assert q.set_queue_policy("mail", no_retry_on="2") == {"retry_on": ["75", "timeout"],
                                                           "no_retry_on": ["2"]}
    q.set_queue_policy("other", no_retry_on="SIGTERM")
    assert q.backend.queue_policies() == {
        "mail": {"retry_on": ["75", "timeout"], "no_retry_on": ["2"]},
        "other": {"no_retry_on": ["SIGTERM"]}}
    listed = {row["name"]: row["retry_policy"] for row in q.queue_list()}
    assert listed["other"] == {"no_retry_on": ["SIGTERM"]}
    # pausing keeps the rules, and the rules keep the pause
    q.set_paused(["mail"], True)
    q.set_queue_policy("mail", retry_on="any")
    assert ("mail", True, None) in q.backend.queue_rows()
    assert q.set_queue_policy("mail", clear=True) is None
    assert q.backend.queue_policies() == {"other": {"no_retry_on": ["SIGTERM"]}}
    assert ("mail", True, None) in q.backend.queue_rows()


@pytest.mark.parametrize("args", [{"retry_on": "0"}, {"no_retry_on": "SIGFOO"},
                                  {}, {"retry_on": "75", "clear": True}])
def test_bad_queue_rules_write_nothing(q: Queue, args: dict[str, object]) -> None:
    q.set_queue_policy("mail", no_retry_on="2")
    with pytest.raises(InvalidInput):
        q.set_queue_policy("mail", **args)  # type: ignore[arg-type]
    assert q.backend.queue_policies() == {"mail": {"no_retry_on": ["2"]}}


def test_the_decision_uses_the_stored_layers(q: Queue) -> None:
    """What the worker does at a finish, from what the store returns."""
    q.set_queue_policy("mail", retry_on="75")
    q.backend.enqueue([NewJob(command="exit 3", id="m", queue="mail"),
                       NewJob(command="exit 3", id="own", queue="mail",
                              retry_policy={"retry_on": ["3"]})], T0)
    settings = Settings(stored={"no-retry-on": "3"}, env={})
    from queuectl.retryrules import Rules

    cached = {n: Rules.from_json(p) for n, p in q.backend.queue_policies().items()}
    failed = Outcome(exit_code=3, started_at=T0, finished_at=T0 + 1)
    for expected_state, expected_rule in ((JobState.DEAD, "not in retry-on 75 (queue)"),
                                          (JobState.FAILED, "retry-on 3 (job)")):
        job = q.backend.claim("w1", "h:1/1", None, T0 + 1)
        assert job is not None
        decision = decide(job, failed, settings, T0 + 2, policy=resolve(
            job.retry_policy, cached.get(job.queue), settings.retry_rules))
        assert (decision.state, decision.rule) == (expected_state, expected_rule), job.id


def _bury(q: Queue, job_id: str, entry: dict[str, object]) -> None:
    job = q.backend.claim("w1", "h:1/1", None, T0 + 1)
    assert job is not None and job.id == job_id
    q.backend.finish(job, JobState.DEAD, None, now=T0 + 2, exit_code=2,
                     error=str(entry["error"]), output=None,
                     history_entry={"attempt": 1, **entry})


def test_edit_changes_a_job_where_it_is(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="exit 2", id="d"), NewJob(command="true", id="p"),
                       NewJob(command="true", id="later", run_at=T0 + 3600)], T0)
    _bury(q, "d", {"result": "dead", "error": "exit code 2"})
    for job_id, state in (("d", JobState.DEAD), ("p", JobState.PENDING),
                          ("later", JobState.SCHEDULED)):
        job = q.edit(job_id, {"command": f"echo {job_id}"})
        assert job is not None and (job.state, job.command) == (state, f"echo {job_id}")
        assert job.history[-1] == {"event": "edit", "at": T0 + 5, "changed": {
            "command": [{"d": "exit 2"}.get(job_id, "true"), f"echo {job_id}"]}}
    # the same command again: nothing changes, nothing is written
    before = q.get("p")
    assert q.edit("p", {"command": "echo p"}) is None
    assert q.get("p") == before


def test_edit_refuses_running_and_finished_jobs_and_changes_nothing(q: Queue) -> None:
    q.backend.enqueue([NewJob(command="sleep 9", id="run"), NewJob(command="true", id="c")],
                      T0)
    running = q.backend.claim("w1", "h:1/1", None, T0 + 1)
    assert running is not None and running.id == "run"
    q.cancel("c")
    for job_id, state in (("run", "processing"), ("c", "cancelled")):
        before = q.get(job_id)
        with pytest.raises(InvalidTransition, match=f"job {job_id} is {state}; edit works"):
            q.edit(job_id, {"command": "echo new"})
        assert q.get(job_id) == before
    # the store's guard itself: a claim that won the race leaves nothing to edit
    assert q.backend.edit("run", EDITABLE, {"command": "x", "_diff": {}}, T0) is None
    assert q.get("run").command == "sleep 9"


def test_explain_reads_without_writing(q: Queue) -> None:
    q.set_queue_policy("default", no_retry_on="2")
    q.backend.enqueue([NewJob(command="exit 2", id="d", max_retries=5)], T0)
    _bury(q, "d", {"result": "dead", "error": "exit code 2 (not retried: no-retry-on 2 "
                   "(queue))", "exit_code": 2, "rule": "no-retry-on 2 (queue)"})
    before = q.get("d")
    report = q.explain_retry("d")
    assert q.get("d") == before
    assert report["max_retries"] == {"value": 5, "source": "job"}
    assert report["backoff_base"] == {"value": 2, "source": "default"}
    layers = {layer["source"]: layer for layer in report["rules"]}
    assert layers["queue"]["no_retry_on"] == ["2"] and layers["job"]["retry_on"] is None
    last = report["last_failure"]
    assert (last["failure"], last["decision"], last["rule"], last["recorded_rule"]) == (
        "exit code 2", "dead", "no-retry-on 2 (queue)", "no-retry-on 2 (queue)")
    # dead: runs again from attempt 1 after `dlq retry`, waits 2, 4, 8, 16, 32
    assert [r["wait_s"] for r in report["next_runs"]] == [None, 2, 4, 8, 16, 32]
    assert report["next_runs"][0]["at"] == T0 + 5
