"""Watching jobs: `logs` (and `logs -f`) and `wait`."""

from __future__ import annotations

import sys
from typing import Any, Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state
from queuectl.errors import InvalidInput
from queuectl.jobevents import last_lines
from queuectl.models import Job
from queuectl.states import SETTLED, JobState


@click.command()
@click.argument("job_ref", metavar="[ID]", required=False, shell_complete=complete.job_ids)
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
@click.option("--raw", is_flag=True,
              help="On a terminal too, write the output's bytes as they are, escape "
                   "sequences included (piped output always is).")
@click.option("--tail", "-n", "tail", type=int, metavar="N",
              help="Only the last N lines of the output (with -f: then follow).")
@json_option
def logs(job_ref: Optional[str], follow: bool, raw: bool, tail: Optional[int]) -> None:
    """Print a job's captured output (stdout and stderr).

    Into a pipe or a file the output is written byte for byte.  On a terminal its
    control characters are drawn visibly (ESC as ^[), so that a job cannot retitle,
    clear or reprogram your terminal; --raw writes them as they are.  Without an ID
    it is the job running now, when exactly one runs.

    \b
      queuectl logs job1
      queuectl logs -f job1       # follow a running job live
      queuectl logs -f            # follow the only running job
      queuectl logs job1 --raw    # let the job's colours through
      queuectl logs -n 20 job1    # the last 20 lines
      queuectl logs -n 20 -f job1 # the last 20 lines, then follow
    """
    if tail is not None and tail < 0:
        raise InvalidInput("--tail must be 0 or more")
    sanitise = not raw and render.is_tty()
    st = state()
    q = st.queue()
    if job_ref is None:
        job_ref = _only_running(q)
    if st.json:
        job, text, live = q.output(job_ref)
        render.emit_json({"id": job.id, "state": job.state.value, "live": live,
                          "output": last_lines(text, tail),
                          "total_output_bytes": job.total_output_bytes,
                          "output_truncated": job.output_dropped > 0})
        return
    if not follow:
        job, text, live = q.output(job_ref)
        shown = last_lines(text, tail)
        _write(shown, sanitise)
        if not live and (tail is None or shown == text):
            _truncation_note(q, job)
        return
    follow_output(q, job_ref, sanitise, tail)


def _size(nbytes: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"


def _truncation_note(q: Any, job: Job) -> None:
    """Say on stderr what of the job's output was not kept, and how to keep more."""
    total, dropped = job.total_output_bytes, job.output_dropped
    if total is None or dropped <= 0:
        return
    kept = q.kept_output(job)
    if kept is not None and not kept[1]:
        return  # the file and the tail hold all of it
    if kept is not None:
        _note(f"{_size(kept[1])} of this job's {_size(total)} of output were dropped "
              "between the start kept on disk (output-file-max) and the stored tail; "
              "keep more: queuectl config set output-file-max SIZE")
        return
    _note(f"only the last {_size(total - dropped)} of this job's {_size(total)} of "
          f"output are kept ({_size(dropped)} dropped before them); keep more: queuectl "
          "config set output-limit BYTES, or all of it on disk on the worker's host: "
          "queuectl config set output-file-max 100M")


def _only_running(q: Any) -> str:
    """The id of the one job running now, or a clear error naming the running ones."""
    from queuectl.errors import NotFound

    shown = 10
    running = q.running_ids(shown + 1)
    if len(running) == 1:
        return str(running[0])
    if not running:
        raise NotFound("no job is running: give an ID (queuectl logs ID)")
    more = ", ..." if len(running) > shown else ""
    raise InvalidInput(f"{'more than ' + str(shown) if more else len(running)} jobs are "
                       f"running ({', '.join(running[:shown])}{more}): give one ID")


def _write(text: str, sanitise: bool) -> None:
    if text:
        sys.stdout.write(render.visible(text, multiline=True) if sanitise else text)
        sys.stdout.flush()


def follow_output(q: Any, job_ref: str, sanitise: bool, tail: Optional[int] = None
                  ) -> Job:
    """Print the job's output events until it ends and return it as it ended; say on
    stderr (stdout carries output only) where the job goes on and what could not be
    shown."""
    from queuectl import jobevents as ev

    for event in q.follow(job_ref, tail):
        if isinstance(event, ev.Ended):
            return event.job
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
    raise AssertionError("follow() always ends with an Ended event")


def _note(text: str) -> None:
    sys.stderr.write(f"queuectl: {text}\n")
    sys.stderr.flush()


@click.command()
@click.argument("job_refs", nargs=-1, metavar="[ID...]", shell_complete=complete.job_ids)
@click.option("--queue", "-q", "queue_name", metavar="NAME",
              shell_complete=complete.queue_names,
              help="Without ids: only the live jobs of this queue.")
@click.option("--timeout", "-t", type=float, metavar="SECONDS",
              help="Give up after this long (exit 1).")
@click.option("--quiet", is_flag=True, help="Print nothing; only the exit code tells.")
@json_option
def wait(job_refs: tuple[str, ...], queue_name: Optional[str], timeout: Optional[float],
         quiet: bool) -> None:
    """Block until the jobs finish; exit 0 only if all completed.

    Without ids it waits for every job that is live now (scheduled, pending, running
    or failed and waiting for a retry), of every queue or of --queue; jobs added
    meanwhile are not waited for.
    A job blocked by a dead dependency counts as ended (exit 1): it runs only once
    someone retries that dependency.

    \b
      id=$(queuectl enqueue "make test") && queuectl wait "$id" && echo passed
      queuectl wait job1 job2 --timeout 60
      queuectl wait                     # every live job
      queuectl wait --queue emails      # every live job of one queue
    """
    st = state()
    if timeout is not None and timeout < 0:
        raise InvalidInput("--timeout must be 0 or more")
    if job_refs and queue_name is not None:
        raise InvalidInput("--queue is for waiting without ids: give ids or --queue")
    q = st.queue()
    events = (q.watch(list(job_refs), timeout) if job_refs
              else q.watch_live(queue_name, timeout))
    code = report_wait(st, events, quiet, every=not job_refs)
    if code:
        raise click.exceptions.Exit(code)


def report_wait(st: Any, events: Any, quiet: bool, every: bool = False) -> int:
    """Print what `wait` prints for watch events; the exit code (0: all completed).
    `every`: the jobs are every live one (say so when there are none, and name only
    a few of those still unfinished)."""
    from queuectl import jobevents as ev

    done: Optional[ev.WatchDone] = None
    for event in events:
        if isinstance(event, ev.WatchDone):
            done = event
        elif isinstance(event, ev.Watching):
            if event.count and not quiet and not st.json:
                click.echo(f"waiting for {event.count} live "
                           f"job{'' if event.count == 1 else 's'}", err=True)
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
    elif every and not done.jobs and not quiet:
        click.echo("no live jobs to wait for", err=True)
    elif unfinished and not quiet:
        shown = unfinished[:10]
        more = f" and {len(unfinished) - len(shown)} more" if len(unfinished) > 10 else ""
        click.echo(f"timed out; still {', '.join(f'{j.id} {j.state.value}' for j in shown)}"
                   f"{more}", err=True)
    return 0 if done.all_completed else 1
