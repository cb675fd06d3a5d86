"""Publishing running jobs' output (queuectl.worker.outputpub) on a fake clock, over real
in-memory captures."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from queuectl.worker import outputpub as pub


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def capture_fd() -> Iterator[int]:
    fd = os.memfd_create("queuectl:test")
    yield fd
    os.close(fd)


def test_a_short_run_publishes_nothing(capture_fd: int) -> None:
    clock = Clock()
    publisher = pub.OutputPublisher(clock)
    publisher.track("slot1", "tiny", 1, capture_fd)
    os.write(capture_fd, b"hello\n")
    clock.now += pub.PUBLISH_EVERY_S
    assert publisher.collect() == ([], [])
    assert publisher.finish("slot1") == []
    assert publisher.next_at() is None  # nothing left to do: no timer


def test_a_long_run_publishes_new_output_then_its_end(capture_fd: int) -> None:
    clock = Clock()
    publisher = pub.OutputPublisher(clock)
    publisher.track("slot1", "long", 2, capture_fd)
    os.write(capture_fd, b"first\n")
    clock.now += pub.PUBLISH_AFTER_S
    assert publisher.collect() == ([("long", 2, 0, b"first\n")], [])
    assert publisher.collect() == ([], [])  # nothing new
    os.write(capture_fd, b"second\n")
    clock.now += pub.PUBLISH_EVERY_S
    assert publisher.collect() == ([("long", 2, 6, b"second\n")], [])
    os.write(capture_fd, b"last\n")
    assert publisher.finish("slot1") == [("long", 2, 13, b"last\n")]
    # the run's chunks stay for slow followers, then go
    clock.now += pub.FOLLOW_GRACE_S - 1
    assert publisher.collect() == ([], [])
    clock.now += 1
    assert publisher.collect() == ([], [("long", 2, None)])
    assert publisher.next_at() is None


def test_a_flood_is_published_from_its_end_and_old_chunks_dropped(capture_fd: int) -> None:
    clock = Clock()
    publisher = pub.OutputPublisher(clock)
    publisher.track("s", "flood", 1, capture_fd)
    clock.now += pub.PUBLISH_AFTER_S
    total = 0
    for _ in range(6):
        os.write(capture_fd, b"x" * pub.MAX_CHUNK_BYTES * 2)
        total += pub.MAX_CHUNK_BYTES * 2
        chunks, drops = publisher.collect()
        (job_id, attempt, offset, data), = chunks
        assert len(data) == pub.MAX_CHUNK_BYTES and offset + len(data) == total
        for _job, _attempt, before in drops:
            assert before is not None and before == total - pub.KEEP_BYTES
        clock.now += pub.PUBLISH_EVERY_S
    assert publisher.finish("s") == []  # all of it was published (or skipped)
