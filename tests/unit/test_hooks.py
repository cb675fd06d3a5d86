"""The supervisor's hook service (queuectl.worker.hooks.HookRunner) on a fake clock over
a real store (both stores) and real `sh` processes: a hook runs once with the job in its
environment, a failing one is logged and kept, a hanging one is killed at hook-timeout,
and none is run again."""

from __future__ import annotations

import logging
import os
import select
import time
from pathlib import Path
from typing import Iterator

import pytest

from queuectl.models import NewJob
from queuectl.queue import Queue
from queuectl.states import JobState
from queuectl.worker.context import Clock, WorkerContext
from queuectl.worker.fence import Fence
from queuectl.worker.hooks import HOOK_CHECK_S, HookRunner
from tests.conftest import pid_alive, wait_for


class FakeClock(Clock):
    def __init__(self) -> None:
        self.m = 1000.0
        self.w = time.time()

    def mono(self) -> float:
        return self.m

    def wall(self) -> float:
        return self.w

    def advance(self, seconds: float) -> None:
        self.m += seconds
        self.w += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(store_url: str, clock: FakeClock) -> Iterator[WorkerContext]:
    queue = Queue(store_url, durable=False)
    settings = queue.settings()
    yield WorkerContext(queue=queue, worker_id="w-test", host="testhost", slots=1,
                        queues=None, settings=settings,
                        fence=Fence(settings.lease_timeout, settings.heartbeat_interval,
                                    clock.mono), clock=clock)
    queue.close()


@pytest.fixture
def runner(ctx: WorkerContext) -> Iterator[HookRunner]:
    hooks = HookRunner(ctx, select.poll())
    yield hooks
    hooks.close()


def configure(ctx: WorkerContext, **values: str) -> None:
    for key, value in values.items():
        ctx.queue.config_set(key.replace("_", "-"), value)
    ctx.settings = ctx.queue.settings()


def die(ctx: WorkerContext, job_id: str, command: str = "exit 3",
        state: JobState = JobState.DEAD) -> None:
    backend, now = ctx.backend, ctx.clock.wall()
    backend.enqueue([NewJob(command=command, id=job_id, queue="mail")], now)
    job = backend.claim("w-other", "host:1/w-other", None, now)
    assert job is not None
    backend.finish(job, state, None, now=now, exit_code=3 if state is JobState.DEAD else 0,
                   error="exit code 3\nsecond line" if state is JobState.DEAD else None,
                   output="", history_entry={"attempt": job.attempts})


def settle(runner: HookRunner, clock: FakeClock) -> None:
    """Tick (at the same fake time) until the running hooks have ended."""
    def ended() -> bool:
        runner.tick(clock.m)
        return not runner.busy
    wait_for(ended, timeout=10, message="the hooks to end")


