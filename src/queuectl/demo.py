"""The showcase that `queuectl demo` enqueues: a tour of what the queue does."""

from __future__ import annotations

import time

from queuectl.models import NewJob

DEMO_PREFIX = "demo-"


def demo_jobs(now: float, tag: str | None = None) -> list[NewJob]:
    """Successes at several priorities, a job that fails until it is dead, a timeout,
    and one scheduled a few seconds ahead.  Ids carry a tag so the demo can be run
    again on the same store."""
    tag = tag or time.strftime("%H%M%S", time.localtime(now))

    def job(name: str, command: str, **fields: object) -> NewJob:
        return NewJob(command=command, id=f"{DEMO_PREFIX}{tag}-{name}", **fields)  # type: ignore[arg-type]

    return [
        job("hello", "echo 'Hello from queuectl'"),
        job("urgent", "echo 'priority 10 runs first'", priority=10),
        job("low", "echo 'priority 1 runs last'", priority=1),
        job("work", "sleep 1 && echo 'one second of work done'"),
        job("python", "python3 -c \"print(sum(range(10**6)))\""),
        job("flaky", "echo 'this command always fails' >&2; exit 3",
            max_retries=2, backoff_base=2),
        job("missing", "no_such_command_xyz", max_retries=0),
        job("slow", "sleep 30", timeout=1.5, max_retries=0),
        job("later", "echo 'scheduled 3 seconds ahead'", run_at=now + 3),
    ]
