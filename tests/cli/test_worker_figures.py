"""Workers counted as the seeds count them: `worker start --count 3` is three workers
(in one supervisor process), in `status`, `workers` and their --json."""

from __future__ import annotations

import subprocess
from typing import Callable

from queuectl.maintenance import this_host
from tests.cli.test_commands import as_json, ok, show
from tests.conftest import wait_for

Cli = Callable[..., subprocess.CompletedProcess]


def test_three_slots_are_three_workers_in_one_process(cli: Cli) -> None:
    ok(cli("migrate"))
    assert "Workers: none running" in ok(cli("status"))
    empty = as_json(cli("status", "--json"))
    assert (empty["worker_count"], empty["busy_workers"], empty["processes"],
            empty["hosts"]) == (0, 0, 0, [])
    ok(cli("enqueue", "--id", "slow", "sleep 30"))
    started = as_json(cli("worker", "start", "--count", "3", "--detach", "--json"))
    try:
        wait_for(lambda: show(cli, "slow")["state"] == "processing", timeout=30,
                 message="the job running")
        host = this_host()
        line = f"3 workers (1 process on host {host}), 1 busy"
        assert f"Workers: {line}" in ok(cli("status"))
        data = as_json(cli("status", "--json"))
        assert (data["worker_count"], data["busy_workers"], data["processes"],
                data["hosts"]) == (3, 1, 1, [host])
        # the keys that were there before stay
        assert data["slots"] == 3 and data["busy_slots"] == 1
        assert [w["pid"] for w in data["workers"]] == [started["pid"]]
        listed = ok(cli("workers")).splitlines()
        assert listed[0] == line
        assert "PROCESS" in listed[1] and str(started["pid"]) in listed[2]
        shown = as_json(cli("workers", "--json"))
        assert (shown["worker_count"], shown["busy_workers"], shown["processes"]) == (3, 1, 1)
        assert shown["workers"][0]["slots"] == 3 and shown["workers"][0]["busy"] == 1
        stopped = ok(cli("worker", "stop", "--now", "--wait", "--wait-timeout", "30"))
        assert stopped.startswith("Asked 3 workers (1 process) to stop")
    finally:
        ok(cli("worker", "stop", "--now", "--wait", "--wait-timeout", "30"))


def test_the_workers_line_names_processes_and_hosts() -> None:
    from queuectl.cli.render import workers_line
    from queuectl.models import WorkerInfo, worker_figures

    def info(host: str, slots: int, busy: int) -> WorkerInfo:
        return WorkerInfo(id=f"{host}{slots}", host=host, pid=1, slots=slots, queues=[],
                          started_at=0.0, heartbeat_at=0.0, busy=busy)

    one = worker_figures([info("vm", 1, 0)])
    assert workers_line(one) == "1 worker (1 process on host vm), 0 busy"
    many = worker_figures([info("b", 4, 2), info("a", 2, 1), info("a", 1, 0)])
    assert many == {"worker_count": 7, "busy_workers": 3, "processes": 3,
                    "hosts": ["a", "b"]}
    assert workers_line(many) == "7 workers (3 processes on 2 hosts: a, b), 3 busy"
    assert "^[" in workers_line(worker_figures([info("\x1b[2J", 1, 0)]))  # drawn, not run
