"""Queues as objects: list them, pause and resume them, limit how many of their jobs
run at once."""

from __future__ import annotations

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state


@click.group("queue", invoke_without_command=True)
@json_option
@click.pass_context
def queue_group(ctx: click.Context) -> None:
    """Queues: list them with their depth, pause and resume them, limit them.

    \b
      queuectl queue list
      queuectl queue pause mail        # no worker takes mail's jobs; running ones finish
      queuectl queue resume mail
      queuectl queue pause --all
      queuectl queue limit mail 3      # at most 3 of mail's jobs run at once, all hosts
      queuectl queue limit mail none
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(queue_list)


@queue_group.command("list")
@json_option
def queue_list() -> None:
    """Every queue that has jobs or settings: jobs per state, running, paused, and its
    concurrency limit (`-`: none).

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
             q["total"], "-" if q["limit"] is None else q["limit"]] for q in queues]
    render.table(["QUEUE", "STATUS", "PENDING", "SCHEDULED", "RUNNING", "FAILED", "HELD",
                  "DEAD", "TOTAL", "LIMIT"], rows,
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


@queue_group.command("limit")
@click.argument("name", metavar="QUEUE", shell_complete=complete.queue_names)
@click.argument("limit", metavar="N|none")
@json_option
def queue_limit(name: str, limit: str) -> None:
    """At most N jobs of QUEUE run at once across every host (`none`: no limit).

    Every claim checks the limit inside its statement, so no timing of workers on
    any host runs more.  Jobs already running over a lowered limit finish; none
    starts until the queue is below it.  A worker serving several queues keeps taking
    the others' jobs while one is at its limit.

    \b
      queuectl queue limit reports 3
      queuectl queue limit reports none
    """
    from queuectl.errors import InvalidInput

    st = state()
    text = limit.strip().lower()
    value: int | None
    if text == "none":
        value = None
    elif text.isdigit() and text.isascii():
        value = int(text)
    else:
        raise InvalidInput(f"a concurrency limit is a whole number or none, "
                           f"got {render.visible(limit)!r}")
    done = st.queue().set_limit(name, value)
    if st.json:
        render.emit_json({"queue": done, "limit": value})
        return
    click.echo(f"{render.visible(done)}: "
               + ("no limit" if value is None else f"at most {value} running at once"))
