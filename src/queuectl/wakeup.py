"""Same-host wake-ups: how an idle worker hears of new work within a millisecond.

Each supervisor binds a Unix datagram socket in the store's wake folder; whoever
changes the queue (enqueue, retry, cancel, stop) sends one byte to every socket there.
A lost datagram costs nothing but latency: workers still poll slowly as a safety net.
PostgreSQL adds LISTEN/NOTIFY: the supervisor polls that connection's socket too.
"""

from __future__ import annotations

# `_socket`, not `socket`: the Python wrapper imports enum and costs an enqueue
# several milliseconds of start-up; the C socket object has all that is used here.
import _socket
import errno
import os

from queuectl.paths import make_wake_dir, unsafe_dir, wake_dir

WAKE = b"w"


def notify(url: str) -> int:
    """Wake every local supervisor of the store at `url`; returns how many were sent.
    A wake folder that is not safe to use (`paths.unsafe_dir`) is skipped: the job is
    stored all the same, and the workers' poll finds it."""
    folder = wake_dir(url)
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    if not names or unsafe_dir(os.path.dirname(folder)) or unsafe_dir(folder):
        return 0
    sent = 0
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        for name in names:
            if not name.endswith(".sock"):
                continue
            path = os.path.join(folder, name)
            try:
                sock.sendto(WAKE, path)
                sent += 1
            except BlockingIOError:
                sent += 1  # its buffer is full of wake-ups already: it is awake
            except OSError as exc:
                if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                    _remove_stale(path)
    finally:
        sock.close()
    return sent


def _remove_stale(path: str) -> None:
    """A socket nobody listens on belongs to a dead supervisor."""
    try:
        os.unlink(path)
    except OSError:
        pass


class Listener:
    """A supervisor's wake-up socket, polled by its loop (`fileno`, then `drain`)."""

    def __init__(self, url: str, name: str) -> None:
        folder = make_wake_dir(url)  # WorkerError when it is not safe to use
        self.path = os.path.join(folder, f"{name}.sock")
        _remove_stale(self.path)
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> None:
        while True:
            try:
                self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return

    def close(self) -> None:
        self._sock.close()
        _remove_stale(self.path)
