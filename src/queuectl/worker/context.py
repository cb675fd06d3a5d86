"""What the parts of a supervisor share: who this worker is, its store and settings,
its clocks, and its stop state.

The supervisor owns one WorkerContext; the executor and the periodic services get it
instead of a reference to the supervisor, so none of them imports another's module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from queuectl.config import Settings
from queuectl.models import Job
from queuectl.retryrules import NO_POLICY, Policy, Rules, resolve

if TYPE_CHECKING:
    from queuectl.backends import Backend
    from queuectl.queue import Queue
    from queuectl.worker.fence import Fence

STOP_NOW_GRACE_S = 10.0  # after stop --now, how long to keep trying to record results


class Clock:
    """The loop's two clocks: monotonic for its timers, wall time for the store's
    timestamps.  Tests pass a fake one."""

    def mono(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


def _nothing() -> None:
    return None


def _ignore_due(run_at: Optional[float]) -> None:
    return None


@dataclass
class WorkerContext:
    queue: "Queue"
    worker_id: str
    host: str
    slots: int
    queues: Optional[list[str]]
    settings: Settings
    fence: "Fence"
    clock: Clock = field(default_factory=Clock)
    stopping: bool = False  # no more claims; exit once the running jobs are done
    stop_now: bool = False  # running jobs were killed to be put back
    stop_now_at: Optional[float] = None  # monotonic
    exit_reason: str = ""
    jobs_done: int = 0
    last_activity: float = 0.0  # monotonic: a job started or ended
    #: act on signals now (the supervisor's; called while a store call is retried)
    check_signals: Callable[[], None] = _nothing
    #: a retry is due at this wall time: the loop must wake for it
    note_due: Callable[[Optional[float]], None] = _ignore_due
    #: the queues' own retry rules (`queue policy`), re-read with every heartbeat
    queue_rules: dict[str, Rules] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.last_activity = self.clock.mono()

    @property
    def backend(self) -> "Backend":
        return self.queue.backend

    def retry_policy(self, job: Job) -> Policy:
        """The retry rules that apply to a job's failure: its own, its queue's (as
        cached), the config's; no store call."""
        config = self.settings.retry_rules
        queue = self.queue_rules.get(job.queue)
        if job.retry_policy is None and queue is None and config.empty:
            return NO_POLICY
        return resolve(job.retry_policy, queue, config)

    def job_started(self) -> None:
        self.last_activity = self.clock.mono()

    def job_done(self) -> None:
        self.jobs_done += 1
        self.last_activity = self.clock.mono()

    def exit_deadline_passed(self) -> bool:
        """After stop --now, results that cannot be recorded are given up on after
        STOP_NOW_GRACE_S."""
        return (self.stop_now_at is not None
                and self.clock.mono() - self.stop_now_at > STOP_NOW_GRACE_S)