def test_a_death_runs_the_hook_once_with_the_job_in_its_environment(
        ctx: WorkerContext, runner: HookRunner, clock: FakeClock, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    err = tmp_path / "error.txt"
    configure(ctx, on_dead=f'env | grep ^QUEUECTL_ | sort >> {out}; echo --- >> {out}; '
                           f'printf %s "$QUEUECTL_ERROR" > {err}')
    die(ctx, "job-1", "echo hi; exit 3")
    runner.tick(clock.m)
    assert runner.busy
    settle(runner, clock)
    for _ in range(3):  # later checks find nothing: it never runs again
        clock.advance(HOOK_CHECK_S)
        runner.tick(clock.m)
        assert not runner.busy
    text = out.read_text()
    assert text.count("---") == 1
    env = dict(line.split("=", 1) for line in text.splitlines()
               if line.startswith("QUEUECTL_") and "=" in line)
    assert (env["QUEUECTL_JOB_ID"], env["QUEUECTL_JOB_STATE"], env["QUEUECTL_EXIT_CODE"],
            env["QUEUECTL_QUEUE"], env["QUEUECTL_ATTEMPTS"], env["QUEUECTL_COMMAND"],
            env["QUEUECTL_DB"]) == ("job-1", "dead", "3", "mail", "1", "echo hi; exit 3",
                                    ctx.queue.url)
    assert err.read_text() == "exit code 3\nsecond line"
    [event] = ctx.queue.hook_events()
    assert (event["status"], event["detail"], event["worker_id"]) == ("ok", "exit 0",
                                                                      "w-test")
    assert ctx.queue.get("job-1").history[-1]["event"] == "hook on-dead ok"


def test_completed_runs_only_with_on_complete(ctx: WorkerContext, runner: HookRunner,
                                              clock: FakeClock, tmp_path: Path) -> None:
    out = tmp_path / "done.txt"
    configure(ctx, on_dead=f"echo dead >> {out}")
    die(ctx, "ok-1", "true", JobState.COMPLETED)
    runner.tick(clock.m)
    assert not runner.busy and ctx.queue.hook_events() == []
    configure(ctx, on_complete=f'echo "done $QUEUECTL_JOB_ID $QUEUECTL_EXIT_CODE" >> {out}')
    die(ctx, "ok-2", "true", JobState.COMPLETED)
    clock.advance(HOOK_CHECK_S)
    runner.tick(clock.m)
    settle(runner, clock)
    assert out.read_text() == "done ok-2 0\n"


def test_a_failing_hook_is_logged_kept_and_not_run_again(
        ctx: WorkerContext, runner: HookRunner, clock: FakeClock, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    runs = tmp_path / "runs.txt"
    configure(ctx, on_dead=f"echo run >> {runs}; printf '\\033[2Jno route to host' >&2; "
                           "exit 4")
    die(ctx, "job-1")
    with caplog.at_level(logging.WARNING, logger="queuectl.worker.supervisor"):
        runner.tick(clock.m)
        settle(runner, clock)
        for _ in range(3):
            clock.advance(HOOK_CHECK_S)
            runner.tick(clock.m)
    assert runs.read_text() == "run\n"
    [event] = ctx.queue.hook_events()
    assert (event["status"], event["detail"]) == ("failed", "exit 4: ?[2Jno route to host")
    assert any("job job-1 dead: hook" in r.message and "failed: exit 4" in r.message
               and "not run again" in r.message for r in caplog.records)
    entry = ctx.queue.get("job-1").history[-1]
    assert entry["event"] == "hook on-dead failed" and entry["error"].startswith("exit 4")


def test_a_hanging_hook_is_killed_at_its_timeout(ctx: WorkerContext, runner: HookRunner,
                                                 clock: FakeClock, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    configure(ctx, on_dead=f"echo $$ > {pid_file}; exec sleep 300", hook_timeout="2")
    die(ctx, "job-1")
    runner.tick(clock.m)
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                       timeout=10, message="the hook's pid"))
    clock.advance(1.9)
    runner.tick(clock.m)
    assert runner.busy and pid_alive(pid)  # not yet: 2 s on the fake clock
    assert runner.wanted_at() == pytest.approx(1000.0 + 2)
    clock.advance(0.2)
    runner.tick(clock.m)
    assert not runner.busy
    wait_for(lambda: not pid_alive(pid), timeout=5, message="the hook to be killed")
    [event] = ctx.queue.hook_events()
    assert (event["status"], event["detail"]) == ("timeout", "timed out after 2s (killed)")
    clock.advance(HOOK_CHECK_S)
    runner.tick(clock.m)
    assert not runner.busy  # not retried


def test_stopping_runs_the_events_recorded_and_stop_now_kills(
        ctx: WorkerContext, runner: HookRunner, clock: FakeClock, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    configure(ctx, on_dead=f"echo $QUEUECTL_JOB_ID >> {out}")
    runner.tick(clock.m)  # nothing yet; the next check is a second away
    die(ctx, "last")
    ctx.stopping = True
    runner.tick(clock.m + 5)  # no more claims on the ticks of a stopping supervisor
    assert not runner.busy
    wait_for(runner.settled, timeout=10, message="the last hooks")  # takes what waits
    assert out.read_text() == "last\n"
    configure(ctx, on_dead="exec sleep 300")
    die(ctx, "hung")
    runner2 = HookRunner(ctx, select.poll())
    ctx.stopping = False
    runner2.tick(clock.m)
    [run] = list(runner2.running.values())
    ctx.stop_now = True
    assert runner2.settled() and not runner2.busy
    wait_for(lambda: not pid_alive(run.proc.pid), timeout=5, message="the kill")
    assert ctx.queue.hook_events(job="hung")[0]["detail"] == \
        "killed: the worker was stopped with --now"


def test_a_hook_that_cannot_start_is_recorded(ctx: WorkerContext, clock: FakeClock,
                                              tmp_path: Path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(os.strerror(24))

    runner = HookRunner(ctx, select.poll(), spawn=refuse)  # type: ignore[arg-type]
    configure(ctx, on_dead="true")
    die(ctx, "job-1")
    runner.tick(clock.m)
    assert not runner.busy
    assert ctx.queue.hook_events()[0]["status"] == "error"
    assert "could not start" in ctx.queue.hook_events()[0]["detail"]
