"""`queue list`, `queue pause`, `queue resume` as a user runs them (both stores): a
burst worker leaves a paused queue's jobs alone and ends; `status` names the paused
queues; resuming lets the next worker run them; bad names are exit 2."""

from __future__ import annotations

import json
from typing import Any, Callable

Cli = Callable[..., Any]


def _state(cli: Cli, job_id: str) -> str:
    return json.loads(cli("show", job_id, "--json").stdout)["state"]


def test_pause_list_status_resume(cli: Cli) -> None:
    cli("enqueue", "--id", "m1", "-q", "mail", "true")
    cli("enqueue", "--id", "d1", "true")
    result = cli("queue", "pause", "mail")
    assert (result.returncode, result.stdout) == (0, "mail: paused\n")
    result = cli("worker", "start", "--burst", timeout=60)
    assert result.returncode == 0, result.stderr
    assert (_state(cli, "d1"), _state(cli, "m1")) == ("completed", "pending")
    listed = cli("queue", "list").stdout.splitlines()
    assert listed[0].split()[:3] == ["QUEUE", "STATUS", "PENDING"]
    assert [line.split()[:3] for line in listed[1:]] == [["default", "active", "0"],
                                                         ["mail", "paused", "1"]]
    assert "Paused queues: mail" in cli("status").stdout
    assert json.loads(cli("status", "--json").stdout)["paused_queues"] == ["mail"]
    rows = json.loads(cli("queue", "list", "--json").stdout)
    assert [(r["name"], r["paused"], r["counts"]["pending"]) for r in rows] == \
        [("default", False, 0), ("mail", True, 1)]
    assert cli("queue", "resume", "--all").returncode == 0
    assert cli("worker", "start", "--burst", timeout=60).returncode == 0
    assert _state(cli, "m1") == "completed"


def test_bad_queue_commands_are_exit_2(cli: Cli) -> None:
    for args in (["queue", "pause"], ["queue", "pause", "no spaces"],
                 ["queue", "resume", "mail", "--all"]):
        result = cli(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert json.loads(cli("queue", "list", "--json").stdout) == []


def test_limit_shows_in_the_list_and_none_removes_it(cli: Cli) -> None:
    cli("enqueue", "--id", "r1", "-q", "reports", "true")
    result = cli("queue", "limit", "reports", "3")
    assert (result.returncode, result.stdout) == (0, "reports: at most 3 running at once\n")
    listed = cli("queue", "list").stdout.splitlines()
    limit_at = listed[0].split().index("LIMIT")
    assert [(line.split()[0], line.split()[limit_at]) for line in listed[1:]] == \
        [("reports", "3")]
    result = cli("--json", "queue", "limit", "reports", "none")
    assert json.loads(result.stdout) == {"queue": "reports", "limit": None}
    rows = json.loads(cli("queue", "list", "--json").stdout)
    assert [(r["name"], r["limit"], r["running"]) for r in rows] == [("reports", None, 0)]


def test_bad_limits_are_exit_2_and_change_nothing(cli: Cli) -> None:
    for args in (["queue", "limit", "reports"], ["queue", "limit", "reports", "-1"],
                 ["queue", "limit", "reports", "two"], ["queue", "limit", "a b", "2"],
                 ["queue", "limit", "reports", "99999999999"],
                 ["queue", "limit", "reports", "１"]):
        result = cli(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert json.loads(cli("queue", "list", "--json").stdout) == []


def test_queue_hook_sets_shows_and_clears(cli: Cli) -> None:
    result = cli("queue", "hook", "mail", "--on-dead", 'notify "$QUEUECTL_JOB_ID"')
    assert (result.returncode, result.stdout) == (
        0, 'mail on-dead: notify "$QUEUECTL_JOB_ID"\nmail on-complete: (global)\n')
    shown = json.loads(cli("queue", "hook", "mail", "--on-complete", "", "--json").stdout)
    assert shown == {"queue": "mail", "on_dead": 'notify "$QUEUECTL_JOB_ID"',
                     "on_complete": ""}
    row = cli("queue", "list").stdout.splitlines()[1]
    assert row.split()[0] == "mail" and row.endswith('dead: notify "$QUEUECTL_JOB_ID"; '
                                                     "complete: off")
    for args in (["queue", "hook", "mail"], ["queue", "hook", "mail", "--clear",
                                             "--on-dead", "x"],
                 ["queue", "hook", "no spaces", "--on-dead", "x"]):
        result = cli(*args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert cli("queue", "hook", "mail", "--clear").stdout == \
        "mail on-dead: (global)\nmail on-complete: (global)\n"
    assert json.loads(cli("hooks", "--json").stdout) == []
    assert cli("hooks").stdout == "No hook runs.\n"
    assert cli("hooks", "--job", "nope").returncode == 1
