"""Drawing output.  Core code returns data; this module turns it into tables on a
terminal (rich), plain aligned text when piped, or JSON with --json.  User text
(commands, output) is never interpreted as markup."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Mapping, Optional, Sequence

import click

from queuectl.models import Job
from queuectl.states import ORDER, JobState
from queuectl.times import ago, iso_utc, local_text

STATE_STYLE = {
    JobState.SCHEDULED: "cyan", JobState.PENDING: "blue", JobState.PROCESSING: "yellow",
    JobState.COMPLETED: "green", JobState.FAILED: "magenta", JobState.DEAD: "red",
    JobState.CANCELLED: "dim", JobState.WAITING: "cyan", JobState.BLOCKED: "red",
}


def is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _control_names() -> dict[int, str]:
    names = {code: "^" + chr(code + 64) for code in range(0x20)}  # ESC -> ^[
    names[0x7F] = "^?"
    names.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})  # C1: CSI...
    return names


_CONTROL = _control_names()
_CONTROL_MULTILINE = {k: v for k, v in _CONTROL.items() if k not in (0x09, 0x0A)}


def visible(text: str, multiline: bool = False) -> str:
    """`text` with every control character drawn visibly (ESC as `^[`, BEL as `^G`,
    C1 codes as `\\x9b`), so that what a job or a user wrote can never move the
    cursor, retitle or clear the terminal.  `multiline` keeps newlines and tabs
    (and the CR of a CRLF); a lone CR is drawn as `^M`.  Not for --json (JSON escapes
    them) nor for `logs` into a pipe (byte-exact)."""
    if text.isprintable() and "\x1b" not in text:
        return text
    if multiline:
        text = text.replace("\r\n", "\n")
        return text.translate(_CONTROL_MULTILINE)
    return text.translate(_CONTROL)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def emit_json_stream(items: Iterable[Any]) -> None:
    """A JSON array written item by item as they come (constant memory)."""
    out = sys.stdout
    first = True
    for item in items:
        text = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        out.write(("[\n  " if first else ",\n  ") + text)
        first = False
    out.write("[]\n" if first else "\n]\n")
    out.flush()


def stream_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                 empty: str = "(none)", sample: int = 500) -> None:
    """Plain aligned columns for a pipe, written as rows come: the widths are those
    of the first `sample` rows (a longer cell later pushes its line only)."""
    it = iter(rows)
    first: list[list[str]] = []
    for row in it:
        first.append(["" if c is None else visible(str(c)) for c in row])
        if len(first) >= sample:
            break
    if not first:
        click.echo(empty)
        return
    widths = [len(h) for h in headers]
    for row in first:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i < len(cells) - 1 else c
                         for i, c in enumerate(cells)).rstrip() + "\n"

    out = sys.stdout
    out.write(line(list(headers)))
    out.writelines(line(row) for row in first)
    for raw in it:
        out.write(line(["" if c is None else visible(str(c)) for c in raw]))
    out.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          styles: Optional[Sequence[Optional[str]]] = None,
          empty: str = "(none)", middle_cut: Optional[int] = None) -> None:
    """A table: rich on a terminal, tab-free aligned columns otherwise.

    On a terminal, widths are counted in display cells (a CJK character takes two),
    and when the table is wider than the terminal only the last column (free text)
    gives up room, cut at its end with an ellipsis, then the `middle_cut` column (an
    id), cut in the middle; the short columns never shrink."""
    rows = [["" if c is None else visible(str(c)) for c in row] for row in rows]
    if not rows:
        click.echo(empty)
        return
    if is_tty():
        from rich.cells import cell_len
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(highlight=False)
        widths = fit_widths([cell_len(h) for h in headers],
                            [[cell_len(cell) for cell in row] for row in rows],
                            console.width, middle_cut)
        last = len(headers) - 1
        tbl = Table(box=None, header_style="bold", pad_edge=False)
        for index, header in enumerate(headers):
            tbl.add_column(header, no_wrap=True, overflow="ignore",
                           min_width=widths[index], max_width=widths[index])
        for index, row in enumerate(rows):
            style = styles[index] if styles else None
            cells = [cut_end(cell, widths[i]) if i == last
                     else cut_middle(cell, widths[i]) if i == middle_cut else cell
                     for i, cell in enumerate(row)]
            tbl.add_row(*[Text(cell, style=style or "") for cell in cells])
        needed = sum(widths) + 2 * last
        if needed > console.width:  # even cut to the bone it does not fit: let it wrap
            console = Console(highlight=False, width=needed)
        console.print(tbl)
        return
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(widths[i]) if i < len(headers) - 1 else h
                     for i, h in enumerate(headers))
    click.echo(line.rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c
                             for i, c in enumerate(row)).rstrip())


MIN_TEXT_CELLS = 10  # the last column (a command, an error) keeps at least this
MIN_ID_CELLS = 12  # an id cut in the middle keeps this: 5 cells, "…", 6 cells


def fit_widths(header_cells: Sequence[int], row_cells: Sequence[Sequence[int]],
               room: int, middle_cut: Optional[int] = None) -> list[int]:
    """Column widths (display cells) for a table `room` cells wide, columns two
    apart: each column as wide as its widest cell; when that is too wide, the last
    column shrinks (to MIN_TEXT_CELLS or its header), then the `middle_cut` one (to
    MIN_ID_CELLS or its header); the others keep their width."""
    widths = [max(h, *(row[i] for row in row_cells)) for i, h in enumerate(header_cells)]
    last = len(widths) - 1
    over = sum(widths) + 2 * last - room
    for index, floor in ((last, MIN_TEXT_CELLS), (middle_cut, MIN_ID_CELLS)):
        if over <= 0 or index is None:
            break
        floor = min(widths[index], max(floor, header_cells[index]))
        give = min(over, widths[index] - floor)
        widths[index] -= give
        over -= give
    return widths


def _prefix(text: str, cells: int) -> str:
    """The longest start of `text` that fits in `cells` display cells."""
    from rich.cells import cell_len

    out, used = [], 0
    for char in text:
        width = cell_len(char)
        if used + width > cells:
            break
        out.append(char)
        used += width
    return "".join(out)


def cut_end(text: str, cells: int) -> str:
    """`text` in at most `cells` display cells, cut at its end with an ellipsis."""
    from rich.cells import cell_len

    if cell_len(text) <= cells:
        return text
    return _prefix(text, cells - 1) + "…" if cells > 0 else ""


def cut_middle(text: str, cells: int) -> str:
    """`text` in at most `cells` display cells, its middle replaced by an ellipsis
    (an id's start and end are what tell ids apart)."""
    from rich.cells import cell_len

    if cell_len(text) <= cells:
        return text
    if cells <= 1:
        return "…"[:cells]
    left = _prefix(text, cells // 2)
    right = _prefix(text[::-1], cells - 1 - cell_len(left))[::-1]
    return left + "…" + right


def shorten(text: str, width: int) -> str:
    """One line of at most `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


JOB_HEADERS = ["ID", "STATE", "PRI", "ATTEMPTS", "QUEUE", "WHEN", "COMMAND"]
#: with priority aging on: how long each job has been due, and its effective priority
AGED_HEADERS = ["ID", "STATE", "PRI", "WAIT", "EFFECTIVE", "ATTEMPTS", "QUEUE", "WHEN",
                "COMMAND"]


def job_table(jobs: Iterable[Job], now: float, defaults: Mapping[str, Any],
              empty: str = "No jobs.") -> None:
    """The job list: a rich table on a terminal; piped, streamed row by row."""
    aging = float(defaults.get("priority_aging") or 0)
    tty = is_tty()

    def row(job: Job) -> list[Any]:
        cells = [short_id(job.id) if tty else job.id, job.state.value, job.priority]
        if aging:
            waited, effective = job.aged_priority(now, aging)
            cells += [ago(waited) if waited else "-", f"{effective:g}"]
        return cells + [_attempts(job, defaults), job.queue, _when(job, now),
                        shorten(job.command, 60 if tty else 10_000)]

    headers = AGED_HEADERS if aging else JOB_HEADERS
    if not tty:
        stream_table(headers, (row(job) for job in jobs), empty=empty)
        return
    rows, styles = [], []
    for job in jobs:
        rows.append(row(job))
        styles.append(STATE_STYLE.get(job.state))
    table(headers, rows, styles, empty=empty, middle_cut=0)


def short_id(job_id: str) -> str:
    """On a terminal a generated id shows its first 8 characters, like a short git
    hash: any unique prefix of 4+ characters works wherever an id is asked for."""
    if len(job_id) == 36 and job_id.count("-") == 4:
        return job_id[:8]
    return job_id


def _attempts(job: Job, defaults: Mapping[str, Any]) -> str:
    """Runs so far / runs allowed (1 + the effective max retries)."""
    retries = defaults["max_retries"] if job.max_retries is None else job.max_retries
    return f"{job.attempts}/{1 + retries}"


def _when(job: Job, now: float) -> str:
    if job.state is JobState.WAITING:
        return "after " + ",".join(short_id(d) for d in job.depends_on)
    if job.state is JobState.BLOCKED:  # "dependency c is dead; retry it ..."
        reason = (job.error or "").removeprefix("dependency ").split(";")[0]
        return f"blocked: {reason}" if reason else "blocked"
    if job.state in (JobState.SCHEDULED, JobState.FAILED) or (
            job.state is JobState.PENDING and job.run_at > now):
        delta = job.run_at - now
        return f"in {ago(delta)}" if delta > 0 else "due"
    if job.state is JobState.PROCESSING and job.started_at:
        return f"started {ago(now - job.started_at)} ago"
    if job.finished_at:
        return f"{ago(now - job.finished_at)} ago"
    return f"{ago(now - job.created_at)} ago"


def job_detail(job: Job, now: float, defaults: Mapping[str, Any],
               with_env: bool = False, dependencies: Optional[tuple[Any, Any]] = None
               ) -> None:
    """Every field of a job, its attempt history and its captured output; with
    `dependencies` ((its edges, its dependants' edges) from Queue.dependencies) what
    it waits for and what waits for it, with their states."""
    effective = job.effective(defaults)

    def note(name: str) -> str:
        return " (from config)" if effective[name][1] else ""

    retries, base, timeout = (effective[name][0] for name in
                              ("max_retries", "backoff_base", "timeout"))
    fields = [
        ("ID", job.id), ("Command", job.command), ("State", job.state.value),
        ("Queue", job.queue), ("Priority", job.priority),
        *_aged_fields(job, now, float(defaults.get("priority_aging") or 0)),
        ("Attempts", f"{job.attempts}/{1 + retries}"),
        ("Max retries", f"{retries}{note('max_retries')}"),
        ("Backoff base", f"{base:g}{note('backoff_base')}"),
        ("Timeout", (f"{timeout:g}s" if timeout else "none") + note("timeout")),
        ("Run at", _stamp(job.run_at, now)),
        *([("Next retry", _stamp(job.run_at, now))] if job.state is JobState.FAILED else []),
        ("Created", _stamp(job.created_at, now)),
        ("Updated", _stamp(job.updated_at, now)),
        ("Started", _stamp(job.started_at, now)),
        ("Finished", _stamp(job.finished_at, now)),
        ("Worker", job.worker or "-"),
        ("Exit code", "-" if job.exit_code is None else job.exit_code),
        ("Error", job.error or "-"),
    ]
    if job.cwd:
        fields.append(("Working dir", job.cwd))
    if job.env and with_env:
        fields.append(("Env", " ".join(f"{k}={v}" for k, v in sorted(job.env.items()))))
    elif job.env:
        fields.append(("Env", " ".join(sorted(job.env)) + "  (values: show --env)"))
    deps, dependants = dependencies or ([], [])
    if deps:
        from queuectl.dependencies import describe

        fields.append(("Depends on", ", ".join(describe(e) for e in deps)))
    elif job.depends_on:
        fields.append(("Depends on", ", ".join(job.depends_on)))
    if dependants:
        from queuectl.dependencies import FLAGS

        fields.append(("Dependants", ", ".join(
            f"{e.depends_on} ({e.dep_state}; {FLAGS[e.condition]})" for e in dependants)
            + (" ..." if len(dependants) >= 50 else "")))
    if job.unique_key:
        fields.append(("Unique key", job.unique_key))
    if job.retry_policy:
        fields.append(("Retry rules", retry_rules_text(job.retry_policy)
                       + f"  (queuectl retry --explain {job.id})"))
    if job.rescues:
        fields.append(("Rescued", f"{job.rescues} time(s) from dead workers"))
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        click.echo(f"{name + ':':<{width + 1}} {visible(str(value))}")
    if job.history:
        click.echo("History:")
        for entry in job.history:
            click.echo("  " + visible(history_line(entry)))
    if job.state is JobState.PROCESSING and not job.output:
        click.echo(f"Output: (running: queuectl logs -f {visible(job.id)} follows it)")
        return
    cut = ""
    if job.output_dropped > 0 and job.total_output_bytes is not None:
        cut = (f" (the last {job.total_output_bytes - job.output_dropped:,} of "
                f"{job.total_output_bytes:,} bytes"
                + ("; the full output: queuectl logs " + visible(job.id)
                   if job.output_file else "") + ")")
    click.echo("Output:" + ("" if job.output else " (none)") + cut)
    if job.output:
        click.echo(visible(job.output.rstrip("\n"), multiline=True))


def _aged_fields(job: Job, now: float, aging: float) -> list[tuple[str, Any]]:
    if not aging:
        return []
    waited, effective = job.aged_priority(now, aging)
    return [("Waiting time", ago(waited) if waited else "-"),
            ("Effective", f"{effective:g} (priority {job.priority} + one per "
                          f"{ago(aging)} waited)")]


def retry_rules_text(policy: Optional[Mapping[str, Any]]) -> str:
    """`retry-on 75,SIGKILL; no-retry-on 2` of stored rules ("-" when none)."""
    parts = [f"{key.replace('_', '-')} {','.join(map(str, policy[key]))}"
             for key in ("retry_on", "no_retry_on") if policy and policy.get(key)]
    return "; ".join(parts) or "-"


def history_line(entry: dict[str, Any]) -> str:
    when = iso_utc(entry.get("started_at") or entry.get("at") or entry.get("finished_at"))
    parts = [f"#{entry.get('attempt', '?')}", when or "-"]
    if entry.get("event"):
        parts.append(str(entry["event"]))
    if entry.get("result"):
        parts.append(str(entry["result"]))
    if entry.get("started_at") and entry.get("finished_at"):
        parts.append(f"{entry['finished_at'] - entry['started_at']:.2f}s")
    if entry.get("worker"):
        parts.append(f"on {entry['worker']}")
    if entry.get("error"):
        parts.append(f"- {entry['error']}")
    if entry.get("rule") and str(entry["rule"]) not in str(entry.get("error") or ""):
        parts.append(f"[{entry['rule']}]")
    if isinstance(entry.get("changed"), dict):
        parts.append("changed " + (", ".join(sorted(entry["changed"])) or "nothing"))
    return " ".join(parts)


def _stamp(ts: Optional[float], now: float) -> str:
    if not ts:
        return "-"
    rel = f"{ago(now - ts)} ago" if ts <= now else f"in {ago(ts - now)}"
    return f"{local_text(ts)} ({rel})"


def workers_line(figures: Mapping[str, Any]) -> str:
    """`3 workers (1 process on host vm), 1 busy`: workers as the seeds count them
    (a slot each), the supervisor processes as the detail."""
    count, processes, hosts = (figures["worker_count"], figures["processes"],
                               figures["hosts"])
    where = (f"on host {hosts[0]}" if len(hosts) == 1
             else f"on {len(hosts)} hosts: {', '.join(hosts)}")
    return (f"{count} worker{'' if count == 1 else 's'} ({processes} "
            f"process{'' if processes == 1 else 'es'} {visible(where)}), "
            f"{figures['busy_workers']} busy")


def counts_table(counts: dict[JobState, int]) -> None:
    rows = [[state.value, counts.get(state, 0)] for state in ORDER]
    rows.append(["total", sum(counts.values())])
    styles = [STATE_STYLE.get(state) for state in ORDER] + ["bold"]
    table(["STATE", "JOBS"], rows, styles)


def queue_counts_table(queues: dict[str, dict[JobState, int]]) -> None:
    """A row per queue, a column per state."""
    rows = [[name, *(counts.get(s, 0) for s in ORDER), sum(counts.values())]
            for name, counts in queues.items()]
    table(["QUEUE", *(s.value.upper() for s in ORDER), "TOTAL"], rows, empty="No queues.")
