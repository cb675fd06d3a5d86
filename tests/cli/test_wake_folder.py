"""The same-host wake-up folder without XDG_RUNTIME_DIR: `queuectl-UID` in $TMPDIR (or
/tmp), where another user may have made it first.  A worker creates it 0700 and refuses
one that is not a folder, not the user's, or writable by others (exit 1, one line
naming it); an enqueue never fails because of it, it only skips the wake-up."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import run_cli


@pytest.fixture
def tmpdir_base(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No XDG_RUNTIME_DIR, TMPDIR a fresh folder, umask 022."""
    base = short_dir / "tmp"
    base.mkdir()
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", str(base))
    old = os.umask(0o022)
    try:
        yield base
    finally:
        os.umask(old)


def user_folder(base: Path) -> Path:
    return base / f"queuectl-{os.getuid()}"


def refused(result: subprocess.CompletedProcess[str], path: Path, why: str) -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"queuectl: error: refusing the wake-up folder {path}: "), line
    assert why in line and "XDG_RUNTIME_DIR" in line, line


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_fallback_folder_is_created_0700(tmpdir_base: Path, sqlite_url: str) -> None:
    done = run_cli("worker", "start", "--burst", db=sqlite_url)
    assert done.returncode == 0, done.stderr
    folder = user_folder(tmpdir_base)
    stores = list(folder.iterdir())
    assert len(stores) == 1
    assert mode(folder) == 0o700 and mode(stores[0]) == 0o700


def test_a_folder_of_ours_that_others_may_only_read_is_made_private(
        tmpdir_base: Path, sqlite_url: str) -> None:
    folder = user_folder(tmpdir_base)
    folder.mkdir(mode=0o755)  # as older versions left it
    assert mode(folder) == 0o755
    assert run_cli("worker", "start", "--burst", db=sqlite_url).returncode == 0
    assert mode(folder) == 0o700


def test_a_file_in_its_place_is_refused(tmpdir_base: Path, store_url: str) -> None:
    folder = user_folder(tmpdir_base)
    folder.write_text("not a folder\n")
    refused(run_cli("worker", "start", "--burst", db=store_url), folder, "is not a folder")
    added = run_cli("enqueue", "--id", "job1", "true", db=store_url)  # the wake-up skipped
    assert added.returncode == 0 and added.stdout.strip() == "job1", added.stderr
    assert run_cli("enqueue", "echo quick lane", db=store_url).returncode == 0
    assert folder.read_text() == "not a folder\n"


@pytest.mark.parametrize("how", ["mode 0777", "another user"])
def test_a_folder_others_control_is_refused_and_not_sent_to(
        tmpdir_base: Path, sqlite_url: str, how: str) -> None:
    # the store's own folder inside it, with a socket that someone else listens on
    assert run_cli("migrate", db=sqlite_url).returncode == 0
    from queuectl.paths import wake_dir

    folder = user_folder(tmpdir_base)
    store_folder = Path(wake_dir(sqlite_url))
    assert store_folder.parent == folder
    store_folder.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(store_folder / "intruder.sock"))
    listener.setblocking(False)
    try:
        if how == "mode 0777":
            folder.chmod(0o777)
            why = "has mode 0777: other users may write to it"
        else:
            os.chown(folder, 65534, 65534)
            why = "belongs to another user (uid 65534"
        refused(run_cli("worker", "start", "--burst", db=sqlite_url), folder, why)
        for args in (["enqueue", "true"], ["enqueue", "--id", "j2", "true"]):
            added = run_cli(*args, db=sqlite_url)
            assert added.returncode == 0, added.stderr
        with pytest.raises(BlockingIOError):
            listener.recv(64)  # no wake-up went into a folder that is not ours alone
    finally:
        listener.close()


def test_a_base_too_long_for_a_socket_is_passed_over(tmp_path: Path, short_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      sqlite_url: str) -> None:
    """A runtime dir whose socket paths would not fit a Unix socket address gives way
    to TMPDIR (then /tmp): the worker starts and an enqueue wakes it."""
    from queuectl.paths import wake_dir

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    monkeypatch.setenv("TMPDIR", str(short_dir))
    folder = wake_dir(sqlite_url)
    assert folder.startswith(str(short_dir) + os.sep), folder
    path = os.path.join(folder, "0123456789ab.sock")
    os.makedirs(folder, mode=0o700)
    os.chmod(os.path.dirname(folder), 0o700)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)  # fits
    finally:
        sock.close()
    result = run_cli("enqueue", "true", db=sqlite_url)
    assert result.returncode == 0, result.stderr
    burst = run_cli("worker", "start", "--burst", db=sqlite_url, timeout=60)
    assert burst.returncode == 0, burst.stderr
