"""Listings stream through the store a page at a time (keyset pagination by seq):
every match once, newest first, whatever the page size."""

from __future__ import annotations

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState


def test_iter_jobs_walks_every_page_once(store_url: str) -> None:
    with Queue(store_url) as q:
        q.enqueue([NewJob(command="true", id=f"a{i:03d}",
                          queue="mail" if i % 3 == 0 else "default") for i in range(40)])
        q.cancel("a005")
        everything = [job.id for job in q.iter_jobs(page=7)]
        assert everything == [f"a{i:03d}" for i in range(40)][::-1]
        mail = [job.id for job in q.iter_jobs(None, "mail", page=4)]
        assert mail == [f"a{i:03d}" for i in range(0, 40, 3)][::-1]
        pending = list(q.iter_jobs([JobState.PENDING], "default", limit=9, page=4))
        assert len(pending) == 9 and "a005" not in {job.id for job in pending}
        assert [job.id for job in q.iter_jobs([JobState.CANCELLED], page=2)] == ["a005"]
        assert q.count_jobs([JobState.PENDING], "default") == 25
        assert q.count_jobs(None, None) == 40
        assert q.queue_counts()["mail"][JobState.PENDING] == 14
