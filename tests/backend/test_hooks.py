"""Hook events on both stores: recorded with the final transition only when a hook is
configured for it (the queue's, else the global one), claimed by exactly one caller
however many race, and their outcome kept on the event and in the job's history."""

from __future__ import annotations

import threading
from typing import Any, Iterator

import pytest

from queuectl.backends import open_backend
from queuectl.errors import InvalidInput
from queuectl.models import Job, NewJob
from queuectl.queue import Queue
from queuectl.states import JobState, Transition

NOW = 1_700_000_000.0


@pytest.fixture
def queue(store_url: str) -> Iterator[Queue]:
    q = Queue(store_url, clock=lambda: NOW)
    try:
        yield q
    finally:
        q.close()


def run(queue: Queue, job_id: str, state: JobState, *, queue_name: str = "default",
        exit_code: int = 3, error: str | None = "exit code 3") -> Job:
    """Enqueue a job, claim it, and end its run in `state`."""
    backend = queue.backend
    backend.enqueue([NewJob(command=f"run {job_id}", id=job_id, queue=queue_name)], NOW)
    job = backend.claim("w1", "host:1/w1", None, NOW + 1)
    assert job is not None and job.id == job_id
    run_at = NOW + 1000 if state is JobState.FAILED else None
    assert backend.finish(job, state, run_at, now=NOW + 2, exit_code=exit_code, error=error,
                          output="", history_entry={"attempt": job.attempts})
    return job


def events(queue: Queue) -> list[tuple[str, str, str]]:
    return [(e.job_id, e.event, e.hook) for e in reversed(queue.backend.hook_list(100))]


def test_nothing_is_recorded_without_a_hook(queue: Queue) -> None:
    run(queue, "d", JobState.DEAD)
    run(queue, "c", JobState.COMPLETED, exit_code=0, error=None)
    assert events(queue) == []
    assert not queue.backend.hook_pending()


def test_a_death_is_recorded_with_the_job_fields_and_completion_only_when_asked(
        queue: Queue) -> None:
    queue.config_set("on-dead", "notify dead")
    run(queue, "d", JobState.DEAD, queue_name="mail")
    run(queue, "c", JobState.COMPLETED, exit_code=0, error=None)
    run(queue, "f", JobState.FAILED)  # a retry is due: not final
    [event] = queue.backend.hook_list(10)
    assert (event.job_id, event.event, event.hook, event.queue, event.attempts,
            event.exit_code, event.error, event.command, event.created_at) == \
        ("d", "dead", "notify dead", "mail", 1, 3, "exit code 3", "run d", NOW + 2)
    assert event.status() == "waiting" and queue.backend.hook_pending()
    queue.config_set("on-complete", "notify done")
    run(queue, "c2", JobState.COMPLETED, exit_code=0, error=None)
    assert events(queue)[-1] == ("c2", "completed", "notify done")


def test_the_queue_hook_overrides_the_global_one(queue: Queue) -> None:
    queue.config_set("on-dead", "global")
    assert queue.set_queue_hooks("mail", on_dead="mail hook") == ("mail hook", None)
    assert queue.set_queue_hooks("batch", on_dead="") == ("", None)  # none for batch
    run(queue, "m", JobState.DEAD, queue_name="mail")
    run(queue, "b", JobState.DEAD, queue_name="batch")
    run(queue, "o", JobState.DEAD, queue_name="other")
    assert events(queue) == [("m", "dead", "mail hook"), ("o", "dead", "global")]
    # setting one hook keeps the other; --clear gives the queue back to the global ones
    assert queue.set_queue_hooks("mail", on_complete="done") == ("mail hook", "done")
    listed = {q["name"]: (q["on_dead"], q["on_complete"]) for q in queue.queue_list()}
    assert listed["mail"] == ("mail hook", "done") and listed["batch"] == ("", None)
    assert queue.set_queue_hooks("mail", clear=True) == (None, None)
    run(queue, "m2", JobState.DEAD, queue_name="mail")
    assert events(queue)[-1] == ("m2", "dead", "global")


