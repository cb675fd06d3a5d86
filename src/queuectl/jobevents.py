"""Following jobs as a stream of events: what `logs -f` and `wait` show, computed once
for the CLI, the shell and the dashboard.

`follow()` yields a job's output as it is produced (from the live capture when the job
runs on this host), says when it moves on to another run of the job (a retry, a
rescue, a `stop --now`), when the worker running it is gone, and ends with the job.
`watch()` yields each change of state of a set of jobs until all are finished or a
deadline passes.  Both poll the store: a read per job every `poll_s`, nothing written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Protocol, Sequence, Union

from queuectl.errors import NotFound
from queuectl.models import Job
from queuectl.states import SETTLED, JobState
from queuectl.worker import capture

if TYPE_CHECKING:
    from queuectl.queue import Queue

FOLLOW_POLL_S = 0.1  # how often a follower looks at the job and its capture
WAIT_POLL_S = 0.1


@dataclass(frozen=True)
class Output:
    """Output text of the run being followed (decoded as UTF-8, errors replaced)."""

    text: str


@dataclass(frozen=True)
class Skipped:
    """Bytes the job printed faster than they could be read, released meanwhile."""

    nbytes: int


@dataclass(frozen=True)
class RunSwitched:
    """The follower moved on to another run of the job (its `attempts`-th)."""

    job: Job


@dataclass(frozen=True)
class WorkerGone:
    """The supervisor running the job (on this host) has exited; the job runs again
    once a worker rescues it."""

    job: Job


@dataclass(frozen=True)
class Ended:
    """The job reached a finished state; the last event of `follow()`."""

    job: Job


@dataclass(frozen=True)
class StateChanged:
    """A watched job was seen in a new state (the first sighting counts)."""

    job: Job


@dataclass(frozen=True)
class WatchDone:
    """The last event of `watch()`: the latest view of every job, in the order asked."""

    jobs: list[Job]
    timed_out: bool

    @property
    def all_completed(self) -> bool:
        return all(job.state is JobState.COMPLETED for job in self.jobs)


@dataclass(frozen=True)
class Watching:
    """The first event of `watch_live()`: how many live jobs it waits for."""

    count: int


FollowEvent = Union[Output, Skipped, RunSwitched, WorkerGone, Ended]
WatchEvent = Union[Watching, StateChanged, WatchDone]


def last_lines(text: str, count: Optional[int]) -> str:
    """The last `count` lines of `text` (all of it for None); a final line without
    a newline counts as a line."""
    if count is None:
        return text
    if count <= 0:
        return ""
    return "".join(text.splitlines(keepends=True)[-count:])


def follow(q: "Queue", job_id: str, *, poll_s: float = FOLLOW_POLL_S,
           sleep: Callable[[float], None] = time.sleep,
           tail: Optional[int] = None) -> Iterator[FollowEvent]:
    """The events of one job until it ends (see the module docstring).

    A run's capture stays readable after the run ends, so the follower drains it
    before it lets go and looks at the next run.  When no run was followed (the job
    ran on another host, or had ended already), the stored tail is the output.
    `tail`: of what the job had printed when following began, only its last `tail`
    lines (`logs -n N -f`); everything after comes in full."""
    reader: Optional[Reader] = None
    run: tuple[object, ...] = ()  # (worker, attempts) of the run being followed
    printed = warned = False
    followed = 0
    backlog = tail is not None  # the first drain is what was there before: cut it

    def drain() -> Iterator[FollowEvent]:
        nonlocal printed, backlog
        kept: list[str] = []
        while reader is not None:
            text, skipped, more = reader.read()
            if skipped and not backlog:
                yield Skipped(skipped)
            if text:
                printed = True
                if backlog:
                    kept.append(text)
                else:
                    yield Output(text)
            if not more:
                break
        if backlog and reader is not None:
            backlog = False
            text = last_lines("".join(kept), tail)
            if text:
                yield Output(text)

    try:
        while True:
            job = q.find(job_id)
            if job is None:
                raise NotFound(f"job {job_id} was deleted")
            current = (job.worker, job.attempts) if job.state is JobState.PROCESSING else ()
            if reader is not None and current != run:
                yield from drain()  # the run ended or was taken over: what it left, then go
                rest = reader.close()
                if rest:
                    yield Output(rest)
                reader = None
            if reader is None and current:
                reader = _live_reader(q, job)
                if reader is not None:
                    run = current
                    if followed:
                        yield RunSwitched(job)
                    followed += 1
            if current and not warned and _worker_gone(job):
                warned = True
                yield WorkerGone(job)
            yield from drain()
            backlog = False  # a run that starts later is shown from its start
            if job.state in SETTLED:  # blocked: only a person's retry moves it
                if job.output and (not printed or run[1:] != (job.attempts,)):
                    # none of the last run was shown live (it ran on another host, or
                    # started and ended between two looks): its stored output
                    text = last_lines(job.output, tail) if not printed else job.output
                    if text:
                        yield Output(text)
                yield Ended(job)
                return
            sleep(poll_s)
    finally:
        if reader is not None:  # a follower that stopped early (a closed page, Ctrl-C)
            reader.close()


def watch(q: "Queue", job_ids: Sequence[str], timeout_s: Optional[float] = None, *,
          poll_s: float = WAIT_POLL_S, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[WatchEvent]:
    """Changes of state of `job_ids` until all are finished (completed, dead or
    cancelled) or blocked (a dependency died: nothing moves it on its own), or
    `timeout_s` passes; ends with a WatchDone."""
    deadline = None if timeout_s is None else clock() + timeout_s
    latest: dict[str, Job] = {}
    while True:
        for job_id in job_ids:
            job = q.find(job_id)
            if job is None:
                raise NotFound(f"job {job_id} was deleted while waiting")
            previous = latest.get(job_id)
            latest[job_id] = job
            if previous is None or previous.state != job.state:
                yield StateChanged(job)
        finished = all(job.state in SETTLED for job in latest.values())
        if finished or (deadline is not None and clock() >= deadline):
            yield WatchDone([latest[job_id] for job_id in job_ids], not finished)
            return
        pause = poll_s if deadline is None else max(0.0, min(poll_s, deadline - clock()))
        sleep(pause)


def watch_live(q: "Queue", queue: Optional[str] = None, timeout_s: Optional[float] = None,
               *, poll_s: float = WAIT_POLL_S, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Iterator[WatchEvent]:
    """`watch()` of every job that is live (not finished) now, of every queue or of
    `queue`, newest first; jobs added meanwhile are not waited for, and a job deleted
    meanwhile drops out.  A poll walks the live jobs (one paged read) and reads only
    the ones that left that set, so it costs one listing, not a read per job."""
    live = [state for state in JobState if state not in SETTLED]
    deadline = None if timeout_s is None else clock() + timeout_s
    latest = {job.id: job for job in q.iter_jobs(live, queue)}
    order = list(latest)
    waiting = set(order)
    yield Watching(len(order))
    for job in latest.values():
        yield StateChanged(job)
    while True:
        if not waiting or (deadline is not None and clock() >= deadline):
            yield WatchDone([latest[job_id] for job_id in order if job_id in latest],
                            bool(waiting))
            return
        # a big backlog is walked less often: a listing of N jobs every N/10,000 s
        pause = max(poll_s, min(2.0, len(waiting) / 10_000))
        sleep(pause if deadline is None else max(0.0, min(pause, deadline - clock())))
        still = {job.id: job for job in q.iter_jobs(live, queue) if job.id in waiting}
        for job_id in order:
            if job_id not in waiting:
                continue
            found = still.get(job_id) or q.find(job_id)
            if found is None:  # deleted (`rm`, a purge) while waited for
                waiting.discard(job_id)
                latest.pop(job_id, None)
                continue
            job = found
            if job.state != latest[job_id].state:
                yield StateChanged(job)
            latest[job_id] = job
            if job.state in SETTLED:
                waiting.discard(job_id)


class Reader(Protocol):
    """Reads one run's output incrementally: (text, bytes skipped, more waiting)."""

    def read(self) -> tuple[str, int, bool]: ...

    def close(self) -> str: ...


