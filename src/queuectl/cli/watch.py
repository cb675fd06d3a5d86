"""Watching jobs: `logs` (and `logs -f`) and `wait`."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import click

from queuectl import capture
from queuectl.cli import render
from queuectl.cli.context import json_option, state
from queuectl.errors import InvalidInput, NotFound
from queuectl.models import Job
from queuectl.states import FINISHED, JobState


@click.command()
@click.argument("job_ref", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@json_option
def logs(job_ref: str, follow: bool) -> None:
    """Print a job's captured output (stdout and stderr).

    \b
      queuectl logs job1
      queuectl logs -f job1       # follow a running job live
    """
    st = state()
    q = st.queue()
    if st.json:
        job, text, live = q.output(job_ref)
        render.emit_json({"id": job.id, "state": job.state.value, "live": live,
                          "output": text})
        return
    if not follow:
        _, text, _ = q.output(job_ref)
        _write(text)
        return
    _follow(q, q.resolve(job_ref))


def _write(text: str) -> None:
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


def _follow(q: Any, job_id: str) -> None:
    """Stream the live capture while the job runs here; print the stored tail when it
    ran elsewhere.  An open capture stays readable after its run ends; a new run (a
    retry, or a rescue by another worker) is followed in its own capture."""
    follower: Optional[capture.Follower] = None
    run: tuple[Any, ...] = ()  # (worker, attempts) of the run being followed
    printed = warned = False
    followed = 0  # runs followed so far

    def drain() -> None:
        nonlocal printed
        while follower is not None:
            text, skipped, more = follower.read()
            if skipped:
                _skipped(skipped)
            if text:
                printed = True
                _write(text)
            if not more:
                return

    while True:
        job = q.backend.get(job_id)
        if job is None:
            raise NotFound(f"job {job_id} was deleted")
        current = (job.worker, job.attempts) if job.state is JobState.PROCESSING else ()
        if follower is not None and current != run:
            drain()  # the run ended (or was taken over): print what it left, then let go
            _write(follower.close())
            follower = None
        if follower is None and current:
            handle = q.open_live_output(job)
            if handle is not None:
                follower, run = capture.Follower(handle), current
                if followed:  # stdout carries output only; say on stderr where it goes on
                    sys.stderr.write(f"queuectl: attempt {job.attempts} of {job.id} "
                                     f"runs on {job.worker}\n")
                    sys.stderr.flush()
                followed += 1
        if current and not warned and _worker_gone(job):
            warned = True
            sys.stderr.write(f"queuectl: the worker that runs {job.id} ({job.worker}) is "
                             "gone; the job runs again once a worker rescues it (any "
                             "running worker does within seconds; or `queuectl cleanup`)\n")
            sys.stderr.flush()
        drain()
        if job.state in FINISHED:
            if not printed:
                _write(job.output or "")
            return
        time.sleep(0.1)


def _worker_gone(job: Job) -> bool:
    """Whether the job's supervisor ran on this host and its process has exited."""
    from queuectl.maintenance import pid_alive, this_host

    pid = capture.worker_pid(job.worker, this_host())
    return pid is not None and not pid_alive(pid)


def _skipped(count: int) -> None:
    """Say on stderr (stdout keeps the output only) that output was skipped."""
    sys.stderr.write(f"queuectl: {count} bytes of output skipped: the job printed "
                     "faster than they could be shown, and they were released\n")
    sys.stderr.flush()


@click.command()
@click.argument("job_refs", nargs=-1, required=True, metavar="ID...")
@click.option("--timeout", "-t", type=float, metavar="SECONDS",
              help="Give up after this long (exit 1).")
@click.option("--quiet", is_flag=True, help="Print nothing; only the exit code tells.")
@json_option
def wait(job_refs: tuple[str, ...], timeout: Optional[float], quiet: bool) -> None:
    """Block until the jobs finish; exit 0 only if all completed.

    \b
      id=$(queuectl enqueue "make test") && queuectl wait "$id" && echo passed
      queuectl wait job1 job2 --timeout 60
    """
    st = state()
    if timeout is not None and timeout < 0:
        raise InvalidInput("--timeout must be 0 or more")
    q = st.queue()

    def changed(job: Job) -> None:
        if not quiet and not st.json and job.state in FINISHED:
            click.echo(f"{job.id}: {job.state.value}"
                       + (f" ({job.error})" if job.error and job.state is not
                          JobState.COMPLETED else ""))

    latest = q.wait(list(job_refs), timeout, on_change=changed)
    ok = all(job.state is JobState.COMPLETED for job in latest.values())
    unfinished = [job for job in latest.values() if job.state not in FINISHED]
    if st.json:
        render.emit_json({"all_completed": ok, "timed_out": bool(unfinished),
                          "jobs": [job.to_dict(with_output=False)
                                   for job in latest.values()]})
    elif unfinished and not quiet:
        click.echo(f"timed out; still {', '.join(f'{j.id} {j.state.value}' for j in unfinished)}",
                   err=True)
    if not ok:
        raise click.exceptions.Exit(1)


