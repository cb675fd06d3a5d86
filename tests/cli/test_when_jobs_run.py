"""Dependencies from the command line, as a user tries them (both stores): the three
flags, JSON `depends_on`, `enqueue --file` naming earlier lines, bad references
(exit 2, nothing stored), `show`/`list` saying what a job waits for and why it is
blocked, `cancel --with-dependants`, and a real worker running a small graph in an
allowed order; the priority-aging columns of `list` and `show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from tests.conftest import wait_for

Cli = Callable[..., Any]


def _state(cli: Cli, job_id: str) -> str:
    result = cli("show", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["state"]


def test_flags_show_and_list(cli: Cli) -> None:
    assert cli("enqueue", "--id", "build", "true").returncode == 0
    assert cli("enqueue", "--id", "test", "--after", "bui", "true").returncode == 2  # short
    assert cli("enqueue", "--id", "test", "--after", "build", "true").returncode == 0
    assert cli("enqueue", "--id", "notify", "--after-any", "test", "--after-failure",
               "build", "true").returncode == 0
    shown = json.loads(cli("show", "notify", "--json").stdout)
    assert shown["state"] == "waiting"
    assert shown["depends_on"] == ["test", "build"]
    assert shown["dependencies"] == [{"id": "build", "on": "failure", "state": "pending"},
                                     {"id": "test", "on": "any", "state": "waiting"}]
    text = cli("show", "build").stdout
    assert "Dependants:   notify (waiting; --after-failure), test (waiting; --after)" in text
    listed = cli("list", "--state", "waiting").stdout.splitlines()
    assert listed[0].split()[:2] == ["ID", "STATE"]
    assert [line.split()[0] for line in listed[1:]] == ["notify", "test"]
    assert "after test,build" in listed[1]


def test_unknown_dependency_is_exit_2_and_stores_nothing(cli: Cli) -> None:
    result = cli("enqueue", "--id", "x", "--after", "ghost", "true")
    assert result.returncode == 2
    assert result.stderr.strip() == ("queuectl: error: job 'x' depends on 'ghost', which "
                                     "does not exist; nothing was enqueued")
    result = cli("enqueue", '{"id": "y", "command": "true", "depends_on": [{"id": "y"}]}')
    assert result.returncode == 2 and "cannot depend on itself" in result.stderr
    result = cli("enqueue", '{"command": "true", "depends_on": [{"id": "a", "on": "ok?"}]}')
    assert result.returncode == 2 and "unknown dependency condition 'ok?'" in result.stderr
    assert json.loads(cli("list", "--json").stdout) == []


def test_a_file_names_earlier_lines_and_a_bad_line_stores_nothing(cli: Cli,
                                                                 tmp_path: Path) -> None:
    good = tmp_path / "graph.jsonl"
    good.write_text('{"id": "fetch", "command": "true"}\n'
                    '{"id": "parse", "command": "true", "after": "fetch"}\n'
                    '{"id": "report", "command": "true", '
                    '"depends_on": [{"id": "parse", "on": "any"}]}\n')
    result = cli("enqueue", "--file", str(good))
    assert result.returncode == 0, result.stderr
    assert [_state(cli, i) for i in ("fetch", "parse", "report")] == \
        ["pending", "waiting", "waiting"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "one", "command": "true"}\n'
                   '{"id": "two", "command": "true", "after": "three"}\n'
                   '{"id": "three", "command": "true"}\n')
    result = cli("enqueue", "--file", str(bad))
    assert result.returncode == 2 and "'three', which does not exist" in result.stderr
    assert cli("show", "one").returncode == 1  # not found: nothing of the file stored


def test_blocked_is_explained_and_cancel_with_dependants(cli: Cli) -> None:
    cli("config", "set", "max-retries", "0")
    cli("enqueue", "--id", "compile", "exit 3")
    cli("enqueue", "--id", "ship", "--after", "compile", "true")
    cli("enqueue", "--id", "party", "--after", "ship", "true")
    result = cli("worker", "start", "--burst", timeout=60)
    assert result.returncode == 0, result.stderr
    assert _state(cli, "ship") == "blocked"
    line = [row for row in cli("list").stdout.splitlines() if row.startswith("ship")][0]
    assert "blocked: compile is dead" in line
    assert "Error:        dependency compile is dead; retry it to unblock this job" in \
        cli("show", "ship").stdout
    result = cli("wait", "ship", "--timeout", "5")  # blocked ends the wait, exit 1
    assert result.returncode == 1 and "ship: blocked" in result.stdout
    # a dead job stays dead; the live jobs that hang on it are cancelled, deepest first
    result = cli("cancel", "compile", "--with-dependants")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["party: cancelled", "ship: cancelled"]
    assert _state(cli, "compile") == "dead"
    assert cli("cancel", "party").returncode == 1  # already cancelled


def test_a_worker_runs_a_graph_in_an_allowed_order(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    lines = [json.dumps({"id": "root", "command": f"echo root >> {log}"})]
    lines += [json.dumps({"id": f"fan{i}", "command": f"echo fan{i} >> {log}",
                          "after": "root"}) for i in range(6)]
    lines.append(json.dumps({"id": "join", "command": f"echo join >> {log}",
                             "depends_on": [f"fan{i}" for i in range(6)]}))
    batch = tmp_path / "graph.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    assert cli("enqueue", "--file", str(batch)).returncode == 0
    result = cli("worker", "start", "--burst", "--count", "3", timeout=60)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: _state(cli, "join") == "completed", timeout=20, message="join")
    order = log.read_text().split()
    assert order[0] == "root" and order[-1] == "join"
    assert sorted(order[1:-1]) == [f"fan{i}" for i in range(6)]


def test_priority_aging_columns_in_list_and_show(cli: Cli) -> None:
    assert cli("config", "set", "priority-aging", "1m").stdout.strip() == \
        "priority-aging = 60"
    cli("enqueue", "--id", "low", "-p", "1", "true")
    listed = cli("list").stdout.splitlines()
    assert listed[0].split() == ["ID", "STATE", "PRI", "WAIT", "EFFECTIVE", "ATTEMPTS",
                                 "QUEUE", "WHEN", "COMMAND"]
    assert listed[1].split()[:2] == ["low", "pending"]
    shown = cli("show", "low").stdout
    assert "Effective:    1 (priority 1 + one per 1m waited)" in shown
    assert "Waiting time:" in shown
    cli("config", "unset", "priority-aging")
    assert "EFFECTIVE" not in cli("list").stdout
