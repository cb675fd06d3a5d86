"""What a job or a user wrote never reaches the terminal as control characters:
tables and `show` draw them visibly, on a terminal (a pseudo-terminal here) and in
plain piped text; `logs` stays byte-exact in a pipe and `--raw` lets them through."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

import pytest

from tests.conftest import read_terminal, run_cli

EVIL = "\x1b]0;pwned\x07\x1b[2J"
# printf turns the octal escapes into the raw bytes when the job runs
EVIL_COMMAND = (": '" + EVIL + "'; "  # the command itself carries the raw bytes too
                r"printf '\033]0;pwned\007\033[2J'; printf 'line1\n\tline2\n'; false")


def _on_tty(db: str, *args: str, timeout: float = 30.0) -> str:
    """Run queuectl with stdout and stderr on a pseudo-terminal; return what it drew."""
    leader, follower = pty.openpty()
    env = dict(os.environ, COLUMNS="200", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "queuectl", "--db", db, *args],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env=env, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        chunks.append(read_terminal(leader, proc, deadline))
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, b"".join(chunks)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def evil_store(sqlite_url: str) -> str:
    """A store with a dead job whose command and output carry escape sequences
    (queue names are validated; ids and errors go through the same drawing)."""
    added = run_cli("enqueue", "--id", "job1", "--max-retries", "0",
                    "--command", EVIL_COMMAND, db=sqlite_url)
    assert added.returncode == 0, added.stderr
    ran = run_cli("worker", "start", "--count", "1", "--burst",
                  db=sqlite_url)
    assert ran.returncode == 0, ran.stderr
    import json

    shown = run_cli("show", "job1", "--json", db=sqlite_url)
    assert json.loads(shown.stdout)["output"].startswith(EVIL)  # JSON escapes it
    return sqlite_url


def _no_controls(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text, repr(text)


@pytest.mark.parametrize("args", [("show", "job1"), ("list",), ("dlq", "list")])
def test_job_text_is_drawn_visibly_on_a_terminal(evil_store: str, args: tuple[str, ...]
                                                 ) -> None:
    drawn = _on_tty(evil_store, *args)
    # rich styles the table itself with SGR sequences: those are queuectl's own
    assert "\x1b]" not in drawn and "\x1b[2J" not in drawn and "\x07" not in drawn, \
        repr(drawn)
    assert "^[" in drawn, repr(drawn)


@pytest.mark.parametrize("args", [("show", "job1"), ("list",), ("dlq", "list")])
def test_job_text_is_drawn_visibly_in_a_pipe(evil_store: str, args: tuple[str, ...]) -> None:
    result = run_cli(*args, db=evil_store)
    assert result.returncode == 0, result.stderr
    _no_controls(result.stdout)
    assert "^[]0;pwned^G^[[2J" in result.stdout


def test_show_keeps_newlines_and_tabs_of_the_output(evil_store: str) -> None:
    result = run_cli("show", "job1", db=evil_store)
    assert "line1\n\tline2" in result.stdout


def test_logs_in_a_pipe_is_byte_exact(evil_store: str) -> None:
    result = run_cli("logs", "job1", db=evil_store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(EVIL + "line1\n\tline2\n")


def test_logs_on_a_terminal_is_sanitised_unless_raw(evil_store: str) -> None:
    drawn = _on_tty(evil_store, "logs", "job1")
    _no_controls(drawn)
    assert "^[]0;pwned^G^[[2J" in drawn and "line2" in drawn
    raw = _on_tty(evil_store, "logs", "job1", "--raw")
    assert EVIL in raw


def test_unit_visible() -> None:
    from queuectl.cli.render import visible

    assert visible(EVIL) == "^[]0;pwned^G^[[2J"
    assert visible("a\nb\tc") == "a^Jb^Ic"
    assert visible("a\r\nb\tc\rd\x9b", multiline=True) == "a\nb\tc^Md\\x9b"
    assert visible("héllo ✓") == "héllo ✓"


