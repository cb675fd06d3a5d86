"""Where a running job's output goes: an anonymous in-memory file (a memfd) named after
the job, read back by the supervisor when the job ends.

Creating and unlinking a named file on disk for every job cost a busy supervisor's loop
a tenth of its time (ext4 inode allocation, 20-100 us a job); a memfd costs 8 us, needs
no clean-up after a crash, and its name is unique to the job, so a background process
that a job leaves behind can never write into the next job's output.

Other processes on the host (`queuectl logs`, `logs -f`) open a running job's capture
through the supervisor's descriptor table: `/proc/<supervisor pid>/fd/<n>`, found by the
capture's name.  Without memfd (not Linux) a named file in the store's runtime folder is
used instead, as `Queue.job_log_path` says.

Memory is bounded: a supervisor checks the captures of its running jobs ten times a
second (fifty while one grows fast) and trims one that holds more than 9 MiB to its last
`KEEP_BYTES` (`trim`: a hole is punched, offsets stay); readers skip released bytes.
"""

from __future__ import annotations

import os
import re
from typing import Any, BinaryIO, Optional

MEMFD = hasattr(os, "memfd_create")
KEEP_BYTES = 1 << 20  # what a trimmed capture keeps before its end (at least)
TRIM_AT_BYTES = 8 << 20  # trimmed once this much more than KEEP_BYTES is held
_PAGE = 4096
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def capture_name(job_id: str) -> str:
    """The name of a job's capture (file name or memfd name): the id itself when it
    is safe as a file name, else `~` and its SHA-1 (`~` is never in a safe id, so no
    two jobs share a name)."""
    if _SAFE.match(job_id):
        return job_id
    import hashlib

    return "~" + hashlib.sha1(job_id.encode()).hexdigest()


def open_memfd(job_id: str) -> int:
    """A new, empty in-memory capture for a run of `job_id` (close-on-exec)."""
    return os.memfd_create(f"queuectl:{capture_name(job_id)}", os.MFD_CLOEXEC)


def worker_pid(worker_label: Optional[str], host: str) -> Optional[int]:
    """The pid of the supervisor named in a job's `worker_label` (host:pid/slot) when
    it runs on `host`; None for another host's."""
    label_host, _, rest = (worker_label or "").rpartition(":")
    pid = rest.split("/", 1)[0]
    return int(pid) if label_host == host and pid.isdigit() else None


def open_live(worker_label: Optional[str], job_id: str, host: str) -> Optional[BinaryIO]:
    """Open the in-memory capture of `job_id` held by the supervisor named in
    `worker_label` (host:pid/slot), when that supervisor runs on `host`; None when it
    is not (or no longer) there."""
    pid = worker_pid(worker_label, host)
    if not MEMFD or pid is None:
        return None
    folder = f"/proc/{pid}/fd"
    wanted = f"/memfd:queuectl:{capture_name(job_id)} (deleted)"
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    for entry in entries:
        try:
            if os.readlink(f"{folder}/{entry}") == wanted:
                return open(f"{folder}/{entry}", "rb")
        except OSError:
            continue
    return None


def _data_start(fd: int, offset: int) -> int:
    """The first offset at or after `offset` that still holds output (released ranges
    read as NUL bytes); `offset` itself at the end or where SEEK_DATA is missing."""
    try:
        return os.lseek(fd, offset, os.SEEK_DATA)
    except (OSError, AttributeError):
        return offset


def read_range(fd: int, start: int, size: int, limit: int) -> tuple[int, bytes]:
    """At most `limit` bytes of the output still held from `start` on (a capture of
    `size` bytes): (offset of the first byte returned, bytes).  What `trim` released
    before or while it was read is left out."""
    start = min(max(start, _data_start(fd, start)), size)
    data = os.pread(fd, min(limit, size - start), start) if size > start else b""
    held = min(_data_start(fd, start), start + len(data))
    if held > start:  # released while being read: those bytes may have read as NULs
        data = data[held - start:]
        start = held
    return start, data


def read_live(handle: BinaryIO, limit: int = KEEP_BYTES + TRIM_AT_BYTES) -> bytes:
    """A live capture's output as it is now: its last `limit` bytes at most (no more
    than a trimmed capture holds), however fast the job keeps printing."""
    fd = handle.fileno()
    size = os.fstat(fd).st_size
    return read_range(fd, max(0, size - limit), size, limit)[1]


class Follower:
    """Reads a live capture incrementally (`logs -f`): bounded reads, text decoded
    across reads, and the bytes it had to skip (released before they were read)."""

    CHUNK = 1 << 20

    def __init__(self, handle: BinaryIO) -> None:
        import codecs

        self.handle = handle
        self.offset = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read(self) -> tuple[str, int, bool]:
        """(text, bytes skipped, whether more is waiting) from where the last read
        ended, at most CHUNK bytes."""
        fd = self.handle.fileno()
        size = os.fstat(fd).st_size
        start, data = read_range(fd, self.offset, size, self.CHUNK)
        skipped = start - self.offset
        if skipped:
            self._decoder.reset()  # a character cut by the gap is not completed
        self.offset = start + len(data)
        return self._decoder.decode(data), skipped, self.offset < size

    def close(self) -> str:
        """What an unfinished character left pending; the handle is closed."""
        self.handle.close()
        return self._decoder.decode(b"", final=True)


def trim(fd: int, trimmed_to: int, keep: int = KEEP_BYTES,
         not_past: Optional[int] = None) -> tuple[int, int]:
    """Release what a capture holds before its last `keep` bytes once it holds more
    than `keep` + TRIM_AT_BYTES, and nothing at or after `not_past` (bytes not yet
    copied elsewhere).  Returns (size, new start of the kept output); the file's size
    does not change, so readers and the final tail keep their offsets."""
    size = os.fstat(fd).st_size
    if size - trimmed_to <= keep + TRIM_AT_BYTES:
        return size, trimmed_to
    end = (min(size - keep, size if not_past is None else not_past)) // _PAGE * _PAGE
    if end > trimmed_to and _punch_hole(fd, trimmed_to, end - trimmed_to):
        return size, end
    return size, trimmed_to


_FALLOCATE: Any = None  # libc's fallocate, loaded on first use; False where there is none


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    global _FALLOCATE
    if _FALLOCATE is None:
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _FALLOCATE = libc.fallocate
            _FALLOCATE.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                                   ctypes.c_int64]
            _FALLOCATE.restype = ctypes.c_int
        except (OSError, AttributeError):
            _FALLOCATE = False
    if not _FALLOCATE:
        return False
    punch_hole_keep_size = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
    return _FALLOCATE(fd, punch_hole_keep_size, offset, length) == 0
