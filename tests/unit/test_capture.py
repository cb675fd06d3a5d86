"""In-memory output captures: a run's output lives in a memfd named after the job,
readable by other processes through the supervisor's descriptor table, and trimmed so
that a job printing without end holds a bounded amount of memory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from queuectl import capture
from queuectl.runner import Run
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(not capture.MEMFD, reason="no memfd_create here")


def _held(fd: int) -> int:
    """Bytes of memory a capture holds (released ranges excluded)."""
    return os.fstat(fd).st_blocks * 512


def test_output_is_captured_in_memory_without_a_file(tmp_path: Path) -> None:
    before = set(os.listdir(tmp_path))
    handle = Run("echo hello; echo oops >&2", capture_id="job-1")
    handle.start()
    outcome = handle.wait()
    assert outcome.ok and outcome.output_tail == "hello\noops\n"
    assert set(os.listdir(tmp_path)) == before


def test_live_capture_is_found_by_job_and_host(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    handle = Run(f"echo first; exec sleep 30 # {token}", capture_id="live-1", grace_s=0.2)
    handle.start()
    try:
        label = f"h1:{os.getpid()}/1"

        def read() -> bytes:
            found = capture.open_live(label, "live-1", "h1")
            if found is None:
                return b""
            with found:
                return found.read()

        wait_for(lambda: read() == b"first\n", timeout=5, message="live output")
        assert capture.open_live(label, "live-2", "h1") is None  # another job
        assert capture.open_live(label, "live-1", "h2") is None  # another host
        assert capture.open_live("h1:notapid/1", "live-1", "h1") is None
    finally:
        handle.kill()
        handle.wait()
    assert capture.open_live(f"h1:{os.getpid()}/1", "live-1", "h1") is None  # closed


def test_a_left_behind_process_does_not_write_into_the_next_run(tmp_path: Path) -> None:
    first = Run("(sleep 0.3; echo late) & echo first", capture_id="same")
    first.start()
    assert first.wait().output_tail == "first\n"
    second = Run("sleep 0.6; echo second", capture_id="same")
    second.start()
    assert second.wait().output_tail == "second\n"


def test_trim_releases_all_but_the_end_and_keeps_the_tail(tmp_path: Path) -> None:
    size = capture.KEEP_BYTES + capture.TRIM_AT_BYTES + (4 << 20)
    token = uuid.uuid4().hex
    handle = Run(f"head -c {size} /dev/zero | tr '\\0' a; echo END; exec sleep 30 # {token}",
                 capture_id="big", output_limit=100, grace_s=0.2)
    handle.start()
    try:
        fd = handle._out_fd
        wait_for(lambda: os.fstat(fd).st_size == size + 4, timeout=20, message="output")
        assert _held(fd) >= size
        assert handle.trim_output() == size + 4
        assert _held(fd) <= capture.KEEP_BYTES + 2 * 4096
        assert os.fstat(fd).st_size == size + 4  # offsets stay
        assert handle.trim_output() == 0  # nothing new, nothing more to release
        reader = capture.open_live(f"h:{os.getpid()}/1", "big", "h")
        assert reader is not None
        with reader:
            capture.skip_trimmed(reader)
            kept = reader.read()
        assert kept.endswith(b"aEND\n") and b"\0" not in kept
        assert capture.KEEP_BYTES <= len(kept) <= capture.KEEP_BYTES + 4096 + 4
    finally:
        handle.kill()
        outcome = handle.wait()
    assert outcome.output_tail == "a" * 96 + "END\n"


def test_output_under_the_threshold_is_kept_whole(tmp_path: Path) -> None:
    size = capture.KEEP_BYTES + capture.TRIM_AT_BYTES - 4096
    token = uuid.uuid4().hex
    handle = Run(f"head -c {size} /dev/zero | tr '\\0' b; exec sleep 30 # {token}",
                 capture_id="medium", grace_s=0.2)
    handle.start()
    try:
        fd = handle._out_fd
        wait_for(lambda: os.fstat(fd).st_size == size, timeout=20, message="output")
        assert handle.trim_output() == size
        assert _held(fd) >= size
    finally:
        handle.kill()
        handle.wait()
