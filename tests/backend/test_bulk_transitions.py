"""`dlq retry --all` is one statement: with a worker burying jobs again while it runs,
the count it reports equals the distinct jobs it moved, each retried once."""

from __future__ import annotations

import threading
import time
from typing import Any

from queuectl.backends import open_backend
from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState, Transition

N = 600


def _bury(backend: Any, now: float) -> int:
    buried = 0
    while True:
        job = backend.claim("w1", "host:1/w1", None, now)
        if job is None:
            return buried
        backend.finish(job, JobState.DEAD, None, now=now, exit_code=1, error="boom",
                       output=None, history_entry={"attempt": job.attempts})
        buried += 1


def test_dlq_retry_all_retries_each_dead_job_once_while_a_worker_buries(
        store_url: str) -> None:
    setup = open_backend(store_url)
    try:
        now = time.time() - 10
        setup.enqueue([NewJob(command="false", id=f"j{i:04d}") for i in range(N)], now)
        assert _bury(setup, now) == N
    finally:
        setup.close()
    stop = threading.Event()

    def worker() -> None:  # claims whatever is pending and buries it at once
        backend = open_backend(store_url, durable=False)
        try:
            while not stop.is_set():
                _bury(backend, time.time())
        finally:
            backend.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        with Queue(store_url) as q:
            moved = q.dlq_retry_all()
    finally:
        stop.set()
        thread.join()
    ids = [job.id for job in moved]
    assert len(ids) == len(set(ids)) == N
    check = open_backend(store_url)
    try:
        for job_id in ids:
            events = [h.get("event") for h in check.get(job_id).history]
            assert events.count("dlq retry") == 1, (job_id, events)
    finally:
        check.close()


def test_dlq_retry_all_resets_attempts_and_skips_a_key_held_by_a_live_job(
        store_url: str) -> None:
    backend = open_backend(store_url)
    try:
        now = time.time() - 10
        backend.enqueue([NewJob(command="false", id="old", unique_key="k"),
                         NewJob(command="false", id="free")], now)
        assert _bury(backend, now) == 2
        backend.enqueue([NewJob(command="true", id="live", unique_key="k")], now)
        moved = backend.transition_all(Transition.DLQ_RETRY, now + 1, reset_attempts=True)
        assert [job.id for job in moved] == ["free"]
        assert moved[0].state is JobState.PENDING and moved[0].attempts == 0
        assert backend.get("old").state is JobState.DEAD
    finally:
        backend.close()


def test_retry_of_a_job_whose_unique_key_a_live_job_holds_is_an_invalid_transition(
        store_url: str) -> None:
    import pytest

    from queuectl.errors import InvalidTransition

    backend = open_backend(store_url)
    try:
        now = time.time() - 10
        backend.enqueue([NewJob(command="false", id="old1", unique_key="k")], now)
        assert _bury(backend, now) == 1
        backend.enqueue([NewJob(command="true", id="live1", unique_key="k")], now)
    finally:
        backend.close()
    with Queue(store_url) as q:
        for retry in (q.retry, q.dlq_retry):
            with pytest.raises(InvalidTransition, match="held by live job live1") as caught:
                retry("old1")
            assert caught.value.exit_code == 1
        assert q.get("old1").state is JobState.DEAD


def test_concurrent_enqueues_of_one_unique_key_all_get_the_live_job(store_url: str) -> None:
    ids: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def enqueue(slot: int) -> None:
        backend = open_backend(store_url)
        try:
            for round_ in range(40):
                job = backend.enqueue([NewJob(command="true", id=f"t{slot}-{round_}",
                                              unique_key=f"key-{round_}")], time.time())
                ids[slot].append(job[0].id)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            backend.close()

    threads = [threading.Thread(target=enqueue, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert ids[0] == ids[1] and len(ids[0]) == 40
