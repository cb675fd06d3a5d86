"""Queues as objects: list them, pause and resume them, limit how many of their jobs
run at once, set their retry rules and hooks."""

from __future__ import annotations

from typing import Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state


@click.group("queue", invoke_without_command=True)
@json_option
@click.pass_context
def queue_group(ctx: click.Context) -> None:
    """Queues: list them with their depth, pause and resume them, limit them, set
    their hooks.

    \b
      queuectl queue list
      queuectl queue pause mail        # no worker takes mail's jobs; running ones finish
      queuectl queue resume mail
      queuectl queue pause --all
      queuectl queue limit mail 3      # at most 3 of mail's jobs run at once, all hosts
      queuectl queue limit mail none
      queuectl queue hook mail --on-dead 'notify-send "$QUEUECTL_JOB_ID died"'
      queuectl queue policy mail --retry-on 75,timeout --no-retry-on 2
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
             q["total"], "-" if q["limit"] is None else q["limit"],
             render.retry_rules_text(q["retry_policy"]), _hooks_text(q)] for q in queues]
    render.table(["QUEUE", "STATUS", "PENDING", "SCHEDULED", "RUNNING", "FAILED", "HELD",
                  "DEAD", "TOTAL", "LIMIT", "RETRY RULES", "HOOKS"], rows,
                 ["yellow" if q["paused"] else None for q in queues], empty="No queues.")


HOOK_SHOWN = 30  # characters of a hook's command in `queue list`


def _hooks_text(q: dict[str, object]) -> str:
    """`dead: notify.sh $QUEUECTL_JOB_ID`: the queue's own hooks ("off": none for this
    queue; "-": the global ones apply)."""
    parts = []
    for key, label in (("on_dead", "dead"), ("on_complete", "complete")):
        value = q.get(key)
        if isinstance(value, str):
            text = value if len(value) <= HOOK_SHOWN else value[:HOOK_SHOWN - 1] + "…"
            parts.append(f"{label}: {render.visible(text) if text else 'off'}")
    return "; ".join(parts) or "-"


@queue_group.command("hook")
@click.argument("name", metavar="QUEUE", shell_complete=complete.queue_names)
@click.option("--on-dead", metavar="CMD",
              help='Run CMD (sh -c) when a job of QUEUE ends dead; "" = none for this '
                   "queue, whatever the global on-dead.")
@click.option("--on-complete", metavar="CMD",
              help="Run CMD when a job of QUEUE completes.")
@click.option("--clear", is_flag=True, help="Remove the queue's hooks (the global "
              "`config set on-dead/on-complete` apply again).")
@json_option
def queue_hook(name: str, on_dead: Optional[str], on_complete: Optional[str],
               clear: bool) -> None:
    """A queue's own hooks: a command run once per job that ends dead (or completed),
    on one supervisor, with the job in QUEUECTL_JOB_ID, QUEUECTL_JOB_STATE,
    QUEUECTL_EXIT_CODE, QUEUECTL_ERROR, QUEUECTL_QUEUE, QUEUECTL_ATTEMPTS and
    QUEUECTL_COMMAND.  It overrides the global hook (`config set on-dead CMD`); it
    may run for at most `hook-timeout` seconds, and is never run again.  `queuectl
    hooks` lists the runs.

    \b
      queuectl queue hook mail --on-dead 'curl -d "$QUEUECTL_JOB_ID died" https://ntfy.sh/ops'
      queuectl queue hook mail --on-complete 'echo "$QUEUECTL_JOB_ID" >> done.txt'
      queuectl queue hook batch --on-dead ""     # no on-dead hook for batch
      queuectl queue hook mail --clear
    """
    st = state()
    dead, complete_ = st.queue().set_queue_hooks(name, on_dead=on_dead,
                                                 on_complete=on_complete, clear=clear)
    if st.json:
        render.emit_json({"queue": name, "on_dead": dead, "on_complete": complete_})
        return
    for label, value in (("on-dead", dead), ("on-complete", complete_)):
        shown = "(global)" if value is None else (render.visible(value) or "(none)")
        click.echo(f"{render.visible(name)} {label}: {shown}")


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


@click.command("hooks")
@click.option("--job", "job", metavar="ID", shell_complete=complete.job_ids,
              help="Only this job's hook runs.")
@click.option("--limit", "-n", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="How many of the newest runs.")
@json_option
def hooks_cmd(job: Optional[str], limit: int) -> None:
    """Hook runs (on-dead, on-complete), newest first: waiting, running, ok, failed,
    timeout, error, or lost (its supervisor died while it ran; not run again).

    \b
      queuectl hooks
      queuectl hooks --job 3f2a --json
    """
    st = state()
    events = st.queue().hook_events(limit, job)
    if st.json:
        render.emit_json(events)
        return
    styles = [None if e["status"] in ("ok", "waiting", "running") else "red" for e in events]
    render.table(["ID", "JOB", "EVENT", "STATUS", "DETAIL", "HOOK"],
                 [[e["id"], e["job_id"], e["event"], e["status"],
                   render.visible(e["detail"] or "-"), render.visible(e["hook"])]
                  for e in events], styles, empty="No hook runs.")


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
