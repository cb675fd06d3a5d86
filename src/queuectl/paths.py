"""Where things live on disk: the default store, and the per-store runtime folder
(job output captures, detached worker pid and log files, wake-up sockets)."""

from __future__ import annotations

import os
import stat
import sys
import zlib

from queuectl.errors import WorkerError

APP = "queuectl"

PRIVATE_DIR_MODE = 0o700  # the data dir, runtime and wake-up folders: the owner only
PRIVATE_FILE_MODE = 0o600  # the store (SQLite gives -wal/-shm its mode), logs, pid files


def data_dir() -> str:
    """The user data dir, e.g. ~/.local/share/queuectl (QUEUECTL_HOME overrides)."""
    override = os.environ.get("QUEUECTL_HOME")
    if override:
        return os.path.abspath(os.path.expanduser(override))
    if sys.platform.startswith("linux"):
        # The XDG rule platformdirs applies on Linux, without its ~17 ms import.
        base = os.environ.get("XDG_DATA_HOME", "").strip() or os.path.expanduser(
            "~/.local/share")
        return os.path.join(base, APP)
    from platformdirs import user_data_dir

    return user_data_dir(APP, appauthor=False)


def default_store_url() -> str:
    return os.path.join(data_dir(), "queue.db")


def store_key(url: str) -> str:
    """A short stable name for a store, used to name its runtime folders."""
    return f"{zlib.crc32(url.encode('utf-8')):08x}"  # zlib: hashlib costs start-up time


def runtime_dir(url: str, sqlite_file: str | None) -> str:
    """Per-store folder for job logs and detached workers.

    Next to the database file for SQLite (`queue.db` -> `queue.db.d/`), in the data dir
    for PostgreSQL."""
    if sqlite_file:
        return sqlite_file + ".d"
    return os.path.join(data_dir(), "stores", store_key(url))


def wake_dir(url: str) -> str:
    """Folder of the wake-up sockets of a store's local workers.

    Kept short (Unix socket paths are limited to ~100 bytes) and private per user:
    `queuectl-UID/KEY` in $XDG_RUNTIME_DIR, else in $TMPDIR or /tmp, where another
    user may have created it first (see `make_wake_dir`, `unsafe_dir`).  A base whose
    socket paths would not fit is passed over for the next one."""
    for base in (os.environ.get("XDG_RUNTIME_DIR"), os.environ.get("TMPDIR"), "/tmp"):
        if base:
            folder = os.path.join(base, f"{APP}-{os.getuid()}", store_key(url))
            if len(os.fsencode(folder)) <= WAKE_DIR_MAX:
                return folder
    return folder


# The longest wake folder whose sockets (`/` + a 12-character worker id + `.sock`) still
# fit in a Unix socket address (107 bytes and a NUL on Linux).
WAKE_DIR_MAX = 107 - len("/0123456789ab.sock")


def unsafe_dir(path: str) -> str | None:
    """Why `path` is not a folder that only this user controls, or None.  A folder of
    this user that others may only read (`queuectl-UID` was made 0755 by older
    versions) is made 0700; one that others may write to is not: they may have put
    something in it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link, not a folder"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if st.st_uid != os.getuid():
        return f"belongs to another user (uid {st.st_uid}; you are uid {os.getuid()})"
    if st.st_mode & 0o022:
        return (f"has mode {stat.S_IMODE(st.st_mode):04o}: other users may write to it "
                f"(it must be {PRIVATE_DIR_MODE:04o})")
    if st.st_mode & 0o077:
        try:
            os.chmod(path, PRIVATE_DIR_MODE)
        except OSError as exc:
            return f"has mode {stat.S_IMODE(st.st_mode):04o} and cannot be made private " \
                   f"({exc.strerror})"
    return None


def make_wake_dir(url: str) -> str:
    """The wake folder of `url` and its per-user parent, created 0700 where missing and
    checked with `unsafe_dir`.  WorkerError, naming the folder and what to do, when
    one of them is not safe to use."""
    folder = wake_dir(url)
    for path in (os.path.dirname(folder), folder):
        try:
            os.mkdir(path, PRIVATE_DIR_MODE)
            os.chmod(path, PRIVATE_DIR_MODE)  # whatever the umask
        except FileExistsError:
            pass
        except OSError as exc:
            raise WorkerError(f"cannot create the wake-up folder {path}: {exc.strerror} "
                              "(set XDG_RUNTIME_DIR or TMPDIR to a folder of yours)") from exc
        problem = unsafe_dir(path)
        if problem is not None:
            raise WorkerError(f"refusing the wake-up folder {path}: it {problem}",
                              hint="remove it, or set XDG_RUNTIME_DIR to a private folder "
                                   "of yours")
    return folder


def open_private(path: str, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """`os.open` a file that only its owner may read: created 0600 whatever the
    umask.  Returns the descriptor (wrap it with `os.fdopen`)."""
    return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), PRIVATE_FILE_MODE)


def make_private_dir(path: str) -> None:
    """Create `path` (and missing parents) with the last one 0700."""
    os.makedirs(path, mode=PRIVATE_DIR_MODE, exist_ok=True)


def create_private_store(path: str) -> None:
    """Before SQLite first opens `path`: create the file empty and 0600, so that the
    database and its -wal/-shm files (SQLite gives them the main file's mode) are
    private; and keep the default data dir 0700.  An existing file is left as it is."""
    if os.path.exists(path):
        return
    parent = os.path.dirname(os.path.abspath(path))
    if parent == os.path.abspath(data_dir()):
        make_private_dir(parent)
        st = os.stat(parent)
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(parent, PRIVATE_DIR_MODE)  # made 0755 by an older queuectl
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass  # a concurrent first opening created it