@pytest.mark.parametrize("args", [{}, {"on_dead": "x", "clear": True},
                                  {"on_dead": "a\0b"}])
def test_bad_queue_hook_input_is_refused_and_changes_nothing(queue: Queue,
                                                             args: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        queue.set_queue_hooks("mail", **args)
    with pytest.raises(InvalidInput):
        queue.set_queue_hooks("bad name!", on_dead="x")
    assert queue.backend.queue_hooks() == {}


def test_a_job_retried_from_the_dlq_that_dies_again_fires_again(queue: Queue) -> None:
    queue.config_set("on-dead", "hook")
    run(queue, "d", JobState.DEAD)
    assert queue.backend.transition("d", Transition.DLQ_RETRY, NOW + 3,
                                    reset_attempts=True) is not None
    job = queue.backend.claim("w1", "host:1/w1", None, NOW + 4)
    assert job is not None
    queue.backend.finish(job, JobState.DEAD, None, now=NOW + 5, exit_code=1, error="x",
                         output="", history_entry={})
    assert [e for e, _, _ in events(queue)] == ["d", "d"]


def test_a_job_buried_by_a_rescue_and_by_finish_and_claim_fires(queue: Queue) -> None:
    queue.config_set("on-dead", "hook")
    backend = queue.backend
    backend.enqueue([NewJob(command="a", id="a"), NewJob(command="b", id="b")], NOW)
    a = backend.claim("w1", "host:1/w1", None, NOW + 1)
    b = backend.claim("w1", "host:1/w1", None, NOW + 1)
    assert a is not None and b is not None
    assert backend.requeue(a, now=NOW + 2, count_attempt=True, rescued=True,
                           history_entry={"event": "worker lost"}, to_state=JobState.DEAD)
    backend.finish_and_claim([(b, JobState.DEAD, None, {
        "now": NOW + 2, "exit_code": 1, "error": "boom", "output": "",
        "history_entry": {}})], worker_id="w1", workers=[], queues=None, now=NOW + 2)
    assert sorted(e for e, _, _ in events(queue)) == ["a", "b"]


def test_racing_claims_take_each_event_once(store_url: str, queue: Queue) -> None:
    """Six callers, each on its own connection (six supervisors), claim at once."""
    queue.config_set("on-dead", "hook")
    for i in range(12):
        run(queue, f"j{i:02d}", JobState.DEAD)
    racers = 6
    stores = [open_backend(store_url, durable=False) for _ in range(racers)]
    taken: list[list[int]] = [[] for _ in range(racers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(racers)

    def race(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            while claimed := stores[index].hook_claim(f"w{index}", 2, NOW + 3):
                taken[index].extend(e.id for e in claimed)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for store in stores:
        store.close()
    assert not errors, errors
    every = sorted(i for ids in taken for i in ids)
    assert len(every) == 12 and every == sorted(set(every))
    assert not queue.backend.hook_pending()
    owners = {e.id: e.claimed_by for e in queue.backend.hook_list(100)}
    for index, ids in enumerate(taken):
        assert all(owners[i] == f"w{index}" for i in ids)


def test_an_outcome_is_kept_on_the_event_and_in_the_job_history(queue: Queue) -> None:
    queue.config_set("on-dead", "hook")
    run(queue, "d", JobState.DEAD)
    [event] = queue.backend.hook_claim("w1", 4, NOW + 3)
    assert queue.backend.hook_claim("w2", 4, NOW + 3) == []
    assert [e["status"] for e in queue.hook_events()] == ["lost"]  # w1 is not registered
    queue.backend.hook_finish(event, "failed", "exit 7: no route", NOW + 4,
                              {"event": "hook on-dead failed", "at": NOW + 4,
                               "error": "exit 7: no route"})
    [shown] = queue.hook_events(job="d")
    assert (shown["status"], shown["detail"], shown["worker_id"]) == \
        ("failed", "exit 7: no route", "w1")
    job = queue.get("d")
    assert job.state is JobState.DEAD and job.history[-1]["event"] == "hook on-dead failed"
    assert queue.backend.hook_purge(NOW + 5) == 1 and queue.hook_events() == []
