"""Self-fencing: when a supervisor cannot prove that it still holds its lease, it kills
its runs before the lease can run out, so that a host rescuing the jobs never runs one
alongside the old run (SPEC section 2).

The lease is proven by an acknowledged heartbeat: the store answered a heartbeat sent
at time T, so other hosts count the lease from T at the earliest.  They rescue the jobs
`lease` seconds after the last heartbeat they saw; this side fences `fence_after`
seconds after the last acknowledged one, which is earlier by the margin (see
docs/DECISIONS.md).  A watchdog thread checks the deadline, not the loop: the loop may
be stuck in a store call that hangs (a partition black-holes the bytes while the
connection stays open), and fencing must not wait for it.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

FENCE_CHECK_S = 0.1  # how often the watchdog looks at the deadline


def fence_after_s(lease_timeout_s: float, heartbeat_s: float) -> float:
    """Seconds after the last acknowledged heartbeat at which a supervisor fences: two
    heartbeats before its lease runs out, and never sooner than half-way between one
    heartbeat and the lease (a healthy supervisor's last acknowledgement is up to one
    heartbeat old).  The lease is what rescuers use: at least two heartbeats
    (maintenance.worker_alive)."""
    lease = max(lease_timeout_s, 2 * heartbeat_s)
    return max(lease - 2 * heartbeat_s, (lease + heartbeat_s) / 2)


class Fence:
    """The lease as this supervisor can prove it, on an injected monotonic clock.

    Thread-safe: the loop records heartbeats, the watchdog trips the fence."""

    def __init__(self, lease_timeout_s: float, heartbeat_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.acked_at = clock()  # registering counts as the first acknowledgement
        self.fenced = False
        self._lock = threading.Lock()
        self.update(lease_timeout_s, heartbeat_s)

    def update(self, lease_timeout_s: float, heartbeat_s: float) -> None:
        """New settings (they are re-read at every heartbeat)."""
        self.fence_after = fence_after_s(lease_timeout_s, heartbeat_s)

    def deadline(self) -> float:
        return self.acked_at + self.fence_after

    def acknowledged(self, sent_at: float) -> bool:
        """The store answered a heartbeat sent at `sent_at`; True when this lifts the
        fence."""
        with self._lock:
            self.acked_at = max(self.acked_at, sent_at)
            lifted, self.fenced = self.fenced, False
            return lifted

    def trip_if_due(self) -> bool:
        """Fence now if the deadline has passed; True only the moment it trips."""
        with self._lock:
            if self.fenced or self.clock() < self.deadline():
                return False
            self.fenced = True
            return True


class Watchdog:
    """A daemon thread that calls `on_trip` when the fence trips.  It never touches
    the store."""

    def __init__(self, fence: Fence, on_trip: Callable[[], None],
                 interval_s: float = FENCE_CHECK_S) -> None:
        self.fence = fence
        self.on_trip = on_trip
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queuectl-fence",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def check(self) -> None:
        if self.fence.trip_if_due():
            self.on_trip()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check()
