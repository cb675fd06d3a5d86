"""The store and the data dir are private to their owner; env values (often secrets)
are printed only when asked for (`show --env`)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Iterator

import pytest

from queuectl.paths import open_private
from tests.conftest import run_cli

SECRET = "s3cr3t-token-value"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the common default, under which files come out 0644
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_default_data_dir_and_store_files_are_private(umask_022: None, fresh_home: Path
                                                      ) -> None:
    result = run_cli("enqueue", "--command", "echo hi", "--env", f"TOKEN={SECRET}")
    assert result.returncode == 0, result.stderr
    data = fresh_home / ".local" / "share" / "queuectl"
    db = data / "queue.db"
    # a reader keeps the WAL and SHM files in place while their modes are checked
    reader = sqlite3.connect(db)
    try:
        reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
        assert _mode(data) == 0o700
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        reader.close()


def test_store_given_with_db_is_created_0600(umask_022: None, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "q.db"
    result = run_cli("enqueue", "echo hi", db=str(db))
    assert result.returncode == 0, result.stderr
    assert _mode(db) == 0o600


def test_existing_store_file_keeps_its_mode(umask_022: None, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    assert run_cli("enqueue", "echo hi", db=str(db)).returncode == 0
    os.chmod(db, 0o660)  # an owner who shares a store with a group on purpose
    assert run_cli("enqueue", "echo again", db=str(db)).returncode == 0
    assert _mode(db) == 0o660


def test_open_private_creates_0600_under_umask_022(umask_022: None, tmp_path: Path
                                                   ) -> None:
    path = tmp_path / "worker.log"
    with os.fdopen(open_private(str(path)), "ab") as handle:
        handle.write(b"line\n")
    assert _mode(path) == 0o600


def test_env_values_stay_out_of_list_and_tables(cli) -> None:  # type: ignore[no-untyped-def]
    added = cli("enqueue", "--id", "job1", "--command", "true", "--env", f"TOKEN={SECRET}",
                "--env", "MODE=fast", "--json")
    assert added.returncode == 0, added.stderr
    assert SECRET not in added.stdout
    listed = cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert SECRET not in listed.stdout
    assert json.loads(listed.stdout)[0]["env_names"] == ["MODE", "TOKEN"]
    assert "env" not in json.loads(listed.stdout)[0]
    for args in (("list",), ("show", "job1"), ("show", "job1", "--json")):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        assert SECRET not in result.stdout, args
        if args[0] == "show":
            assert "TOKEN" in result.stdout, args


def test_show_env_prints_values(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("enqueue", "--id", "job1", "--command", "true",
               "--env", f"TOKEN={SECRET}").returncode == 0
    plain = cli("show", "job1", "--env")
    assert plain.returncode == 0, plain.stderr
    assert f"TOKEN={SECRET}" in plain.stdout
    shown = cli("show", "job1", "--env", "--json")
    assert json.loads(shown.stdout)["env"] == {"TOKEN": SECRET}


def test_a_detached_workers_log_and_pid_files_are_private(umask_022: None,
                                                          tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    result = run_cli("--json", "worker", "start", "--detach", db=db)
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    try:
        log = Path(started["log"])
        pid_file = log.parent / "pids" / f"{started['pid']}.pid"
        assert _mode(log) == 0o600
        assert _mode(pid_file) == 0o600 and _mode(pid_file.parent) == 0o700
    finally:
        assert run_cli("worker", "stop", db=db).returncode == 0
