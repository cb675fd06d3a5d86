"""The dead-letter queue: jobs that failed 1 + max_retries times (state `dead`)."""

from __future__ import annotations

from typing import Any, Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import confirm_bulk, json_option, state
from queuectl.cli.jobs import edit_changes, edit_options
from queuectl.errors import InvalidInput
from queuectl.states import JobState


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def dlq(ctx: click.Context) -> None:
    """The dead-letter queue: list, retry or purge dead jobs.

    \b
      queuectl dlq list
      queuectl dlq retry 08232c92          # attempts reset, history kept
      queuectl dlq retry --all
      queuectl dlq purge
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(dlq_list)


@dlq.command("list")
@click.option("--limit", "-n", default=None, type=int,
              help="Show at most N jobs, newest first (0 = all; default 50 on a "
                   "terminal, else all, streamed).")
@json_option
def dlq_list(limit: Optional[int] = None) -> None:
    """List dead jobs with their last error.

    \b
      queuectl dlq list
      queuectl dlq list --limit 10 --json
    """
    from queuectl.cli.jobs import list_limit, more_note

    st = state()
    cap = list_limit(limit)
    q = st.queue()
    jobs = q.iter_jobs([JobState.DEAD], None, cap)
    if st.json:
        render.emit_json_stream(st.job_dict(job, with_output=False) for job in jobs)
        return
    tty = render.is_tty()
    now = q.now()
    rows = ([render.short_id(job.id) if tty else job.id, job.attempts,
             render.ago(now - (job.finished_at or job.updated_at)) + " ago",
             render.shorten(job.command, 30) if tty else job.command, job.error or "-"]
            for job in jobs)
    headers = ["ID", "ATTEMPTS", "DIED", "COMMAND", "ERROR"]
    empty = "The dead-letter queue is empty."
    if not tty:
        render.stream_table(headers, rows, empty=empty)
        return
    listed = list(rows)
    render.table(headers, listed, empty=empty, middle_cut=0)
    if cap is not None and len(listed) == cap:
        more_note(len(listed), q.count_jobs([JobState.DEAD]))


@dlq.command("retry")
@click.argument("job_ref", required=False, metavar="[ID]", shell_complete=complete.job_ids)
@click.option("--job-id", metavar="ID", help="Same as the ID argument.",
              shell_complete=complete.job_ids)
@click.option("--all", "all_jobs", is_flag=True, help="Retry every dead job.")
@edit_options
@json_option
def dlq_retry(job_ref: Optional[str], job_id: Optional[str], all_jobs: bool,
              **edits: Any) -> None:
    """Move a dead job back to pending, with its attempts reset (history is kept).

    The options change the job first, as `retry`'s do (the history records it).

    \b
      queuectl dlq retry job1
      queuectl dlq retry --job-id 08232c92
      queuectl dlq retry --all
      queuectl dlq retry job1 --command "./import.sh --skip-bad-rows"
    """
    st = state()
    changes = edit_changes(edits)
    refs = [r for r in (job_ref, job_id) if r]
    if all_jobs and changes:
        raise InvalidInput("changes apply to one job: give its id, not --all")
    if all_jobs and refs:
        raise InvalidInput("give a job id or --all, not both")
    if len(refs) == 2 and refs[0] != refs[1]:
        raise InvalidInput("give the job id once (as ID or --job-id)")
    if not all_jobs and not refs:
        raise InvalidInput("which job? queuectl dlq retry ID (or --job-id ID, or --all)")
    q = st.queue()
    if all_jobs:
        moved = q.dlq_retry_all()
        if st.json:
            render.emit_json({"retried": len(moved), "ids": [j.id for j in moved]})
        else:
            click.echo(f"{len(moved)} job(s) moved back to pending")
        return
    job = q.dlq_retry(refs[0], changes)
    if st.json:
        render.emit_json(st.job_dict(job, with_output=False))
    else:
        click.echo(f"{job.id}: {job.state.value} (attempts reset)")


@dlq.command("purge")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def dlq_purge(yes: bool) -> None:
    """Delete every dead job (asks first on a terminal; needs --yes in scripts).

    \b
      queuectl dlq purge
      queuectl dlq purge --yes        # in a script
    """
    st = state()
    confirm_bulk(yes, lambda: f"Delete {st.queue().count_jobs([JobState.DEAD])} dead job(s)?",
                 "delete every dead job")
    removed = st.queue().dlq_purge()
    if st.json:
        render.emit_json({"purged": removed})
    else:
        click.echo(f"{removed} dead job(s) deleted")
