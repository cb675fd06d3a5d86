"""Queues as objects: list them, pause and resume them, set their retry rules."""

from __future__ import annotations

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state


@click.group("queue", invoke_without_command=True)
@json_option
@click.pass_context
def queue_group(ctx: click.Context) -> None:
    """Queues: list them with their depth, pause and resume them.

    \b
      queuectl queue list
      queuectl queue pause mail        # no worker takes mail's jobs; running ones finish
      queuectl queue resume mail
      queuectl queue pause --all
      queuectl queue policy mail --retry-on 75,timeout --no-retry-on 2
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(queue_list)


@queue_group.command("list")
@json_option
def queue_list() -> None:
    """Every queue that has jobs or settings: jobs per state, running, paused.

    \b
      queuectl queue list
      queuectl queue list --json
    """
    st = state()
    queues = st.queue().queue_list()
    if st.json:
        render.emit_json(queues)
        return
    rows = [[q["name"], "paused" if q["paused"] else "active", q["counts"]["pending"],
             q["counts"]["scheduled"], q["running"], q["counts"]["failed"],
             q["counts"]["waiting"] + q["counts"]["blocked"], q["counts"]["dead"],
             q["total"], "-" if q["limit"] is None else q["limit"],
             render.retry_rules_text(q["retry_policy"])] for q in queues]
    render.table(["QUEUE", "STATUS", "PENDING", "SCHEDULED", "RUNNING", "FAILED", "HELD",
                  "DEAD", "TOTAL", "LIMIT", "RETRY RULES"], rows,
                 ["yellow" if q["paused"] else None for q in queues], empty="No queues.")


def _pause_command(name: str, paused: bool, help_text: str) -> click.Command:
    @queue_group.command(name, help=help_text)
    @click.argument("names", nargs=-1, metavar="QUEUE...",
                    shell_complete=complete.queue_names)
    @click.option("--all", "every", is_flag=True,
                  help="Every queue that has jobs or settings (and default).")
    @json_option
    def command(names: tuple[str, ...], every: bool) -> None:
        st = state()
        if every and names:
            from queuectl.errors import InvalidInput

            raise InvalidInput("give queue names or --all, not both")
        done = st.queue().set_paused(list(names), paused, every=every)
        if st.json:
            render.emit_json({"queues": done, "paused": paused})
            return
        for queue in done:
            click.echo(f"{render.visible(queue)}: {'paused' if paused else 'resumed'}")
    return command


pause = _pause_command("pause", True, """Pause queues: no worker on any host takes their
jobs until they are resumed; jobs already running finish, and new jobs are accepted.

\b
  queuectl queue pause mail
  queuectl queue pause --all
""")
resume = _pause_command("resume", False, """Resume paused queues (idle workers are woken).

\b
  queuectl queue resume mail
  queuectl queue resume --all
""")


@queue_group.command("policy")
@click.argument("name", metavar="QUEUE", shell_complete=complete.queue_names)
@click.option("--retry-on", metavar="TERMS",
              help="Retry only these failures of the queue's jobs: exit codes, ranges, "
                   "signals, timeout, spawn-error, any (e.g. 75,64-78,SIGKILL).")
@click.option("--no-retry-on", metavar="TERMS",
              help="These failures go straight to dead (e.g. 2,126,127).")
@click.option("--clear", is_flag=True, help="Remove the queue's retry rules.")
@json_option
def policy(name: str, retry_on: str | None, no_retry_on: str | None, clear: bool) -> None:
    """Set a queue's retry rules: which failures of its jobs are retried.

    A job's own rules (enqueue --retry-on/--no-retry-on) win over its queue's, and a
    queue's win over the config's (config set retry-on/no-retry-on).  A list not given
    is kept.  Running workers apply the change from their next heartbeat.

    \b
      queuectl queue policy mail --retry-on 75,SIGKILL,timeout
      queuectl queue policy mail --no-retry-on 2,126,127
      queuectl queue policy mail --clear
    """
    st = state()
    stored = st.queue().set_queue_policy(name, retry_on, no_retry_on, clear=clear)
    if st.json:
        render.emit_json({"queue": name, "retry_policy": stored})
        return
    click.echo(f"{render.visible(name)}: retry rules "
               + (render.retry_rules_text(stored) if stored else "cleared"))
