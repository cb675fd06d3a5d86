"""The overview's shared feed in process: however many live pages are open, the store
is read at most once per poll interval, and a change reaches every page within one."""

from __future__ import annotations

import time
from typing import Any

import anyio

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState
from queuectl.web.figures import overview_figures
from queuectl.web.live import IDLE_READ_S, OverviewFeed
from queuectl.web.store import Store

POLL_S = 0.1


def _feed(url: str) -> OverviewFeed:
    return OverviewFeed(Store(Queue(url)), POLL_S)


def test_many_live_pages_share_one_store_read_per_interval(store_url: str) -> None:
    feed = _feed(store_url)
    clients, versions = 8, 4
    seen: list[list[int]] = [[] for _ in range(clients)]

    async def page(i: int) -> None:
        version = 0
        with anyio.fail_after(10):
            while len(seen[i]) < versions:
                # a change each time: a job enqueued between reads
                version, data = await feed.after(version)
                seen[i].append(data["status"]["counts"]["pending"])
                if i == 0:
                    await feed.store.call(feed.store.queue.enqueue, [NewJob(command="true")])

    async def main() -> float:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            for i in range(clients):
                group.start_soon(page, i)
        return time.monotonic() - started

    try:
        elapsed = anyio.run(main)
        # one read per interval for all the pages, not one per page
        assert feed.reads <= elapsed / POLL_S + 2
        assert feed.interval >= POLL_S
        assert feed.reads < clients * versions
        assert all(counts == sorted(counts) for counts in seen)
        assert seen[0][-1] >= versions - 1
    finally:
        feed.store.queue.close()


def test_a_change_reaches_a_waiting_page_within_an_interval(store_url: str) -> None:
    feed = _feed(store_url)

    async def main() -> tuple[float, float, Any]:
        version, first = await feed.after(0)
        interval = feed.interval  # spaced out when the first read was slow
        assert first["status"]["counts"]["pending"] == 0
        await feed.store.call(feed.store.queue.enqueue, [NewJob(command="true", id="new1")])
        enqueued = time.monotonic()
        with anyio.fail_after(5):
            _, data = await feed.after(version)
        return time.monotonic() - enqueued, interval, data

    try:
        delay, interval, data = anyio.run(main)
        assert data["status"]["counts"]["pending"] == 1
        assert [j["id"] for j in data["latest"]] == ["new1"]
        # within the poll interval (spaced out when a read was slow) and the read
        assert delay <= interval + 0.5
        # the page and /api/overview take the same snapshot while it is fresh
        assert anyio.run(feed.latest)["status"]["counts"]["pending"] == 1
    finally:
        feed.store.queue.close()


def test_the_overview_figures_come_from_queue_metrics(store_url: str) -> None:
    now = 1_700_000_000.0
    clock = [now - 200]
    queue = Queue(store_url, clock=lambda: clock[0])
    try:
        queue.enqueue([NewJob(command="true", id="a"), NewJob(command="false", id="b")])
        clock[0] = now
        for result in ("completed", "dead"):
            job = queue.backend.claim("w1", "h:1/w1", ["default"], now - 120)
            assert job is not None
            assert queue.backend.finish(job, JobState(result), None, now=now - 90,
                                        exit_code=0 if result == "completed" else 1,
                                        error=None, output=None, history_entry={
                                            "attempt": 1, "started_at": now - 120,
                                            "finished_at": now - 90, "result": result})
        figures = overview_figures(queue)
        report = queue.metrics(3600).to_dict()["overall"]
        assert figures["success_rate"] == report["success_rate"] == 0.5
        assert figures["duration_p95_s"] == report["duration_s"]["p95"] == 30.0
        points = figures["throughput_per_min"]
        assert len(points) == 60 and points[-1][0] == 0.0
        # both runs ended 90 s ago: in the bucket [-120 s, -60 s), drawn at -60 s
        assert [p for p in points if p[1]] == [[-60.0, 2.0]]
    finally:
        queue.close()


