"""Watching jobs: `logs` (and `logs -f`) and `wait`."""

from __future__ import annotations

import sys
from typing import Any, Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state
from queuectl.errors import InvalidInput
from queuectl.states import SETTLED, JobState


@click.command()
@click.argument("job_ref", metavar="ID", shell_complete=complete.job_ids)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.option("--raw", is_flag=True,
              help="On a terminal too, write the output's bytes as they are, escape "
                   "sequences included (piped output always is).")
@click.option("--tail", "-n", "tail", type=int, metavar="N",
              help="Only the last N lines of the output.")
@json_option
def logs(job_ref: str, follow: bool, raw: bool, tail: Optional[int]) -> None:
    """Print a job's captured output (stdout and stderr).

    Into a pipe or a file the output is written byte for byte.  On a terminal its
    control characters are drawn visibly (ESC as ^[), so that a job cannot retitle,
    clear or reprogram your terminal; --raw writes them as they are.

    \b
      queuectl logs job1
      queuectl logs -f job1       # follow a running job live
      queuectl logs job1 --raw    # let the job's colours through
      queuectl logs -n 20 job1    # the last 20 lines
    """
    if tail is not None and tail < 0:
        raise InvalidInput("--tail must be 0 or more")
    if tail is not None and follow:
        raise InvalidInput("--tail and --follow do not go together yet: "
                           "queuectl logs -n N ID, then queuectl logs -f ID")
    sanitise = not raw and render.is_tty()
    st = state()
    q = st.queue()
    if st.json:
        job, text, live = q.output(job_ref)
        render.emit_json({"id": job.id, "state": job.state.value, "live": live,
                          "output": _last_lines(text, tail)})
        return
    if not follow:
        _, text, _ = q.output(job_ref)
        _write(_last_lines(text, tail), sanitise)
        return
    _follow(q, job_ref, sanitise)


def _last_lines(text: str, count: Optional[int]) -> str:
    """The last `count` lines of `text` (all of it for None); a final line without
    a newline counts as a line."""
    if count is None:
        return text
    if count == 0:
        return ""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-count:])


def _write(text: str, sanitise: bool) -> None:
    if text:
        sys.stdout.write(render.visible(text, multiline=True) if sanitise else text)
        sys.stdout.flush()


def _follow(q: Any, job_ref: str, sanitise: bool) -> None:
    """Print the job's output events; say on stderr (stdout carries output only)
    where the job goes on and what could not be shown."""
    from queuectl import jobevents as ev

    for event in q.follow(job_ref):
        if isinstance(event, ev.Output):
            _write(event.text, sanitise)
        elif isinstance(event, ev.Skipped):
            _note(f"{event.nbytes} bytes of output skipped: the job printed faster than "
                  "they could be shown, and they were released")
        elif isinstance(event, ev.RunSwitched):
            _note(f"attempt {event.job.attempts} of {event.job.id} runs on "
                  f"{event.job.worker}")
        elif isinstance(event, ev.WorkerGone):
            _note(f"the worker that runs {event.job.id} ({event.job.worker}) is gone; the "
                  "job runs again once a worker rescues it (any running worker does "
                  "within seconds; or `queuectl cleanup`)")


def _note(text: str) -> None:
    sys.stderr.write(f"queuectl: {text}\n")
    sys.stderr.flush()


@click.command()
@click.argument("job_refs", nargs=-1, required=True, metavar="ID...",
                shell_complete=complete.job_ids)
@click.option("--timeout", "-t", type=float, metavar="SECONDS",
              help="Give up after this long (exit 1).")
@click.option("--quiet", is_flag=True, help="Print nothing; only the exit code tells.")
@json_option
def wait(job_refs: tuple[str, ...], timeout: Optional[float], quiet: bool) -> None:
    """Block until the jobs finish; exit 0 only if all completed.

    A job blocked by a dead dependency counts as ended (exit 1): it runs only once
    someone retries that dependency.

    \b
      id=$(queuectl enqueue "make test") && queuectl wait "$id" && echo passed
      queuectl wait job1 job2 --timeout 60
    """
    st = state()
    if timeout is not None and timeout < 0:
        raise InvalidInput("--timeout must be 0 or more")
    from queuectl import jobevents as ev

    q = st.queue()
    done: Optional[ev.WatchDone] = None
    for event in q.watch(list(job_refs), timeout):
        if isinstance(event, ev.WatchDone):
            done = event
        elif not quiet and not st.json and event.job.state in SETTLED:
            job = event.job
            click.echo(f"{job.id}: {job.state.value}"
                       + (f" ({job.error})" if job.error and job.state is not
                          JobState.COMPLETED else ""))
    assert done is not None  # watch() always ends with a WatchDone
    unfinished = [job for job in done.jobs if job.state not in SETTLED]
    if st.json:
        render.emit_json({"all_completed": done.all_completed, "timed_out": done.timed_out,
                          "jobs": [st.job_dict(job, with_output=False) for job in done.jobs]})
    elif unfinished and not quiet:
        click.echo(f"timed out; still {', '.join(f'{j.id} {j.state.value}' for j in unfinished)}",
                   err=True)
    if not done.all_completed:
        raise click.exceptions.Exit(1)
