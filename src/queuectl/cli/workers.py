"""Worker commands: worker start/stop/status, the `start`/`stop`/`workers` aliases and
the `scheduler` names for a detached supervisor."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state
from queuectl.errors import InvalidInput, NotFound
from queuectl.jobspec import check_queue_name
from queuectl.times import ago, parse_duration


def _start_options(func: Any) -> Any:
    options = [
        click.option("--count", "-c", "--workers", "count", type=int, metavar="N",
                     help="Jobs run at once (default: config worker-count)."),
        click.option("--queue", "-q", "queues", multiple=True, metavar="NAME",
                     help="Serve only this queue (repeatable; default all).",
                     shell_complete=complete.queue_names),
        click.option("--burst", is_flag=True, help="Exit when nothing is runnable."),
        click.option("--timeout", "idle_timeout", metavar="SECONDS",
                     help="Exit after this long without work."),
        click.option("--detach", "-d", is_flag=True,
                     help="Run in the background (log in the data dir) and return."),
        click.option("--log-file", metavar="PATH",
                     help="Append the worker's log to PATH (instead of stderr, or of "
                          "the data dir's worker.log with --detach)."),
        json_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_worker(count: Optional[int], queues: tuple[str, ...], burst: bool,
                idle_timeout: Optional[str], detach: bool, log_file: Optional[str] = None,
                single: bool = False) -> None:
    """`single`: refuse when a supervisor of this store already runs on this host."""
    import os

    st = state()
    if log_file is not None:
        log_file = os.path.abspath(os.path.expanduser(log_file))
        folder = os.path.dirname(log_file)
        if not os.path.isdir(folder):
            raise InvalidInput(f"--log-file: no folder {folder}")
    if count is not None and not 1 <= count <= 512:
        raise InvalidInput("--count must be between 1 and 512")
    idle_s = None if idle_timeout is None else parse_duration(idle_timeout, what="--timeout")
    for name in queues:
        check_queue_name(name)
    q = st.queue()
    if single:
        from queuectl.maintenance import this_host

        running = [info.pid for info, alive in q.workers()
                   if alive and info.host == this_host()]
        if running:
            from queuectl.errors import WorkerError

            raise WorkerError(f"already running (pid {', '.join(map(str, running))}); "
                              "--force starts another, queuectl scheduler stop stops it")
    slots = count or q.settings().worker_count
    if st.in_shell and not detach:
        # a foreground supervisor would hold the prompt until it stopped
        detach = True
        if not st.json:
            click.echo("(at the shell prompt, worker start runs in the background, "
                       "as --detach does)")
    if detach:
        from queuectl import daemon

        args = ["--count", str(slots)]
        for name in queues:
            args += ["--queue", name]
        if burst:
            args.append("--burst")
        if idle_timeout is not None:
            args += ["--timeout", idle_timeout]
        if log_file is not None:
            args += ["--log-file", log_file]
        started = daemon.start_detached(q, args)
        log_path = log_file or started.log_path
        if st.json:
            render.emit_json({"pid": started.pid, "slots": slots, "log": log_path})
        else:
            click.echo(f"Worker started in the background: pid {started.pid}, {slots} "
                       f"slot(s); log: {log_path}")
            click.echo("Stop it with: queuectl worker stop")
        return
    from queuectl import daemon
    from queuectl.paths import open_private
    from queuectl.worker.supervisor import Supervisor, SupervisorOptions

    stream = None
    if log_file is not None:
        try:
            stream = os.fdopen(open_private(log_file), "a", buffering=1)
        except OSError as exc:
            raise InvalidInput(f"--log-file: cannot open {log_file}: "
                               f"{exc.strerror or exc}") from None
    st.setup_logging(q.settings().log_level, stream=stream)
    _lean_log_records()
    options = SupervisorOptions(slots=slots, queues=list(queues) or None, burst=burst,
                                idle_timeout_s=idle_s, flags=dict(st.flags))
    url = q.url
    pid_file = os.path.join(daemon.pid_dir(q), f"{os.getpid()}.pid")
    st.close()
    try:
        code = Supervisor(url, options).run()
    finally:
        daemon.remove_file(pid_file)  # a detached supervisor's pid file goes with it
    if code:
        raise click.exceptions.Exit(code)


def _lean_log_records() -> None:
    """A supervisor logs a line per job; its format (time, level, message) uses none of
    the caller, thread or process fields a log record otherwise looks up each time (the
    logging HOWTO's "Optimization"): ~2 us of ~9 per line."""
    import logging

    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


@click.group()
def worker() -> None:
    """Run, stop and inspect workers.

    \b
      queuectl worker start --count 4          # foreground; Ctrl-C stops gracefully
      queuectl worker start --count 4 --detach
      queuectl worker status
      queuectl worker stop                     # running jobs finish first
      queuectl worker stop --now               # kill running jobs, put them back
    """


@worker.command("start")
@_start_options
def worker_start(count: Optional[int], queues: tuple[str, ...], burst: bool,
                 idle_timeout: Optional[str], detach: bool, log_file: Optional[str]) -> None:
    """Run jobs with N concurrent slots until stopped.

    The first Ctrl-C (or SIGTERM) stops claiming and lets running jobs finish; a second
    one kills them and puts them back to pending.  `queuectl worker stop` is always
    graceful, however often it is given; `worker stop --now` kills at once.

    \b
      queuectl worker start --count 4
      queuectl worker start --count 2 --queue emails --burst
      queuectl worker start --detach        # in the background; at the shell prompt too
      queuectl worker start --log-file logs/queuectl.log
    """
    _run_worker(count, queues, burst, idle_timeout, detach, log_file)


@click.command("start")
@_start_options
def start(count: Optional[int], queues: tuple[str, ...], burst: bool,
          idle_timeout: Optional[str], detach: bool, log_file: Optional[str]) -> None:
    """Same as `worker start` (e.g. start --count 2 --timeout 10).

    \b
      queuectl start --count 2 --timeout 10
    """
    _run_worker(count, queues, burst, idle_timeout, detach, log_file)


def _stop(now: bool, wait: bool, wait_timeout: Optional[float]) -> None:
    st = state()
    q = st.queue()
    live = [info for info, alive in q.workers() if alive]
    report = q.stop_workers(now_mode=now)
    remaining: list[int] = []
    if wait and report.signalled:
        from queuectl import daemon

        remaining = daemon.wait_until_gone(q, report.signalled, wait_timeout)
    from queuectl.models import worker_figures

    figures = worker_figures(live)
    if st.json:  # "workers": the supervisor processes, as before
        render.emit_json({"workers": len(live), "signalled": report.signalled,
                          "requested": report.requested, "still_running": remaining,
                          "mode": "now" if now else "graceful",
                          "worker_count": figures["worker_count"],
                          "processes": figures["processes"]})
        return
    if not live:
        click.echo("No workers are running.")
        return
    remote = len(live) - len(report.signalled)
    how = "kill running jobs and put them back" if now else "finish running jobs"
    count = figures["worker_count"]
    click.echo(f"Asked {count} worker{'' if count == 1 else 's'} ({len(live)} "
               f"process{'' if len(live) == 1 else 'es'}) to stop ({how}).")
    if remote > 0:
        click.echo(f"{remote} process{'' if remote == 1 else 'es'} on other hosts will "
                   "see it at their next heartbeat.")
    if remaining:
        click.echo(f"Still running after the wait: pids {', '.join(map(str, remaining))}",
                   err=True)
        raise click.exceptions.Exit(1)


def _stop_options(func: Any) -> Any:
    func = json_option(func)
    func = click.option("--wait-timeout", type=float, metavar="SECONDS",
                        help="With --wait: give up after this long (exit 1).")(func)
    func = click.option("--wait", "-w", is_flag=True,
                        help="Return only when the local workers have exited.")(func)
    func = click.option("--now", is_flag=True,
                        help="Kill running jobs and put them back to pending "
                             "(no attempt counted).")(func)
    return func


@worker.command("stop")
@_stop_options
def worker_stop(now: bool, wait: bool, wait_timeout: Optional[float]) -> None:
    """Stop every worker of this store, on this host at once and on others via the store.

    Plain `worker stop` is graceful, however often it is given: workers stop claiming
    and running jobs finish.  `--now` kills running jobs and puts them back to pending
    (no attempt counted).  A worker's own Ctrl-C or SIGTERM is graceful the first time;
    a second one means now.

    \b
      queuectl worker stop
      queuectl worker stop --wait
      queuectl worker stop --now     # kill running jobs, put them back
    """
    _stop(now, wait, wait_timeout)


@click.command("stop")
@_stop_options
def stop(now: bool, wait: bool, wait_timeout: Optional[float]) -> None:
    """Same as `worker stop`.

    \b
      queuectl stop
      queuectl stop --now
    """
    _stop(now, wait, wait_timeout)


def _status(include_dead: bool) -> None:
    st = state()
    q = st.queue()
    now = q.now()
    from queuectl.models import worker_figures

    rows = [(info, alive) for info, alive in q.workers() if alive or include_dead]
    figures = worker_figures([info for info, alive in rows if alive])
    if st.json:
        # "workers" stays the list of supervisor processes; the counts are of live ones
        render.emit_json({"workers": [dict(info.to_dict(now), alive=alive)
                                      for info, alive in rows], **figures})
        return
    if figures["processes"]:
        click.echo(render.workers_line(figures))
    table_rows = []
    for info, alive in rows:
        table_rows.append([info.id, info.host, info.pid, f"{info.busy}/{info.slots}",
                           ",".join(info.queues) or "*", f"{ago(now - info.heartbeat_at)} ago",
                           info.jobs_done, f"{ago(now - info.started_at)}",
                           ("stopping" if info.stop_requested else "running") if alive
                           else "dead"])
    render.table(["PROCESS", "HOST", "PID", "BUSY", "QUEUES", "HEARTBEAT", "DONE", "UP",
                  "STATE"], table_rows,
                 empty="No workers are running. Start one: queuectl worker start")


@worker.command("status")
@click.option("--all", "-a", "include_dead", is_flag=True,
              help="Also show registrations of workers that died.")
@json_option
def worker_status(include_dead: bool) -> None:
    """Live workers: host, pid, busy slots, heartbeat age, jobs done.

    \b
      queuectl worker status
      queuectl worker status --all --json
    """
    _status(include_dead)


@click.command("workers")
@click.option("--all", "-a", "include_dead", is_flag=True,
              help="Also show registrations of workers that died.")
@json_option
def workers(include_dead: bool) -> None:
    """Same as `worker status`.

    \b
      queuectl workers
    """
    _status(include_dead)


# -- scheduler: another name for a detached supervisor -------------------------------
@click.group()
def scheduler() -> None:
    """A background worker supervisor and its log.

    \b
      queuectl scheduler start --workers 2 --auto
      queuectl scheduler status
      queuectl scheduler logs -f
      queuectl scheduler stop
    """


@scheduler.command("start")
@click.option("--workers", "-w", "count", type=int, metavar="N",
              help="Jobs run at once (default: config worker-count).")
@click.option("--queue", "-q", "queues", multiple=True, metavar="NAME",
              shell_complete=complete.queue_names)
@click.option("--auto", is_flag=True,
              help="S3's auto mode (workers run due jobs): what this scheduler always "
                   "does; there is no manual mode (see --help).")
@click.option("--force", is_flag=True,
              help="Start another even if a supervisor of this store already runs here.")
@click.option("--log-file", metavar="PATH", help="Append its log to PATH.")
@json_option
def scheduler_start(count: Optional[int], queues: tuple[str, ...], auto: bool,
                    force: bool, log_file: Optional[str]) -> None:
    """Start a detached supervisor that promotes scheduled jobs and runs due ones.

    Once per store and host: when one already runs here it refuses ("already running
    (pid ...)") unless --force.  S3's manual mode (a scheduler that only relabels due
    jobs while the user starts workers) has no counterpart: every queuectl worker
    relabels the due jobs it can run, so --auto is the only mode and is accepted as is.

    \b
      queuectl scheduler start --workers 2
      queuectl scheduler start --workers 2 --auto
      queuectl scheduler start --force      # a second one on this host
    """
    _run_worker(count, queues, False, None, True, log_file, single=not force)


@scheduler.command("stop")
@click.option("--now", is_flag=True, help="Kill running jobs and put them back.")
@json_option
def scheduler_stop(now: bool) -> None:
    """Stop the workers (running jobs finish first unless --now).

    \b
      queuectl scheduler stop
      queuectl scheduler stop --now
    """
    _stop(now, True, 60.0)


@scheduler.command("status")
@json_option
def scheduler_status() -> None:
    """Live workers of this store.

    \b
      queuectl scheduler status
    """
    _status(False)


@scheduler.command("logs")
@click.option("--lines", "-n", default=50, show_default=True, type=int,
              help="How many of the last lines to show.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines.")
@json_option
def scheduler_logs(lines: int, follow: bool) -> None:
    """The background workers' log.

    \b
      queuectl scheduler logs
      queuectl scheduler logs -n 200 -f
    """
    from queuectl import daemon

    st = state()
    path = daemon.log_path(st.queue())
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"no worker log yet ({path}); start one: queuectl scheduler start") \
            from None
    with handle:
        data = handle.read()
        tail = data.splitlines(keepends=True)[-lines:] if lines > 0 else []
        if st.json:  # a snapshot, like `logs --json`
            render.emit_json({"log": path, "lines": [line.decode("utf-8", "replace")
                                                     .rstrip("\n") for line in tail]})
            return
        sys.stdout.write(b"".join(tail).decode("utf-8", "replace"))
        sys.stdout.flush()
        while follow:
            chunk = handle.read()
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", "replace"))
                sys.stdout.flush()
            else:
                time.sleep(0.2)


__all__ = ["worker", "workers", "start", "stop", "scheduler"]
