"""`logs -f` of a job running on another host reads the output chunks its worker
publishes through the store: the service layer reads them from either store."""

from __future__ import annotations

from typing import Any

from queuectl import jobevents
from queuectl.models import NewJob
from queuectl.queue import Queue

NOW = 1_700_000_000.0


def test_queue_reads_published_output(store_url: str) -> None:
    with Queue(store_url, clock=lambda: NOW) as q:
        assert q.publishes_output
        q.enqueue([NewJob(command="true", id="remote")])
        backend = q.backend
        job = backend.claim("w-elsewhere", "another-host:4242/1", None, NOW)
        assert job is not None
        backend.append_output("remote", 1, 0, b"first\n", NOW)
        assert q.read_output("remote", 1, 0, 10) == [(0, b"first\n")]
        steps: list[str] = []

        def sleep(_: float) -> None:  # between two polls the run goes on, then ends
            if not steps:
                backend.append_output("remote", 1, 6, b"second\n", NOW)
                steps.append("more")
            else:
                backend.finish(job, job.state.COMPLETED, None, now=NOW, exit_code=0,
                               error=None, output="first\nsecond\n", history_entry={})

        events: list[Any] = list(jobevents.follow(q, "remote", poll_s=0, sleep=sleep))
    text = "".join(e.text for e in events if isinstance(e, jobevents.Output))
    assert text == "first\nsecond\n"  # read live from the chunks, not the stored tail
    assert isinstance(events[0], jobevents.Output) and events[0].text == "first\n"
    assert isinstance(events[-1], jobevents.Ended)
