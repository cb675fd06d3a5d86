"""Hooks under real supervisors (both stores): with two supervisors on one store, each
job that dies fires the hook exactly once with its fields in the environment, the
queue's hook overrides the global one, on-complete fires only where it is configured,
and a hanging hook is killed at hook-timeout, logged, and not run again."""

from __future__ import annotations

import collections
import json
import secrets
from pathlib import Path
from typing import Any, Callable

from queuectl.queue import Queue
from tests.conftest import wait_for
from tests.integration.conftest import Workers, process_running


def _events(db: str) -> list[dict[str, Any]]:
    with Queue(db) as queue:
        return queue.hook_events(100)


def _settled(db: str, count: int) -> list[dict[str, Any]]:
    """The hook runs, once `count` of them have ended."""
    def ended() -> list[dict[str, Any]]:
        found = _events(db)
        done = [e for e in found if e["status"] not in ("waiting", "running")]
        return found if len(done) >= count else []
    return wait_for(ended, timeout=30, interval=0.1,  # type: ignore[return-value]
                    message=f"{count} hook run(s) to end")


def test_two_supervisors_fire_each_death_once_and_the_queue_hook_wins(
        db: str, cli: Callable[..., Any], q: Callable[..., Any], workers: Workers,
        tmp_path: Path) -> None:
    out = tmp_path / "hooks.txt"
    line = ('"$QUEUECTL_JOB_ID|$QUEUECTL_JOB_STATE|$QUEUECTL_EXIT_CODE|$QUEUECTL_QUEUE|'
            '$QUEUECTL_ATTEMPTS|$QUEUECTL_ERROR|$QUEUECTL_COMMAND"')
    with Queue(db) as queue:
        queue.config_set("on-dead", f"echo global{line} >> {out}")
        queue.set_queue_hooks("mail", on_dead=f"echo mail{line} >> {out}",
                              on_complete=f"echo done{line} >> {out}")
    jobs = [{"id": f"d{i}", "command": f"exit {i + 1}", "max_retries": 0} for i in range(3)]
    jobs += [{"id": "m1", "command": "exit 9", "queue": "mail", "max_retries": 0},
             {"id": "ok-default", "command": "true"},  # no on-complete for default
             {"id": "ok-mail", "command": "true", "queue": "mail"}]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    q("enqueue", "--file", str(batch))
    workers.start("--count", "2")
    workers.start("--count", "2")
    events = _settled(db, 5)
    assert sorted((e["job_id"], e["event"], e["status"]) for e in events) == [
        ("d0", "dead", "ok"), ("d1", "dead", "ok"), ("d2", "dead", "ok"),
        ("m1", "dead", "ok"), ("ok-mail", "completed", "ok")]
    assert not [e for e in _events(db) if e["status"] == "waiting"]
    lines = out.read_text().splitlines()
    assert len(lines) == 5 and max(collections.Counter(lines).values()) == 1
    assert "globald0|dead|1|default|1|exit code 1|exit 1" in lines
    assert "globald2|dead|3|default|1|exit code 3|exit 3" in lines
    assert "mailm1|dead|9|mail|1|exit code 9|exit 9" in lines
    assert "doneok-mail|completed|0|mail|1||true" in lines
    table = cli("queue", "list").stdout
    assert "dead: echo mail" in table and "complete: echo done" in table


def test_a_hanging_hook_is_killed_at_its_timeout_logged_and_not_run_again(
        db: str, cli: Callable[..., Any], q: Callable[..., Any], workers: Workers,
        tmp_path: Path) -> None:
    marker = f"300.{secrets.randbelow(10**9)}"
    runs = tmp_path / "runs.txt"
    with Queue(db) as queue:
        queue.config_set("hook-timeout", "1")
        queue.config_set("on-dead", f"echo run >> {runs}; exec sleep {marker}")
    q("enqueue", "--id", "dies", "--max-retries", "0", "false")
    workers.start("--count", "1")
    [event] = _settled(db, 1)
    assert (event["status"], event["detail"]) == ("timeout", "timed out after 1s (killed)")
    wait_for(lambda: not process_running(f"sleep {marker}"), timeout=10,
             message="the hook's process to be gone")
    wait_for(lambda: "not run again" in workers.log(0), timeout=10, message="the log line")
    assert "job dies dead: hook" in workers.log(0)
    shown = q("show", "dies")
    assert shown["history"][-1]["event"] == "hook on-dead timeout"
    listing = json.loads(cli("--json", "hooks", "--job", "dies").stdout)
    assert [e["status"] for e in listing] == ["timeout"]
    assert runs.read_text() == "run\n"
