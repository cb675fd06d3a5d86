"""Self-fencing (queuectl.worker.fence) on a fake clock: when the fence trips, and that it
trips without any store call."""

from __future__ import annotations

import pytest

from queuectl.worker.fence import Fence, Watchdog, fence_after_s


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("lease", "beat", "after"), [
    (30, 5, 20),  # the defaults: ten seconds before rescuers may act
    (4, 1, 2.5),
    (10, 5, 7.5),  # the shortest lease allowed: still after the next heartbeat
    (3, 2, 3.0),  # a lease under two heartbeats counts as two (as rescuers count it)
])
def test_the_fence_falls_between_the_next_heartbeat_and_the_lease(
        lease: float, beat: float, after: float) -> None:
    assert fence_after_s(lease, beat) == after
    assert beat < after < max(lease, 2 * beat)


def test_trips_once_at_the_deadline_and_lifts_on_an_acknowledgement() -> None:
    clock = Clock()
    fence = Fence(4, 1, clock)
    clock.now += 2.4
    assert not fence.trip_if_due()
    clock.now += 0.1
    assert fence.trip_if_due() and fence.fenced
    assert not fence.trip_if_due()  # tripped once
    sent = clock.now
    clock.now += 5  # the answer came late: the lease counts from when it was sent
    assert fence.acknowledged(sent) and not fence.fenced
    assert fence.deadline() == sent + 2.5
    assert not fence.acknowledged(sent)  # nothing to lift


def test_an_old_acknowledgement_never_moves_the_deadline_back() -> None:
    clock = Clock()
    fence = Fence(30, 5, clock)
    fence.acknowledged(clock.now + 3)
    fence.acknowledged(clock.now + 1)
    assert fence.deadline() == clock.now + 3 + 20


def test_the_watchdog_calls_back_when_the_fence_trips() -> None:
    clock = Clock()
    fence = Fence(4, 1, clock)
    tripped: list[float] = []
    watchdog = Watchdog(fence, lambda: tripped.append(clock.now))
    watchdog.check()
    assert tripped == []
    clock.now += 3
    watchdog.check()
    watchdog.check()
    assert tripped == [clock.now]
