"""Retry rules, `retry --explain` and `edit` as a user runs them (both stores): real
burst workers decide real exit codes, signals and timeouts by job, queue and config
rules; bad terms are one line, exit 2, nothing written; `edit` runs a real editor (a
small script given as EDITOR)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, Callable

from tests.conftest import run_cli

Cli = Callable[..., Any]


def _job(cli: Cli, job_id: str) -> dict[str, Any]:
    result = cli("show", job_id, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _runs(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in job["history"] if h.get("result")]


def test_rules_of_job_queue_and_config_decide_real_failures(cli: Cli) -> None:
    assert cli("config", "set", "no-retry-on", "KILL").returncode == 0
    assert cli("config", "set", "backoff-base", "1").returncode == 0  # 1 s waits
    assert cli("queue", "policy", "mail", "--retry-on", "75").returncode == 0
    # one batch (enqueue --file -), JSON keys as the options spell them
    lines = [{"id": "own", "no_retry_on": "2,126,127", "command": "exit 2"},
             {"id": "qnot", "queue": "mail", "command": "exit 3"},
             {"id": "qyes", "queue": "mail", "max_retries": 1, "command": "exit 75"},
             {"id": "cfg", "command": "kill -9 $$"},
             {"id": "wide", "retry_on": ["any"], "max_retries": 1, "command": "kill -9 $$"},
             {"id": "slow", "timeout": 0.3, "no_retry_on": ["timeout"],
              "command": "sleep 30"},
             {"id": "plain", "max_retries": 1, "command": "exit 4"}]
    result = cli("enqueue", "--file", "-", input="\n".join(map(json.dumps, lines)))
    assert result.returncode == 0, result.stderr
    result = cli("worker", "start", "--count", "4", "--burst", timeout=90)
    assert result.returncode == 0, result.stderr
    expected = {
        "own": (1, "no-retry-on 2 (job)"),
        "qnot": (1, "not in retry-on 75 (queue)"),
        "qyes": (2, "retry-on 75 (queue)"),
        "cfg": (1, "no-retry-on SIGKILL (config)"),
        "wide": (2, "retry-on any (job)"),
        "slow": (1, "no-retry-on timeout (job)"),
        "plain": (2, None),
    }
    listed = {job["id"]: job for job in json.loads(cli("list", "--json").stdout)}
    for job_id, (attempts, rule) in expected.items():
        job = listed[job_id]
        assert (job["state"], job["attempts"]) == ("dead", attempts), job_id
        assert _runs(job)[-1].get("rule") == rule, job_id
        if rule and not rule.startswith("retry-on"):
            assert job["error"].endswith(f"(not retried: {rule})"), job_id
    # `show` names the rule
    shown = cli("show", "own").stdout
    assert "(not retried: no-retry-on 2 (job))" in shown
    assert "Retry rules:  retry-on" not in shown and "no-retry-on 2,126,127" in shown
    assert "retry-on 75" in cli("queue", "list").stdout


def test_bad_terms_are_one_line_exit_2_and_write_nothing(sqlite_url: str) -> None:
    """Validation comes before the store (one store is enough)."""
    def cli(*args: str) -> Any:
        return run_cli(*args, db=sqlite_url)

    assert cli("config", "set", "backoff-base", "2").returncode == 0  # the store exists
    for args in (["enqueue", "--retry-on", "0", "true"],
                 ["enqueue", "--no-retry-on", "2,,3", "true"],
                 ["enqueue", '{"command": "true", "retry_on": ["SIGNOPE"]}'],
                 ["queue", "policy", "mail", "--retry-on", "78-64"],
                 ["queue", "policy", "mail"],
                 ["config", "set", "retry-on", "sometimes"]):
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert json.loads(cli("list", "--json").stdout) == []
    assert json.loads(cli("queue", "list", "--json").stdout) == []
    assert cli("config", "get", "retry-on").stdout.strip() == ""


def test_explain_prints_policy_sources_decision_and_next_runs(cli: Cli) -> None:
    cli("config", "set", "max-retries", "2")
    cli("queue", "policy", "default", "--no-retry-on", "2")
    cli("enqueue", "--id", "e1", "--retry-on", "75", "exit 2")
    cli("enqueue", "--id", "e2", "--backoff-base", "3", "exit 75")
    assert cli("worker", "start", "--burst", "--timeout", "1", timeout=60).returncode == 0
    assert _job(cli, "e2")["state"] == "failed"  # its retry is 3 s away
    before = _job(cli, "e1")
    report = json.loads(cli("retry", "--explain", "e1", "--json").stdout)
    assert _job(cli, "e1") == before  # nothing changed
    assert report["max_retries"] == {"value": 2, "source": "config"}
    assert [(layer["source"], layer["retry_on"], layer["no_retry_on"])
            for layer in report["rules"]] == [("job", ["75"], None),
                                              ("queue", None, ["2"]),
                                              ("config", None, None)]
    assert report["last_failure"]["decision"] == "dead"
    assert report["last_failure"]["why"] == "not retried: not in retry-on 75 (job)"
    assert [run["run"] for run in report["next_runs"]] == [1, 2, 3]
    assert report["next_runs"][0]["at"].endswith("Z")
    text = cli("retry", "--explain", "e2")
    assert text.returncode == 0, text.stderr
    assert "3 ** n seconds (job)" in text.stdout
    assert "queue   no-retry-on 2" in text.stdout
    assert "decision under this policy: retry: retried: attempt 1 of 3" in text.stdout
    assert "Next runs (its next retry is due;" in text.stdout
    assert "run 2" in text.stdout and "after a 3s wait" in text.stdout
    assert "run 3" in text.stdout and "after a 9s wait" in text.stdout
    assert text.stdout.rstrip().endswith("Nothing was changed.")
    bad = cli("retry", "--explain", "e1", "--command", "true")
    assert bad.returncode == 2 and _job(cli, "e1") == before


def _editor(tmp_path: Path) -> str:
    """An editor that writes $NEW_COMMAND into the file (when set) and exits with
    $EDITOR_STATUS; it records the text it was given."""
    script = tmp_path / "editor.sh"
    script.write_text('#!/bin/sh\ncp "$1" "$SEEN_FILE"\n'
                      '[ -n "${NEW_COMMAND+x}" ] && printf "%s\\n" "$NEW_COMMAND" > "$1"\n'
                      'exit "${EDITOR_STATUS:-0}"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_edit_opens_the_editor_and_saves_the_change(cli: Cli, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    env = {"EDITOR": _editor(tmp_path), "VISUAL": "/nonexistent", "SEEN_FILE": str(seen)}
    cli("enqueue", "--id", "j1", "--delay", "1h", "echo 'old one'")
    result = cli("edit", "j1", env={**env, "NEW_COMMAND": "echo new"})
    assert result.returncode == 0, result.stderr
    assert seen.read_text() == "echo 'old one'\n"
    job = _job(cli, "j1")
    assert (job["state"], job["command"]) == ("scheduled", "echo new")
    assert job["history"][-1]["changed"] == {"command": ["echo 'old one'", "echo new"]}
    # unchanged, empty, or an editor that fails: nothing changes
    for extra in ({}, {"NEW_COMMAND": "  "}, {"NEW_COMMAND": "x", "EDITOR_STATUS": "3"}):
        result = cli("edit", "j1", env={**env, **extra})
        assert result.returncode == (1 if extra.get("EDITOR_STATUS") else 0), extra
        assert "nothing changed" in result.stderr
        assert _job(cli, "j1") == job
    # VISUAL when EDITOR is not set
    result = cli("edit", "j1", env={**env, "EDITOR": "", "VISUAL": env["EDITOR"],
                                    "NEW_COMMAND": "echo visual"})
    assert result.returncode == 0 and _job(cli, "j1")["command"] == "echo visual"


def test_edit_then_retry_a_dead_job_and_refuse_other_states(cli: Cli,
                                                           tmp_path: Path) -> None:
    env = {"EDITOR": _editor(tmp_path), "SEEN_FILE": str(tmp_path / "seen")}
    cli("enqueue", "--id", "d1", "--max-retries", "0", "exit 3")
    cli("enqueue", "--id", "ok", "true")
    assert cli("worker", "start", "--burst", timeout=60).returncode == 0
    refused = cli("edit", "ok", env={**env, "NEW_COMMAND": "false"})
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "queuectl: error: job ok is completed; edit works on blocked, dead, failed, "
        "pending, scheduled, waiting jobs (retry it with --command: queuectl retry ok "
        "--command ...)"]
    assert not (tmp_path / "seen").exists()  # refused before the editor opened
    result = cli("edit", "d1", "--retry", "--json", env={**env, "NEW_COMMAND": "echo ok"})
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert (job["state"], job["attempts"], job["command"], job["changed"]) == (
        "pending", 0, "echo ok", True)
    assert [h.get("event") for h in job["history"]][-2:] == ["edit", "dlq retry"]
    assert cli("worker", "start", "--burst", timeout=60).returncode == 0
    assert _job(cli, "d1")["state"] == "completed"
    assert os.path.exists(tmp_path / "seen")
