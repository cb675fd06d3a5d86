"""Publishing running jobs' output through the store, so that `logs -f` on any host
can follow a job that runs on another one.

A run's capture lives in its supervisor's memory (capture.py); a follower on the same
host reads it there.  For the others, the supervisor copies what a run printed into
the store as chunks keyed by (job, attempt, byte offset).  Only runs that have lasted
`PUBLISH_AFTER_S` publish anything, so tiny jobs cost nothing: their output reaches
the store with their result, as before.  A run publishes at most `MAX_CHUNK_BYTES`
per round (a faster job's followers skip what lies between, and are told), and the
store keeps about its last `KEEP_BYTES` (older chunks are dropped as new ones land).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

from queuectl.worker import capture

PUBLISH_AFTER_S = 0.5  # a run younger than this publishes nothing
PUBLISH_EVERY_S = 0.25  # how often running jobs' new output is published
MAX_CHUNK_BYTES = 256 << 10  # per run and round; the rest of a flood is skipped
KEEP_BYTES = 1 << 20  # published bytes kept in the store per run (the latest)
FOLLOW_GRACE_S = 30.0  # a finished run's chunks stay this long for slow followers

#: (job id, attempt, byte offset, data): what `Backend.append_output` takes.
Chunk = tuple[str, int, int, bytes]
#: (job id, attempt, offset before which chunks may go; None: all of the run).
Drop = tuple[str, int, Optional[int]]


@dataclass
class _Tracked:
    job_id: str
    attempt: int
    fd: int  # the run's capture (the runner's descriptor)
    started: float  # on the publisher's clock
    own_fd: int = -1  # opened once the run publishes, closed when it ends
    sent_to: int = 0  # output before this offset is published (or skipped)
    dropped_to: int = 0  # chunks before this offset were dropped from the store


class OutputPublisher:
    """Which output of the running jobs to publish next, on an injected clock.

    The executor `track()`s each run as it starts and `finish()`es it as it ends; the
    loop calls `collect()` at `next_at()` and hands the chunks and drops to the store
    in one call.  Nothing here does I/O but reading the captures.  A finished run's
    chunks are dropped FOLLOW_GRACE_S later."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._runs: dict[object, _Tracked] = {}
        self._ended: list[tuple[float, str, int]] = []  # (drop at, job id, attempt)
        self._next = clock() + PUBLISH_EVERY_S

    def track(self, key: object, job_id: str, attempt: int, fd: int) -> None:
        self._runs[key] = _Tracked(job_id, attempt, fd, self.clock())

    def finish(self, key: object) -> list[Chunk]:
        """A run ended (call it before the runner closes the capture): the rest of
        its output when it published any, so that a follower elsewhere sees the end;
        nothing for a run that never published (a tiny job costs nothing here)."""
        run = self._runs.pop(key, None)
        if run is None or run.own_fd < 0:
            return []
        chunks: list[Chunk] = []
        self._collect_run(run, chunks, [])
        os.close(run.own_fd)
        self._ended.append((self.clock() + FOLLOW_GRACE_S, run.job_id, run.attempt))
        return chunks

    def close(self) -> None:
        for run in self._runs.values():
            if run.own_fd >= 0:
                os.close(run.own_fd)
        self._runs.clear()

    def next_at(self) -> Optional[float]:
        return self._next if self._runs or self._ended else None

    def collect(self) -> tuple[list[Chunk], list[Drop]]:
        """New output of every run old enough to publish."""
        now = self.clock()
        self._next = now + PUBLISH_EVERY_S
        chunks: list[Chunk] = []
        drops: list[Drop] = []
        for run in self._runs.values():
            if now - run.started >= PUBLISH_AFTER_S:
                if run.own_fd < 0:
                    try:  # its own file offset: reads seek, the job's writes must not move
                        run.own_fd = os.open(f"/proc/self/fd/{run.fd}",
                                             os.O_RDONLY | os.O_CLOEXEC)
                    except OSError:
                        continue
                self._collect_run(run, chunks, drops)
        while self._ended and self._ended[0][0] <= now:
            _, job_id, attempt = self._ended.pop(0)
            drops.append((job_id, attempt, None))
        return chunks, drops

    def _collect_run(self, run: _Tracked, chunks: list[Chunk], drops: list[Drop]) -> None:
        try:
            size = os.fstat(run.own_fd).st_size
        except OSError:
            return
        if size <= run.sent_to:
            return
        start = max(run.sent_to, size - MAX_CHUNK_BYTES)  # a flood: keep up with its end
        offset, data = capture.read_range(run.own_fd, start, size, MAX_CHUNK_BYTES)
        run.sent_to = offset + len(data)
        if data:
            chunks.append((run.job_id, run.attempt, offset, data))
        keep_from = run.sent_to - KEEP_BYTES
        if keep_from > run.dropped_to:
            drops.append((run.job_id, run.attempt, keep_from))
            run.dropped_to = keep_from
