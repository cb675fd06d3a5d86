"""The interactive shell, driven through a real pseudo-terminal (pexpect): what a user
types at `queuectl>` and what they see.  Every expect has a deadline; a test waits for
a command's output before it types the next line, never for a fixed time."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pexpect
import pytest

from tests.conftest import run_cli, wait_for

PROMPT = "queuectl>"  # prompt_toolkit draws the trailing space as a cursor move
TIMEOUT_S = 15  # the machine is slow and shared

Spawn = Callable[..., pexpect.spawn]


@pytest.fixture
def spawn(fresh_home: Path) -> Iterator[Spawn]:
    """Start `python -m queuectl ARGS` on a pty (the same HOME for every spawn of a
    test, so two sessions share their history)."""
    children: list[pexpect.spawn] = []

    def start(*args: str) -> pexpect.spawn:
        env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1",
                   XDG_STATE_HOME=str(fresh_home / ".local" / "state"))
        child = pexpect.spawn(sys.executable, ["-m", "queuectl", *args], env=env,
                              encoding="utf-8", timeout=TIMEOUT_S, dimensions=(40, 150))
        children.append(child)
        return child

    yield start
    for child in children:
        if child.isalive():
            child.terminate(force=True)


def at_prompt(child: pexpect.spawn, line: str, *expected: str) -> str:
    """Type `line`, wait for each of `expected` in order, then for the next prompt;
    returns what the command printed after the last expected text."""
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(PROMPT)
    return child.before


def leave(child: pexpect.spawn, word: str = "exit") -> int:
    child.sendline(word)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


# -- a command at the prompt --------------------------------------------------------
def test_command_at_prompt_prints_its_output(spawn: Spawn, store_url: str) -> None:
    child = spawn("--db", store_url, "shell")
    child.expect_exact(PROMPT)
    at_prompt(child, """enqueue '{"id":"job1","command":"echo hi there"}'""", "job1")
    at_prompt(child, "show job1", "Command:", "echo hi there", "pending")
    at_prompt(child, "status", "pending", "total")
    assert leave(child) == 0


def test_error_line_returns_to_the_prompt(spawn: Spawn, sqlite_url: str) -> None:
    child = spawn("--db", sqlite_url, "shell")
    child.expect_exact(PROMPT)
    at_prompt(child, "show nope", "queuectl: error: no job 'nope'")
    at_prompt(child, "list --bogus", "queuectl: error: No such option '--bogus'")
    at_prompt(child, "frobnicate", "queuectl: error: No such command")
    at_prompt(child, 'enqueue "unclosed', "queuectl: error: cannot split the line")
    at_prompt(child, "config set max-retries lots", "queuectl: error:")
    at_prompt(child, "shell", "queuectl: error: already in the shell")
    at_prompt(child, "enqueue --id still-alive true", "still-alive")
    assert leave(child, "quit") == 0
    assert "Traceback" not in child.before


def test_ctrl_c_drops_the_line_and_ctrl_d_leaves(spawn: Spawn, sqlite_url: str) -> None:
    child = spawn("--db", sqlite_url, "shell")
    child.expect_exact(PROMPT)
    child.send("list --sta")
    child.sendcontrol("c")
    child.expect_exact(PROMPT)
    out = at_prompt(child, "time", "UTC:")
    assert "aborted" not in out
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_help_at_the_prompt(spawn: Spawn, sqlite_url: str) -> None:
    child = spawn("--db", sqlite_url, "shell")
    child.expect_exact(PROMPT)
    at_prompt(child, "help", "Jobs commands", "exit (or Ctrl-D)")
    at_prompt(child, "help show", "Usage: queuectl show")
    at_prompt(child, "dlq --help", "Usage: queuectl dlq")
    assert leave(child) == 0


def test_db_and_json_given_to_shell_apply_to_every_line(sqlite_url: str) -> None:
    done = run_cli("--json", "shell", "-c", "enqueue --id j1 true", "-c", "status",
                   "-c", "config get max-retries", db=sqlite_url)
    assert done.returncode == 0, done.stderr
    decoder = json.JSONDecoder()
    objects, text = [], done.stdout.strip()
    while text:
        obj, end = decoder.raw_decode(text)
        objects.append(obj)
        text = text[end:].strip()
    assert objects[0]["id"] == "j1"
    assert objects[1]["counts"]["pending"] == 1
    assert objects[2] == {"key": "max-retries", "value": 3, "source": "default"}


def test_lines_share_one_open_store(sqlite_url: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from queuectl.cli.context import CliState
    from queuectl.cli.shell import run_line

    home = CliState(db=sqlite_url)
    try:
        assert run_line(home, "enqueue --id a true") == 0
        first = home.queue().backend
        assert run_line(home, "show a") == 0
        assert run_line(home, "list") == 0
        assert home.queue().backend is first  # not closed and reopened per line
        assert run_line(home, f"--db {sqlite_url}.other enqueue --id b true") == 0
        assert home.queue().backend is first  # another --db on one line only
    finally:
        home.close()
    assert "a" in capsys.readouterr().out


def test_script_on_stdin_runs_each_line(sqlite_url: str) -> None:
    done = run_cli("shell", input="enqueue --id s1 true\n\n# a comment\nshow nope\n",
                   db=sqlite_url)
    assert done.returncode == 1  # the last line's code
    assert done.stdout.strip() == "s1"
    assert done.stderr.strip() == "queuectl: error: no job 'nope'"



# -- completion and history ---------------------------------------------------------
def test_tab_completes_ids_states_and_commands(spawn: Spawn, sqlite_url: str) -> None:
    for job_id in ("alpha-one", "alpha-two", "beta-1"):
        assert run_cli("enqueue", "--id", job_id, "true", db=sqlite_url).returncode == 0
    child = spawn("--db", sqlite_url, "shell")
    child.expect_exact(PROMPT)
    child.send("show alp\t")  # two ids match: the common part is completed,
    child.expect_exact("alpha-")
    child.send("\t")  # then a second Tab lists both
    child.expect_exact("alpha-one")
    child.expect_exact("alpha-two")
    child.send("\x15")  # Ctrl-U: drop the line
    child.send("show bet\t")  # one matches: completed in the line
    child.expect_exact("beta-1")
    at_prompt(child, "", "Command:", "true")
    child.send("list --state p\t")
    child.expect_exact("pending")
    child.expect_exact("processing")
    child.send("\x15")
    child.send("config get backoff-b\t")
    child.expect_exact("backoff-base")
    at_prompt(child, "", "2")
    child.send("dlq re\t")
    child.expect_exact("retry")
    child.send("\x15")
    assert leave(child) == 0


def test_history_is_kept_across_sessions(spawn: Spawn, sqlite_url: str,
                                         fresh_home: Path) -> None:
    first = spawn("--db", sqlite_url, "shell")
    first.expect_exact(PROMPT)
    at_prompt(first, "enqueue --id remembered true", "remembered")
    at_prompt(first, "time", "UTC:")
    assert leave(first) == 0
    folder = fresh_home / ".local" / "state" / "queuectl"
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert ((folder / "history").stat().st_mode & 0o777) == 0o600

    second = spawn("--db", sqlite_url, "shell")
    second.expect_exact(PROMPT)
    second.send("\x1b[A")  # Up: the first session's last line
    second.expect_exact("exit")
    second.send("\x1b[A")
    second.expect_exact("time")
    second.send("\x1b[A")  # and the one before
    second.expect_exact("enqueue --id remembered true")
    second.sendline("")
    second.expect_exact("already exists")  # it ran again: a duplicate id
    second.expect_exact(PROMPT)
    second.send("enq")  # suggested from history; Right arrow accepts it
    second.expect_exact("ueue --id remembered true")
    second.send("\x1b[C")
    second.sendline("")
    second.expect_exact("already exists")
    second.expect_exact(PROMPT)
    assert leave(second) == 0


def test_completion_ids_are_bounded_and_by_prefix(store_url: str) -> None:
    from queuectl.models import NewJob
    from queuectl.queue import Queue

    with Queue(store_url) as q:
        q.enqueue([NewJob(command="true", id=f"job-{i:03d}") for i in range(30)]
                  + [NewJob(command="true", id="other", queue="night")])
        assert q.complete_ids("job-00") == [f"job-00{i}" for i in range(10)]
        assert len(q.complete_ids("job-")) == 20  # bounded
        assert q.complete_ids("")[0] == "other"  # the newest first
        assert q.complete_ids("zzz") == []
        assert q.queue_names() == ["default", "night"]


# -- S3's unquoted forms ------------------------------------------------------------
@pytest.mark.parametrize("line, words", [
    ('enqueue {"id":"test","command":"echo hello"}',
     ["enqueue", '{"id":"test","command":"echo hello"}']),
    ("""add {"command": "echo 'a  b'", "priority": 8} --queue night""",
     ["add", """{"command": "echo 'a  b'", "priority": 8}""", "--queue", "night"]),
    ('--json enqueue {"command":"x"}', ["--json", "enqueue", '{"command":"x"}']),
    ('enqueue {"command": broken', ["enqueue", '{"command": broken']),
    ("enqueue '{\"command\":\"quoted\"}'", ["enqueue", '{"command":"quoted"}']),
    ('schedule "backup database" "+1h"', ["schedule", "backup database", "+1h"]),
    ('show {abc}', ["show", "{abc}"]),
])
def test_split_line(line: str, words: list[str]) -> None:
    from queuectl.cli.shell import split_line

    assert split_line(line) == words


def test_unquoted_enqueue_and_schedule_at_the_prompt(spawn: Spawn, sqlite_url: str) -> None:
    child = spawn("--db", sqlite_url, "shell")
    child.expect_exact(PROMPT)
    at_prompt(child, 'enqueue {"id":"test","command":"echo hello   world"}', "test")
    at_prompt(child, """enqueue {"id":"t2","command":"echo 'it is'"} --priority 8""", "t2")
    at_prompt(child, 'schedule "backup database" "+1h"', "\n")
    assert leave(child) == 0
    listing = json.loads(run_cli("--json", "list", db=sqlite_url).stdout)
    by_command = {job["command"]: job for job in listing}
    assert by_command["echo hello   world"]["id"] == "test"
    assert by_command["echo 'it is'"]["priority"] == 8
    assert by_command["backup database"]["state"] == "scheduled"


# -- workers from the prompt --------------------------------------------------------
def _job_state(db: str, job_id: str) -> str:
    done = run_cli("--json", "show", job_id, db=db)
    return json.loads(done.stdout)["state"] if done.returncode == 0 else ""


def _live_workers(db: str) -> list[dict]:
    return json.loads(run_cli("--json", "workers", db=db).stdout)["workers"]


def test_worker_start_at_the_prompt_runs_in_the_background(spawn: Spawn,
                                                           sqlite_url: str) -> None:
    child = spawn("--db", sqlite_url, "shell")
    child.expect_exact(PROMPT)
    at_prompt(child, "worker start --count 2", "runs in the background",
              "Worker started in the background")
    try:
        at_prompt(child, 'enqueue {"id":"bg","command":"echo from the background"}', "bg")
        wait_for(lambda: _job_state(sqlite_url, "bg") == "completed", timeout=TIMEOUT_S,
                 message="the background worker to run the job")
        at_prompt(child, "logs bg", "from the background")
        at_prompt(child, "worker status", "2")
        at_prompt(child, "worker stop", "Asked 2 workers (1 process) to stop")
        wait_for(lambda: not _live_workers(sqlite_url), timeout=TIMEOUT_S,
                 message="the worker to exit")
        at_prompt(child, "scheduler start --workers 1", "Worker started in the background")
        at_prompt(child, "scheduler stop", "Asked 1 worker (1 process) to stop")
        assert not _live_workers(sqlite_url)  # scheduler stop waits for the exit
    finally:
        run_cli("worker", "stop", "--now", "--wait", db=sqlite_url)
    assert leave(child) == 0


# -- shell -c and plain queuectl ----------------------------------------------------
@pytest.mark.parametrize("lines, code", [
    (["show nope"], 1),
    (["status; show nope; time"], 0),
    (["time", "config get no-such-key"], 2),
    (["enqueue --id c1 true; show c1", "exit", "show nope"], 0),
    (['enqueue {"id":"semi","command":"echo a; echo b"}; show semi'], 0),
])
def test_shell_c_exits_with_the_last_lines_code(sqlite_url: str, lines: list[str],
                                                code: int) -> None:
    args = [arg for line in lines for arg in ("-c", line)]
    done = run_cli("shell", *args, db=sqlite_url)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr


def test_semicolons_inside_json_stay_in_the_command(sqlite_url: str) -> None:
    done = run_cli("shell", "-c", 'enqueue {"id":"semi","command":"echo a; echo b"}',
                   db=sqlite_url)
    assert done.returncode == 0, done.stderr
    shown = json.loads(run_cli("--json", "show", "semi", db=sqlite_url).stdout)
    assert shown["command"] == "echo a; echo b"


def test_plain_queuectl_on_a_terminal_shows_the_banner(spawn: Spawn, sqlite_url: str) -> None:
    from queuectl import __version__

    child = spawn("--db", sqlite_url)
    child.expect_exact("█████")  # the block letters
    child.expect_exact(f"queuectl {__version__}")
    child.expect_exact("Tab completes")
    child.expect_exact(PROMPT)
    at_prompt(child, "status", "total")
    assert leave(child) == 0


def test_plain_queuectl_off_a_terminal_prints_help(sqlite_url: str) -> None:
    done = run_cli(db=sqlite_url)  # stdin and stdout are pipes
    assert done.returncode == 0 and "Usage: queuectl" in done.stdout
    # stdin a terminal, stdout a pipe: help too, not a prompt nobody sees
    piped = pexpect.spawn("/bin/sh", ["-c", f'"{sys.executable}" -m queuectl | cat'],
                          encoding="utf-8", timeout=TIMEOUT_S)
    piped.expect_exact("Usage: queuectl")
    piped.expect(pexpect.EOF)
    piped.close()
    assert piped.exitstatus == 0
