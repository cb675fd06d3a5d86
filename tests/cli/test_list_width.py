"""The `list` table in an 80-column terminal: widths in display cells (CJK takes two),
the short columns never shrink, only COMMAND and then the id (cut in the middle) give
up room.  In-process on the renderer, and once on a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest
from rich.cells import cell_len

from queuectl.cli import render
from queuectl.models import Job
from queuectl.states import JobState
from tests.cli.test_commands import ok
from tests.conftest import read_terminal, run_cli

NOW = 1_700_000_000.0
DEFAULTS = {"max_retries": 3, "backoff_base": 2, "timeout": 0}
LONG_ID = "nightly-backup-of-the-production-database-2026"
CJK_ID = "夜間バックアップ本番データベースの二〇二六年版です"


def _job(job_id: str, command: str = "pg_dump production | gzip > /backups/db.sql.gz",
         state: JobState = JobState.PENDING) -> Job:
    return Job(id=job_id, command=command, state=state, created_at=NOW - 5,
               updated_at=NOW - 5, run_at=NOW - 5)


def _draw(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
          jobs: list[Job], columns: int = 80) -> list[str]:
    monkeypatch.setattr(render, "is_tty", lambda: True)
    monkeypatch.setenv("COLUMNS", str(columns))
    render.job_table(jobs, NOW, DEFAULTS)
    return [line.rstrip() for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("job_id", [LONG_ID, CJK_ID, LONG_ID + CJK_ID])
def test_short_columns_keep_their_width_in_80_columns(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        job_id: str) -> None:
    lines = _draw(monkeypatch, capsys, [_job(job_id), _job("short1", "echo hi")])
    assert all(cell_len(line) <= 80 for line in lines), [cell_len(x) for x in lines]
    assert lines[0].split() == render.JOB_HEADERS  # PRI and the others all there
    for line in lines[1:]:
        # every short cell whole: state, priority, attempts, queue, "5.0s ago"
        assert re.search(r"  pending  5    0/4       default  5\.0s ago  ", line), line
    cut = lines[1]
    shown_id = cut.split("  ")[0]
    assert "…" in shown_id and shown_id != job_id
    left, right = shown_id.split("…")
    assert job_id.startswith(left) and job_id.endswith(right) and left and right
    assert abs(cell_len(left) - cell_len(right)) <= 2  # cut in the middle
    assert "pg_dump" in cut  # the command keeps its start


def test_the_command_gives_up_room_before_the_id(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = "backup-of-the-db"  # fits once the command is cut
    lines = _draw(monkeypatch, capsys, [_job(job_id, "x" * 200)])
    assert lines[1].startswith(job_id + "  ") and "x…" in lines[1]
    assert cell_len(lines[1]) <= 80
    wide = _draw(monkeypatch, capsys, [_job(job_id, "echo hi")], columns=200)
    assert wide[1].startswith(job_id) and wide[1].endswith("echo hi")


def test_fit_widths_and_cuts() -> None:
    headers = [2, 5, 7]
    assert render.fit_widths(headers, [[30, 7, 40]], 200, 0) == [30, 7, 40]
    # 30 + 7 + 40 + 4 = 81: one cell off the last column only
    assert render.fit_widths(headers, [[30, 7, 40]], 80, 0) == [30, 7, 39]
    # the last column down to its floor, then the id down to its floor, then no more
    assert render.fit_widths(headers, [[30, 7, 40]], 40, 0) == [19, 7, 10]
    assert render.fit_widths(headers, [[30, 7, 40]], 10, 0) == [12, 7, 10]
    assert render.fit_widths(headers, [[30, 7, 40]], 10, None) == [30, 7, 10]
    assert render.cut_middle("abcdefghij", 5) == "ab…ij"
    assert render.cut_middle("日本語のテキスト", 7) == "日…スト"  # 2 + 1 + 4 cells
    assert cell_len(render.cut_middle("日本語のテキスト", 7)) <= 7
    assert render.cut_end("日本語のテキスト", 6) == "日本…"
    assert render.cut_end("short", 10) == "short" and render.cut_middle("id", 10) == "id"


def test_list_on_an_80_column_terminal(sqlite_url: str) -> None:
    """Drawing is store-independent: SQLite only."""
    ok(run_cli("enqueue", "--id", LONG_ID, "pg_dump production | gzip > /backups/db.sql.gz",
               db=sqlite_url))
    ok(run_cli("enqueue", "--id", CJK_ID, "echo 日本語のコマンドはとても長いので切られます",
               db=sqlite_url))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm"
    proc = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", sqlite_url, "list"],
                            stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(follower)
    try:
        raw = read_terminal(leader, proc, time.monotonic() + 30)
        proc.wait(timeout=30)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw.decode()).replace("\r\n", "\n")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    assert proc.returncode == 0
    assert lines[0].split() == render.JOB_HEADERS
    assert len(lines) == 3 and all(cell_len(line) <= 80 for line in lines)
    for line in lines[1:]:
        assert "  pending  5    0/4       default  " in line and "…" in line
