"""`demo`: enqueue a showcase and run it with live progress."""

from __future__ import annotations

import threading
import time
from typing import Any

import click

from queuectl.cli import render
from queuectl.cli.context import json_option, state
from queuectl.demo import demo_jobs
from queuectl.states import JobState

DEMO_SLOTS = 3
DEMO_DEADLINE_S = 120.0


@click.command()
@click.option("--no-run", is_flag=True, help="Only enqueue the showcase jobs.")
@json_option
def demo(no_run: bool) -> None:
    """Enqueue a showcase and run it: successes, priorities, a job that fails until it
    is dead, a timeout and a scheduled job, with live progress.

    \b
      queuectl --db demo.db demo
    """
    st = state()
    q = st.queue()
    jobs = q.enqueue(demo_jobs(time.time()))
    ids = [job.id for job in jobs]
    if not st.json:
        click.echo(f"Enqueued {len(ids)} demo jobs into {q.display_url}:")
        render.job_table(jobs, q.now(), st.job_defaults())
    if no_run:
        if st.json:
            render.emit_json({"enqueued": ids})
        return
    if not st.json:
        click.echo(f"\nRunning them with a {DEMO_SLOTS}-slot worker "
                   "(retries wait base**attempts seconds)...")
    import logging

    from queuectl.worker.supervisor import Supervisor, SupervisorOptions

    if not st.debug:  # the progress lines tell the story; keep worker logs quiet
        logging.getLogger("queuectl").setLevel(logging.CRITICAL)

    supervisor = Supervisor(q.url, SupervisorOptions(slots=DEMO_SLOTS, flags=st.flags))
    progress = _Progress(q.url, ids, supervisor, quiet=st.json)
    progress.start()
    supervisor.run()
    progress.join(5)
    final = [q.find(job_id) for job_id in ids]
    if st.json:
        render.emit_json({"jobs": [st.job_dict(job, with_output=False)
                                   for job in final if job],
                          "status": q.status().to_dict()})
        return
    click.echo("\nResult:")
    render.job_table([job for job in final if job], q.now(), st.job_defaults())
    click.echo("\nThe store now:")
    render.counts_table(q.status().counts)
    click.echo("")
    prefix = "queuectl" + (f" --db {st.db}" if st.db else "")
    click.echo("Try next:")
    for example in ("status", "dlq list", f"show {ids[5]}", f"logs {ids[0]}"):
        click.echo(f"  {prefix} {example}")


class _Progress(threading.Thread):
    """Prints each state change of the demo jobs and stops the worker once all ended."""

    def __init__(self, url: str, ids: list[str], supervisor: Any, quiet: bool) -> None:
        super().__init__(name="demo-progress", daemon=True)
        self.url, self.ids, self.supervisor, self.quiet = url, ids, supervisor, quiet

    def run(self) -> None:
        from queuectl import jobevents as ev
        from queuectl.queue import Queue

        seen: dict[str, JobState] = {}
        started = time.monotonic()
        with Queue(self.url) as q:
            for event in q.watch(self.ids, DEMO_DEADLINE_S):
                if not isinstance(event, ev.StateChanged):
                    continue
                job = event.job
                before = seen.get(job.id)
                seen[job.id] = job.state
                if before is not None and not self.quiet:
                    note = f"  ({job.error})" if job.error and job.state in (
                        JobState.FAILED, JobState.DEAD) else ""
                    click.echo(f"  {time.monotonic() - started:5.1f}s  {job.id:<28} "
                               f"{before.value:>10} -> {job.state.value}{note}")
        self.supervisor.request_stop("demo finished")