class StoreReader:
    """Reads a run's output from the chunks its worker publishes through the store
    (a run on another host).  A chunk's `seq` is the byte offset it starts at, so a
    gap (chunks the worker had to leave out, or ones trimmed meanwhile) is counted as
    skipped bytes."""

    LIMIT = 64  # chunks per read

    def __init__(self, q: "Queue", job_id: str, attempt: int) -> None:
        import codecs

        self.q, self.job_id, self.attempt = q, job_id, attempt
        self.offset = -1  # not started: the first chunk read sets it
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read(self) -> tuple[str, int, bool]:
        chunks = self.q.read_output(self.job_id, self.attempt, max(self.offset, 0),
                                    self.LIMIT)
        parts: list[str] = []
        skipped = 0
        for seq, data in chunks:
            if self.offset < 0:
                self.offset = 0
            if seq > self.offset:
                skipped += seq - self.offset
                self._decoder.reset()
            elif seq + len(data) <= self.offset:
                continue  # already read
            elif seq < self.offset:
                data = data[self.offset - seq:]
                seq = self.offset
            parts.append(self._decoder.decode(bytes(data)))
            self.offset = seq + len(data)
        return "".join(parts), skipped, len(chunks) == self.LIMIT

    def close(self) -> str:
        return self._decoder.decode(b"", final=True)


def _live_reader(q: "Queue", job: Job) -> Optional[Reader]:
    """The run's capture when it runs on this host, else its chunks in the store."""
    handle = q.open_live_output(job)
    if handle is not None:
        return capture.Follower(handle)
    if q.publishes_output:
        return StoreReader(q, job.id, job.attempts)
    return None


def _worker_gone(job: Job) -> bool:
    """Whether the job's supervisor ran on this host and its process has exited."""
    from queuectl.maintenance import pid_alive, this_host

    pid = capture.worker_pid(job.worker, this_host())
    return pid is not None and not pid_alive(pid)