def test_an_unchanged_store_is_looked_at_not_read(store_url: str) -> None:
    clock = [1000.0]
    queue = Queue(store_url)
    feed = OverviewFeed(Store(queue), POLL_S, clock=lambda: clock[0])
    other = Queue(store_url)
    try:
        def latest_pending() -> int:
            return int(anyio.run(feed.latest)["status"]["counts"]["pending"])

        assert latest_pending() == 0 and feed.reads == 1
        clock[0] += 1
        assert latest_pending() == 0 and feed.reads == 1  # nothing committed: no read
        other.enqueue([NewJob(command="true")])  # another connection commits
        clock[0] += 1
        assert latest_pending() == 1 and feed.reads == 2
        queue.enqueue([NewJob(command="true")])  # the dashboard's own connection
        clock[0] += 1
        assert latest_pending() == 2 and feed.reads == 3
        clock[0] += IDLE_READ_S  # the ages move on: read again
        assert latest_pending() == 2 and feed.reads == 4
    finally:
        other.close()
        queue.close()


def test_a_commit_elsewhere_is_read_at_the_next_look(store_url: str) -> None:
    clock = [1000.0]
    queue = Queue(store_url)
    feed = OverviewFeed(Store(queue), POLL_S, clock=lambda: clock[0])
    other = Queue(store_url)
    try:
        assert anyio.run(feed.latest)["status"]["counts"]["pending"] == 0
        other.enqueue([NewJob(command="true")])
        clock[0] += 1
        assert anyio.run(feed.latest)["status"]["counts"]["pending"] == 1
    finally:
        other.close()
        queue.close()


def test_the_postgres_marker_follows_this_store_only(pg_url: str) -> None:
    """Commits to other databases of the server leave it (a shared server kept the
    live page reading); every change of a job moves it, even one that brings the
    counts back to the same figures."""
    import psycopg

    from queuectl.states import Transition

    queue = Queue(pg_url)
    try:
        backend = queue.backend
        marker = backend.change_marker()
        elsewhere = pg_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(elsewhere, autocommit=True) as conn:
            conn.execute("CREATE TEMP TABLE scratch (x int)")
            conn.execute("INSERT INTO scratch VALUES (1)")
        assert backend.change_marker() == marker
        [job] = queue.enqueue([NewJob(command="true")])
        pending = backend.change_marker()
        assert pending != marker
        backend.transition(job.id, Transition.CANCEL, time.time())
        backend.transition(job.id, Transition.RETRY, time.time())
        assert backend.counts()[JobState.PENDING] == 1  # the figures as before
        assert backend.change_marker() != pending
    finally:
        queue.close()


def test_a_change_is_read_at_the_next_look_when_the_last_read_is_an_interval_old(
        store_url: str) -> None:
    clock = [1000.0]
    queue = Queue(store_url)
    feed = OverviewFeed(Store(queue), POLL_S, clock=lambda: clock[0], look_s=POLL_S / 2)
    other = Queue(store_url)
    try:
        def pending() -> int:
            return int(anyio.run(feed.latest)["status"]["counts"]["pending"])

        assert pending() == 0 and feed.reads == 1
        look, interval = feed.look_s, feed.interval
        assert look < interval == POLL_S  # looks come more often than reads
        clock[0] = 1000.0 + interval
        assert pending() == 0 and feed.reads == 1  # looked: nothing changed
        other.enqueue([NewJob(command="true")])
        clock[0] = 1000.0 + interval + look  # the next look, not a whole interval later
        assert pending() == 1 and feed.reads == 2
        other.enqueue([NewJob(command="true")])
        clock[0] += look  # a look sees it, but the last read is too recent
        assert pending() == 1 and feed.reads == 2
        clock[0] = 1000.0 + 2 * interval + look  # an interval after that read
        assert pending() == 2 and feed.reads == 3
    finally:
        other.close()
        queue.close()
