"""Priority aging (config `priority-aging`, seconds of waiting worth one priority step),
on both stores, with the claim's clock passed in: a low priority job overtakes the
higher ones once it has waited one step longer than they have; the claim walks the
aged index (SQLite's plan says so); `config set` keeps the index of the current step
only; a worker picks the setting up from the store."""

from __future__ import annotations

from typing import Iterator

import pytest

from queuectl.backends import is_postgres
from queuectl.backends.base import aged_index_name
from queuectl.errors import ConfigError
from queuectl.models import NewJob
from queuectl.queue import Queue

T0 = 1_700_000_000.0


@pytest.fixture
def q(store_url: str) -> Iterator[Queue]:
    queue = Queue(store_url, clock=lambda: T0)
    queue.backend.clear()
    queue.backend.set_aging_index(0)
    queue.backend.config_unset("priority-aging")
    try:
        yield queue
    finally:
        queue.backend.set_aging_index(0)
        queue.close()


def _claim_order(q: Queue, now: float) -> list[str]:
    order = []
    while (job := q.backend.claim("w1", "h:1/1", None, now)) is not None:
        order.append(job.id)
    return order


def _stream(q: Queue) -> None:
    """A priority-1 job, then a priority-2 job every second for 30 s."""
    q.backend.enqueue([NewJob(command="true", id="low", priority=1)], T0)
    for t in range(1, 31):
        q.backend.enqueue([NewJob(command="true", id=f"p2-{t:02d}", priority=2)], T0 + t)


def test_without_aging_priority_is_strict(q: Queue) -> None:
    _stream(q)
    order = _claim_order(q, T0 + 100)
    assert order[-1] == "low" and len(order) == 31


def test_a_low_priority_job_runs_once_it_waited_one_step_longer(q: Queue) -> None:
    q.config_set("priority-aging", 10)
    q.backend.use_priority_aging(q.settings().priority_aging)
    _stream(q)
    order = _claim_order(q, T0 + 100)
    # low's key: T0 - 10; p2-t's key: T0 + t - 20.  Those enqueued less than one step
    # (10 s) after low have waited longer than it by more than a step's worth of
    # priority: they go first; from p2-10 on, low has waited a step longer and wins.
    assert order[:10] == [f"p2-{t:02d}" for t in range(1, 10)] + ["low"]
    assert order[10:] == [f"p2-{t:02d}" for t in range(10, 31)]


def test_the_order_is_the_same_whatever_the_claim_time(q: Queue) -> None:
    """A static key: the order does not depend on when the claims happen."""
    q.config_set("priority-aging", 5)
    q.backend.use_priority_aging(5)
    _stream(q)
    first = _claim_order(q, T0 + 40)
    q.backend.clear()
    _stream(q)
    assert _claim_order(q, T0 + 10_000) == first
    assert first.index("low") == 4  # p2-01..p2-04: key T0+t-10 < T0-5; a tie: FIFO


def test_config_set_keeps_the_new_and_the_previous_step_index(q: Queue) -> None:
    """Workers that have not re-read the config yet still have the index they walk."""
    def indexes() -> list[str]:
        return sorted(q.backend._aged_indexes())  # type: ignore[attr-defined]

    q.config_set("priority-aging", 60)
    assert indexes() == [aged_index_name(60)]
    q.config_set("priority-aging", "2m")
    assert indexes() == sorted([aged_index_name(120), aged_index_name(60)])
    q.config_set("priority-aging", 30)
    assert indexes() == sorted([aged_index_name(30), aged_index_name(120)])
    q.config_unset("priority-aging")
    assert indexes() == [aged_index_name(30)]
    q.config_unset("priority-aging")
    assert indexes() == []
    with pytest.raises(ConfigError):
        q.config_set("priority-aging", "-1")
    assert indexes() == []


def test_the_aged_claim_walks_its_index(q: Queue) -> None:
    if is_postgres(q.url):
        pytest.skip("SQLite's plan; PostgreSQL's claim plan is checked in "
                    "test_postgres_plans")
    q.config_set("priority-aging", 30)
    q.backend.use_priority_aging(30)
    q.backend.enqueue([NewJob(command="true", id=f"j{i}", priority=1 + i % 10)
                       for i in range(2000)], T0)
    text = q.backend.query_text("claim")
    params = {"now": T0, "worker": "w", "worker_id": "w1"}
    plan = " ".join(str(row) for row in q.backend.execute_raw(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN " + text, params))
    assert f"USING INDEX {aged_index_name(30)}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_a_worker_whose_step_is_out_of_date_still_claims(q: Queue) -> None:
    """`config set` keeps the previous step's index: a worker that has not re-read the
    config yet keeps claiming (in its old order) until its next heartbeat."""
    q.config_set("priority-aging", 30)
    stale = Queue(q.url, clock=lambda: T0)
    try:
        stale.backend.use_priority_aging(30)
        q.config_set("priority-aging", 60)
        _stream(q)
        done, claimed = stale.backend.finish_and_claim(
            [], worker_id="w1", workers=["h:1/1", "h:1/2"], queues=None, now=T0 + 100)
        assert [job.id for job in claimed] == ["p2-01", "p2-02"]
    finally:
        stale.close()


def test_a_supervisor_started_with_the_env_variable_makes_its_index(q: Queue) -> None:
    backend = q.backend
    backend.use_priority_aging(45)
    assert aged_index_name(45) in backend._aged_indexes()  # type: ignore[attr-defined]
    backend.use_priority_aging(0)
    _stream(q)
    assert _claim_order(q, T0 + 100)[-1] == "low"  # back to strict priority
