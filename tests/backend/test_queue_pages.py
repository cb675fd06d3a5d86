"""Queue.jobs_page: keyset pages over both stores, the bounded text search."""

from __future__ import annotations

import pytest

from queuectl import queue as queuemod
from queuectl.errors import InvalidInput
from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState


def test_a_text_search_looks_through_one_window_per_page(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queuemod, "SEARCH_WINDOW", 5)
    with Queue(store_url, clock=lambda: 1_700_000_000.0) as q:
        q.enqueue([NewJob(command=f"echo {'needle' if i in (1, 12) else 'hay'}", id=f"j{i:02d}")
                   for i in range(14)])
        found, cursors = [], []
        page = q.jobs_page(text="needle", limit=10)
        while True:
            found += [job.id for job in page.jobs]
            if page.next_before is None:
                break
            cursors.append(page.next_before)
            page = q.jobs_page(text="needle", limit=10, before=page.next_before)
        assert found == ["j12", "j01"]
        assert len(cursors) == 2  # 14 jobs, 5 per window: three pages, two cursors
        assert cursors == sorted(cursors, reverse=True)


def test_pages_filter_by_state_and_queue_and_id_prefix(store_url: str) -> None:
    with Queue(store_url, clock=lambda: 1_700_000_000.0) as q:
        q.enqueue([NewJob(command="true", id=f"job{i}", queue="mail" if i % 2 else "default")
                   for i in range(6)])
        q.cancel("job4")
        assert [j.id for j in q.jobs_page(queue="mail").jobs] == ["job5", "job3", "job1"]
        assert [j.id for j in q.jobs_page(state=JobState.CANCELLED).jobs] == ["job4"]
        assert [j.id for j in q.jobs_page(state=JobState.PENDING, queue="default").jobs] \
            == ["job2", "job0"]
        first = q.jobs_page(limit=4)
        assert [j.id for j in first.jobs] == ["job5", "job4", "job3", "job2"]
        rest = q.jobs_page(limit=4, before=first.next_before)
        assert [j.id for j in rest.jobs] == ["job1", "job0"] and rest.next_before is None
        assert [j.id for j in q.jobs_page(id_prefix="job3").jobs] == ["job3"]
        assert q.jobs_page(id_prefix="nope").jobs == []
        with pytest.raises(InvalidInput):
            q.jobs_page(text="a\x00b")
        with pytest.raises(InvalidInput):
            q.jobs_page(limit=0)
