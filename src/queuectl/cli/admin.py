"""Store-wide commands: status, cleanup, purge, clear, migrate, doctor, time."""

from __future__ import annotations

import time
from typing import Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import confirm_bulk, json_option, state
from queuectl.errors import InvalidInput
from queuectl.states import FINISHED, parse_state
from queuectl.times import ago, iso_utc, local_text, parse_duration


@click.command()
@click.option("--queue", "-q", "by_queue", is_flag=True,
              help="Also count the jobs of every queue, per state.")
@json_option
def status(by_queue: bool) -> None:
    """Jobs per state, live workers, the oldest waiting job, recent throughput.

    \b
      queuectl status
      queuectl status --queue         # and a row per queue
      queuectl status --json
    """
    st = state()
    report = st.queue().status()
    queues = st.queue().queue_counts() if by_queue else None
    if st.json:
        data = report.to_dict()
        if queues is not None:
            data["queues"] = {name: {s.value: n for s, n in counts.items()}
                              for name, counts in queues.items()}
        render.emit_json(data)
        return
    click.echo(f"Store: {report.url}")
    render.counts_table(report.counts)
    if queues is not None:
        render.queue_counts_table(queues)
    if report.due_waiting:
        from queuectl.queue import DUE_CAP

        many = f"{report.due_waiting:,}+" if report.due_waiting >= DUE_CAP \
            else f"{report.due_waiting:,}"
        click.echo(f"Due now: {many} of the scheduled/failed jobs (their time has come; "
                   "a worker takes them as pending)")
    if report.workers:
        from queuectl.models import worker_figures

        click.echo("Workers: " + render.workers_line(worker_figures(report.workers)))
    else:
        click.echo("Workers: none running (start one: queuectl worker start)")
    oldest = report.oldest_due_age_s
    click.echo("Oldest waiting job: " + ("-" if oldest is None else f"{ago(oldest)} ago"))
    click.echo(f"Finished in the last minute: {report.finished_last_minute}")
    if report.paused_queues:
        click.echo("Paused queues: " + ", ".join(render.visible(name) for name in
                                                report.paused_queues)
                   + " (queuectl queue resume NAME)")


@click.command()
@json_option
def cleanup() -> None:
    """Rescue jobs of dead workers, then delete finished jobs past `retention`.

    \b
      queuectl cleanup
      queuectl config set retention 7d && queuectl cleanup
    """
    st = state()
    report, purged = st.queue().cleanup()
    if st.json:
        render.emit_json({"dead_workers": report.dead_workers, "requeued": report.requeued,
                          "buried": report.buried, "purged": purged})
        return
    click.echo(f"{len(report.dead_workers)} dead worker(s) removed, "
               f"{len(report.requeued)} job(s) put back to pending, "
               f"{len(report.buried)} moved to the DLQ (rescued too often), "
               f"{purged} old finished job(s) deleted")


@click.command()
@click.option("--older-than", metavar="DURATION",
              help="Delete finished jobs that finished longer ago than this "
                   "(7d, 12h, 3600; default: config retention).")
@click.option("--state", "-s", "state_names", multiple=True, metavar="STATE",
              shell_complete=complete.state_names,
              help="Only completed, dead or cancelled jobs (repeatable).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def purge(older_than: Optional[str], state_names: tuple[str, ...], yes: bool) -> None:
    """Delete finished jobs (completed, dead, cancelled) older than a duration (asks
    first on a terminal; needs --yes in scripts).

    \b
      queuectl purge --older-than 7d
      queuectl purge --older-than 1h --state completed --yes
    """
    st = state()
    seconds = None if older_than is None else parse_duration(older_than, what="--older-than")
    states = [parse_state(name) for name in state_names]
    for chosen in states:
        if chosen not in FINISHED:
            raise InvalidInput(f"only finished jobs can be purged, not {chosen.value}")
    q = st.queue()
    if seconds is None:
        seconds = q.settings().retention
    which = "/".join(s.value for s in states) if states else "finished"
    confirm_bulk(yes, lambda: f"Delete {which} jobs that finished more than "
                              f"{ago(seconds)} ago?", f"delete {which} jobs")
    removed = q.purge(seconds, states or None)
    if st.json:
        render.emit_json({"purged": removed, "older_than_s": seconds})
    else:
        click.echo(f"{removed} finished job(s) deleted")


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
def clear(yes: bool) -> None:
    """Delete every job (asks first on a terminal; needs --yes in scripts).

    \b
      queuectl clear --yes
    """
    st = state()
    confirm_bulk(yes, lambda: f"Delete all {st.queue().status().total} job(s) in "
                              f"{st.queue().display_url}?", "delete every job")
    removed = st.queue().clear()
    if st.json:
        render.emit_json({"deleted": removed})
    else:
        click.echo(f"{removed} job(s) deleted")


@click.command()
@json_option
def doctor() -> None:
    """Check the whole store: exit 0 when healthy, 3 when it is damaged.

    SQLite: PRAGMA integrity_check reads every page (seconds on a big store; every
    command does only a cheap check when it opens the store).  PostgreSQL: the
    server answers and the schema is one this queuectl knows; the server checks
    its own pages.  Nothing is written.

    \b
      queuectl doctor
      queuectl --db /srv/jobs.db doctor --json
    """
    _report_health()


def _report_health() -> None:
    from queuectl.doctor import check_store

    st = state()
    health = check_store(st.db)
    if st.json:
        render.emit_json(health.to_dict())
    else:
        click.echo(f"Store: {health.store} ({health.kind})")
        if health.schema_version is not None:
            click.echo(f"Schema version: {health.schema_version}")
        for note in health.notes:
            click.echo(f"Note: {note}")
        if health.ok:
            click.echo("Integrity: ok")
        else:
            click.echo(f"Integrity: {len(health.problems)} problem(s)")
            for problem in health.problems[:PROBLEMS_SHOWN]:
                click.echo(f"  {render.visible(problem)}")
            if len(health.problems) > PROBLEMS_SHOWN:
                click.echo(f"  ... and {len(health.problems) - PROBLEMS_SHOWN} more "
                           "(all of them with --json)")
    error = health.error()
    if error is not None:
        raise error


PROBLEMS_SHOWN = 20


@click.command()
@click.option("--check", is_flag=True,
              help="Only check the store, as `queuectl doctor` does; change nothing.")
@json_option
def migrate(check: bool) -> None:
    """Create or upgrade the store's schema (also done automatically on first use).

    \b
      queuectl migrate
      queuectl migrate --check      # the full check of `queuectl doctor`
      queuectl --db postgresql://host/queue migrate
    """
    if check:
        _report_health()
        return
    st = state()
    q = st.queue()
    version = q.schema_version()
    if st.json:
        render.emit_json({"store": q.display_url, "schema_version": version})
    else:
        click.echo(f"{q.display_url}: schema version {version}")


@click.command("time")
@json_option
def time_cmd() -> None:
    """The current local and UTC time (the forms --run-at understands).

    \b
      queuectl time
      queuectl time --json
    """
    now = time.time()
    if state().json:
        render.emit_json({"local": local_text(now), "utc": iso_utc(now),
                          "epoch": round(now, 3), "timezone": time.strftime("%Z")})
        return
    click.echo(f"Local: {local_text(now)} {time.strftime('%Z')}")
    click.echo(f"UTC:   {iso_utc(now)}")


__all__ = ["status", "cleanup", "purge", "clear", "migrate", "doctor", "time_cmd"]
