"""`queuectl metrics`: runs by outcome, rates, durations, waits, depth and slots."""

from __future__ import annotations

from typing import Any, Optional

import click

from queuectl.cli import render
from queuectl.cli.context import json_option, state
from queuectl.jobspec import check_queue_name
from queuectl.times import ago, parse_duration

EPILOG = """\b
Examples:
  queuectl metrics                          # the last hour, overall and per queue
  queuectl metrics --since 15m --queue mail
  queuectl metrics --json                   # the figures as one JSON object
  queuectl metrics --format prometheus      # the Prometheus text format

\b
A run is one attempt that ended with a result: completed, failed (to be retried)
or dead (its last attempt failed); timeout counts the runs among them that hit their
time limit, cancelled the jobs cancelled in the window.  Success rate: completed /
all runs.  Percentiles are exact (nearest rank) over the window's runs, its latest
5,000 when it held more; the counts cover every run.  The queue wait is due time to
start of each completed or dead job's last run.  Busy slots are the jobs the live
workers hold in processing now.  Read from the store: every host's workers count."""


def _secs(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    return ago(value)


def _percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _rate(values: dict[str, float]) -> str:
    return f"{values['per_min']:g}/min"


def _overall(report: dict[str, Any], window: str) -> None:
    fig = report["overall"]
    runs = fig["runs"]
    click.echo(f"Store: {report['store']}")
    click.echo(f"Window: the last {window}" + (f", queue {report['queue']}"
                                                 if report["queue"] else ""))
    click.echo(f"Runs: {runs['completed']} completed, {runs['failed']} failed (retried), "
               f"{runs['dead']} dead, {runs['cancelled']} cancelled; {runs['timeout']} "
               f"timed out; success rate {_percent(fig['success_rate'])}")
    put = fig["throughput"]
    click.echo(f"Throughput: {_rate(put['1m'])} (1m), {_rate(put['5m'])} (5m), "
               f"{_rate(put['15m'])} (15m), {_rate(put['window'])} "
               f"({put['window']['runs']} runs in the window)")
    dur, wait = fig["duration_s"], fig["wait_s"]
    click.echo(f"Run duration: p50 {_secs(dur['p50'])}, p95 {_secs(dur['p95'])}, "
               f"p99 {_secs(dur['p99'])}, max {_secs(dur['max'])}")
    click.echo(f"Queue wait: p50 {_secs(wait['p50'])}, p95 {_secs(wait['p95'])}, "
               f"p99 {_secs(wait['p99'])}")
    click.echo(f"Retries: {fig['retries']}")
    click.echo("Depth: " + ", ".join(f"{name} {n}" for name, n in fig["depth"].items()))
    oldest = fig["oldest_waiting_age_s"]
    click.echo("Oldest waiting job: " + ("-" if oldest is None else f"{ago(oldest)} ago"))
    processes = fig["workers"]  # supervisor processes; each slot is a worker
    click.echo(f"Workers: {fig['slots']} ({processes} "
               f"process{'' if processes == 1 else 'es'}), {fig['busy_slots']} busy "
               f"({_percent(fig['utilisation'])})")


def _per_queue(report: dict[str, Any]) -> None:
    rows = []
    for name, fig in report["queues"].items():
        runs, depth = fig["runs"], fig["depth"]
        rows.append([name, runs["completed"], runs["failed"], runs["dead"], runs["cancelled"],
                     _percent(fig["success_rate"]), _rate(fig["throughput"]["5m"]),
                     _secs(fig["duration_s"]["p50"]), _secs(fig["duration_s"]["p95"]),
                     _secs(fig["wait_s"]["p95"]),
                     f"{depth['pending'] + depth['scheduled'] + depth['failed']}"
                     + ("+" if fig["depth_capped"] else ""),
                     f"{fig['busy_slots']}/{fig['slots']}",
                     _secs(fig["oldest_waiting_age_s"])])
    click.echo("")
    render.table(["QUEUE", "COMPLETED", "FAILED", "DEAD", "CANCELLED", "SUCCESS", "RATE 5m",
                  "P50", "P95", "WAIT P95", "WAITING", "BUSY", "OLDEST"], rows,
                 empty="No queue has jobs or runs in the window.")


@click.command(epilog=EPILOG)
@click.option("--since", default="1h", show_default=True, metavar="DURATION",
              help="The window: runs that ended this long ago or later (90s, 15m, 1h, 1d).")
@click.option("--queue", "-q", metavar="NAME", help="Only this queue.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "prometheus"]),
              default="text", show_default=True,
              help="Output format (json = --json; prometheus: the text exposition).")
@json_option
def metrics(since: str, queue: Optional[str], fmt: str) -> None:
    """Runs by outcome, success rate, throughput, durations, waits, depth, slots."""
    st = state()
    seconds = parse_duration(since, what="--since")
    if queue is not None:
        check_queue_name(queue)
    if fmt == "prometheus":
        import sys

        from queuectl import promcollector  # prometheus_client only here

        sys.stdout.write(promcollector.exposition(st.queue(), since_s=seconds,
                                                  queue_name=queue).decode("utf-8"))
        return
    report = st.queue().metrics(seconds, queue)
    if st.json or fmt == "json":
        render.emit_json(report.to_dict())
        return
    data = report.to_dict()
    _overall(data, since)
    _per_queue(data)


__all__ = ["metrics"]
