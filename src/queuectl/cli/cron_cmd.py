"""`queuectl cron`: schedules whose runs any running supervisor enqueues."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any, Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state
from queuectl.models import CronSchedule


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def cron(ctx: click.Context) -> None:
    """Cron schedules: a job enqueued at each instant of a schedule, once however many
    supervisors and hosts run (any running supervisor fires it).

    \b
      queuectl cron add backup "0 3 * * *" "tar czf /tmp/home.tgz ~" --tz Europe/Berlin
      queuectl cron list
      queuectl cron run backup          # one run now
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(cron_list)


@cron.command("add")
@click.argument("name")
@click.argument("schedule")
@click.argument("command", nargs=-1, required=True)
@click.option("--queue", "-q", metavar="NAME", help="Queue of the runs (default 'default').",
              shell_complete=complete.queue_names)
@click.option("--priority", "-p", metavar="1-10", help="Priority of the runs (default 5).")
@click.option("--timeout", metavar="SECONDS", help="Kill a run after this long.")
@click.option("--max-retries", metavar="N", help="Retries of a failed run (default: config).")
@click.option("--tz", metavar="ZONE",
              help="Time zone of the schedule, e.g. Europe/Berlin (default: local time).")
@click.option("--unique", is_flag=True,
              help="While a run is live, an instant's run is that job (unique key "
                   "cron:NAME) instead of a second one.")
@click.option("--catch-up", type=click.Choice(["none", "one", "all"]), default="one",
              show_default=True,
              help="After instants were missed (no supervisor ran): none, one run, or "
                   "one per missed instant.")
@click.option("--no-overlap", is_flag=True,
              help="Skip an instant while the previous run is still live.")
@json_option
def cron_add(name: str, schedule: str, command: tuple[str, ...], queue: Optional[str],
             priority: Optional[str], timeout: Optional[str], max_retries: Optional[str],
             tz: Optional[str], unique: bool, catch_up: str, no_overlap: bool) -> None:
    """Add a schedule: 5 cron fields (minute hour day month weekday) or @hourly,
    @daily, @weekly, @monthly, then the command.

    \b
      queuectl cron add report "*/15 * * * *" ./report.sh --queue reports
      queuectl cron add backup @daily "pg_dump db > /tmp/db.sql" --no-overlap
      queuectl cron add standup "30 9 * * 1-5" "notify standup" --tz Europe/Berlin
    """
    from queuectl import cron as crontab

    fields: dict[str, Any] = {"command": command[0] if len(command) == 1
                              else shlex.join(command)}
    for key, value in (("queue", queue), ("priority", priority), ("timeout", timeout),
                       ("max_retries", max_retries)):
        if value is not None:
            fields[key] = value
    st = state()
    added = crontab.add(st.queue(), name, schedule, fields, tz=tz, unique=unique,
                        catch_up=catch_up, no_overlap=no_overlap)
    if st.json:
        render.emit_json(added.to_dict())
        return
    click.echo(f"{added.name}: next run {_when(added.next_fire_at, added.tz)} "
               f"({added.tz})")


@cron.command("list")
@json_option
def cron_list() -> None:
    """List schedules: next run, last run and its job's state.

    \b
      queuectl cron list
      queuectl cron list --json
    """
    from queuectl import cron as crontab

    st = state()
    q = st.queue()
    schedules = crontab.list_all(q)
    if st.json:
        render.emit_json([s.to_dict() for s in schedules])
        return
    now = q.now()
    rows = [[s.name, s.schedule, "paused" if s.paused else _when(s.next_fire_at, s.tz),
             _last(s, now), s.last_state or "-"] for s in schedules]
    render.table(["NAME", "SCHEDULE", "NEXT RUN", "LAST RUN", "STATE"], rows,
                 empty="No cron schedules.")


@cron.command("remove")
@click.argument("name", shell_complete=complete.cron_names)
@json_option
def cron_remove(name: str) -> None:
    """Delete a schedule (the jobs it enqueued stay).

    \b
      queuectl cron remove backup
    """
    from queuectl import cron as crontab

    st = state()
    crontab.remove(st.queue(), name)
    if st.json:
        render.emit_json({"removed": name})
    else:
        click.echo(f"{name}: removed")


@cron.command("pause")
@click.argument("name", shell_complete=complete.cron_names)
@json_option
def cron_pause(name: str) -> None:
    """Stop firing a schedule until it is resumed.

    \b
      queuectl cron pause backup
    """
    _set_paused(name, True)


@cron.command("resume")
@click.argument("name", shell_complete=complete.cron_names)
@json_option
def cron_resume(name: str) -> None:
    """Fire a paused schedule again, from its next instant (the instants of the pause
    are not caught up).

    \b
      queuectl cron resume backup
    """
    _set_paused(name, False)


@cron.command("run")
@click.argument("name", shell_complete=complete.cron_names)
@json_option
def cron_run(name: str) -> None:
    """Enqueue one run of a schedule now (its next instants stay as they are).

    \b
      queuectl cron run backup
    """
    from queuectl import cron as crontab

    st = state()
    job_id = crontab.run_now(st.queue(), name)
    if st.json:
        render.emit_json({"name": name, "job_id": job_id})
    else:
        click.echo(job_id)


def _set_paused(name: str, paused: bool) -> None:
    from queuectl import cron as crontab

    st = state()
    found = crontab.set_paused(st.queue(), name, paused)
    if st.json:
        render.emit_json(found.to_dict())
    elif paused:
        click.echo(f"{name}: paused")
    else:
        click.echo(f"{name}: resumed, next run {_when(found.next_fire_at, found.tz)}")


def _when(ts: float, tz: str) -> str:
    """An instant as the schedule's zone reads it: `2026-12-03 10:00`."""
    from queuectl.cron import zone
    from queuectl.errors import InvalidInput

    try:
        return datetime.fromtimestamp(ts, zone(tz)).strftime("%Y-%m-%d %H:%M")
    except InvalidInput:  # a zone this host's tzdata lacks: say it in UTC
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _last(schedule: CronSchedule, now: float) -> str:
    if schedule.last_fire_at is None:
        return "never"
    return render.ago(now - schedule.last_fire_at) + " ago"
