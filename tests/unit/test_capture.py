"""In-memory output captures: a run's output lives in a memfd named after the job,
readable by other processes through the supervisor's descriptor table, and trimmed so
that a job printing without end holds a bounded amount of memory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from queuectl.worker import capture
from queuectl.worker.runner import Run
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
            kept = capture.read_live(reader)
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


def test_capture_names_of_different_ids_never_collide() -> None:
    odd = "ünï/cøde"
    hashed = capture.capture_name(odd)
    assert hashed != odd and "/" not in hashed
    assert capture.capture_name(hashed.lstrip("~")) != hashed  # a job named like the hash
    assert capture.capture_name("plain-id_1.2") == "plain-id_1.2"


def test_read_live_returns_at_most_the_limit_and_no_released_bytes() -> None:
    fd = os.memfd_create("test", os.MFD_CLOEXEC)
    size = capture.KEEP_BYTES + capture.TRIM_AT_BYTES + (3 << 20)
    os.ftruncate(fd, size)  # a sparse file: nothing held yet
    os.pwrite(fd, b"x" * (2 << 20), size - (2 << 20))
    with os.fdopen(fd, "rb") as handle:
        assert capture.read_live(handle) == b"x" * (2 << 20)  # the hole is skipped
        assert capture.read_live(handle, limit=10) == b"x" * 10


def test_follower_decodes_characters_split_across_reads() -> None:
    fd = os.memfd_create("test", os.MFD_CLOEXEC)  # the job's end; the reader has its own
    follower = capture.Follower(open(f"/proc/self/fd/{fd}", "rb"))
    os.write(fd, "a\u00e9".encode()[:-1])  # 'a' and the first byte of 'é'
    assert follower.read() == ("a", 0, False)
    os.write(fd, "\u00e9x\n".encode()[-3:])
    assert follower.read() == ("\u00e9x\n", 0, False)
    assert follower.close() == ""
    os.close(fd)


def test_follower_skips_and_reports_output_released_before_it_was_read() -> None:
    mib = 1 << 20
    fd = os.memfd_create("test", os.MFD_CLOEXEC)
    os.write(fd, b"z" * (3 * mib) + b"end")
    follower = capture.Follower(open(f"/proc/self/fd/{fd}", "rb"))
    assert follower.read() == ("z" * mib, 0, True)
    assert capture._punch_hole(fd, 0, 2 * mib)  # what trim does to a prefix
    assert follower.read() == ("z" * mib, mib, True)  # 1 MiB was never read
    assert follower.read() == ("end", 0, False)
    follower.close()
    os.close(fd)


def test_follower_reads_in_bounded_chunks() -> None:
    fd = os.memfd_create("test", os.MFD_CLOEXEC)
    os.write(fd, b"y" * (capture.Follower.CHUNK + 5))
    follower = capture.Follower(open(f"/proc/self/fd/{fd}", "rb"))
    text, skipped, more = follower.read()
    assert len(text) == capture.Follower.CHUNK and more and not skipped
    assert follower.read() == ("y" * 5, 0, False)
    follower.close()
    os.close(fd)


def test_a_trim_copies_to_the_kept_file_first(tmp_path: Path) -> None:
    """With output-file-max, what a trim releases from memory is in the file first;
    past the cap the capture is trimmed as without one."""
    size = capture.KEEP_BYTES + capture.TRIM_AT_BYTES + (4 << 20)
    token = uuid.uuid4().hex
    kept = tmp_path / "kept.log"
    handle = Run(f"head -c {size} /dev/zero | tr '\\0' k; echo END; exec sleep 30 # {token}",
                 capture_id="kept", output_limit=100, grace_s=0.2, keep_path=str(kept),
                 keep_max=size + 4)
    handle.start()
    try:
        fd = handle._out_fd
        wait_for(lambda: os.fstat(fd).st_size == size + 4, timeout=20, message="output")
        handle.trim_output()
        assert _held(fd) <= capture.KEEP_BYTES + 2 * 4096  # released: it is on disk
        assert kept.stat().st_size == size + 4
    finally:
        handle.kill()
        outcome = handle.wait()
    data = kept.read_bytes()
    assert data[:5] == b"kkkkk" and data.endswith(b"kEND\n") and b"\0" not in data
    assert outcome.output_file == str(kept) and outcome.output_bytes == size + 4
    read_fd = os.open(kept, os.O_RDONLY)
    try:  # nothing at or after not_past is released
        assert capture.trim(read_fd, 0, 100, not_past=0) == (size + 4, 0)
    finally:
        os.close(read_fd)
