"""Job commands: enqueue/add, schedule, list, show, logs, wait, cancel, retry."""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any, Iterator, Optional, Sequence

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state
from queuectl.errors import InvalidInput
from queuectl.jobcore import looks_like_json_object
from queuectl.jobspec import build, parse_json_object
from queuectl.models import Job, NewJob
from queuectl.states import JobState, parse_state


def job_options(func: Any) -> Any:
    """The options every way of adding a job shares."""
    options = [
        click.option("--id", "job_id", metavar="ID", help="Job id (default: a new UUID)."),
        click.option("--priority", "-p", metavar="1-10",
                     help="Higher runs first (default 5)."),
        click.option("--delay", metavar="DURATION",
                     help="Run no earlier than this from now: 60, 90s, 5m, 2h, 1d."),
        click.option("--run-at", metavar="WHEN",
                     help="Run no earlier than: +5m, ISO-8601, 'YYYY-MM-DD HH:MM:SS' "
                          "(local time), or a Unix time."),
        click.option("--timeout", metavar="SECONDS",
                     help="Kill the job after this long (default: config job-timeout)."),
        click.option("--max-retries", metavar="N",
                     help="Retries after the first failure (default: config)."),
        click.option("--backoff-base", metavar="B",
                     help="Retry n waits B**n seconds (default: config)."),
        click.option("--queue", "-q", metavar="NAME", help="Queue name (default 'default').",
                     shell_complete=complete.queue_names),
        click.option("--cwd", metavar="DIR", help="Working directory of the command."),
        click.option("--env", "env_pairs", metavar="KEY=VALUE", multiple=True,
                     help="Environment variable for the command (repeatable)."),
        click.option("--after", metavar="ID", multiple=True,
                     shell_complete=complete.job_ids,
                     help="Run only after this job completed (repeatable; an id prefix "
                          "works). If it dies or is cancelled, this job is blocked."),
        click.option("--after-any", metavar="ID", multiple=True,
                     shell_complete=complete.job_ids,
                     help="Run after this job ended in any way: completed, dead or "
                          "cancelled (repeatable)."),
        click.option("--after-failure", metavar="ID", multiple=True,
                     shell_complete=complete.job_ids,
                     help="Run only if this job ended dead or cancelled; cancelled if "
                          "it completed (repeatable)."),
        click.option("--unique-key", metavar="KEY",
                     help="If a live job has this key, return it instead of adding one."),
        click.option("--retry-on", metavar="TERMS",
                     help="Retry only these failures: exit codes, ranges, signals, "
                          "timeout, spawn-error (e.g. 75,64-78,SIGKILL,timeout)."),
        click.option("--no-retry-on", metavar="TERMS",
                     help="Never retry these failures: they go straight to dead "
                          "(e.g. 2,126,127)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def edit_options(func: Any) -> Any:
    """`retry` / `dlq retry`: change the job before it runs again."""
    options = [
        click.option("--command", "new_command", metavar="CMD",
                     help="Run this command instead (the history keeps the old one)."),
        click.option("--timeout", "new_timeout", metavar="SECONDS", help="A new timeout."),
        click.option("--priority", "-p", "new_priority", metavar="1-10",
                     help="A new priority."),
        click.option("--queue", "-q", "new_queue", metavar="NAME", help="Move it to NAME.",
                     shell_complete=complete.queue_names),
        click.option("--max-retries", "new_max_retries", metavar="N",
                     help="A new retry budget."),
        click.option("--env", "new_env", metavar="KEY=VALUE", multiple=True,
                     help="Set an environment variable (repeatable; others are kept)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def edit_changes(opts: dict[str, Any]) -> dict[str, Any]:
    """The changes the edit options ask for ({} when none)."""
    changes = {name: opts.get("new_" + name) for name in
               ("command", "timeout", "priority", "queue", "max_retries")}
    if opts.get("new_env"):
        changes["env"] = _env_pairs(opts["new_env"])
    return {name: value for name, value in changes.items() if value is not None}


def _env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--env wants KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _option_fields(opts: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    names = {"job_id": "id", "priority": "priority", "delay": "delay", "run_at": "run_at",
             "timeout": "timeout", "max_retries": "max_retries",
             "backoff_base": "backoff_base", "queue": "queue", "cwd": "cwd",
             "unique_key": "unique_key", "retry_on": "retry_on",
             "no_retry_on": "no_retry_on"}
    for opt, field in names.items():
        if opts.get(opt) is not None:
            fields[field] = opts[opt]
    if opts.get("env_pairs"):
        fields["env"] = _env_pairs(opts["env_pairs"])
    deps = [{"id": ref, "on": on} for on, key in
            (("completed", "after"), ("any", "after_any"), ("failure", "after_failure"))
            for ref in opts.get(key) or ()]
    if deps:
        fields["depends_on"] = deps
    return fields


def _merge(base: dict[str, Any], extra: dict[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        normal = key.replace("-", "_")
        if normal in merged and merged[normal] != value:
            raise InvalidInput(f"{normal} is given twice ({where} and an option) "
                               "with different values")
        merged[normal] = value
    return merged


def _spec_fields(spec: Sequence[str]) -> dict[str, Any]:
    if not spec:
        return {}
    if len(spec) == 1 and looks_like_json_object(spec[0]):
        fields = parse_json_object(spec[0])
        if any("-" in key for key in fields):
            return {key.replace("-", "_"): v for key, v in fields.items()}
        return fields
    if len(spec) == 1:
        return {"command": spec[0]}
    return {"command": shlex.join(spec)}


def _read_batch(path: str) -> str:
    """The text of a batch file (`-` is stdin), read before the store is touched."""
    try:
        if path == "-":
            text = sys.stdin.buffer.read().decode("utf-8")
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    if not any(line.strip() and not line.strip().startswith("#")
               for line in text.splitlines()):
        raise InvalidInput(f"{path} holds no jobs")
    return text


def _batch_jobs(path: str, text: str, defaults: dict[str, Any], now: float
                ) -> Iterator[NewJob]:
    """One job per line: a JSON object or a plain command.  Blank lines and lines
    starting with # are skipped.  Validated lazily, while the store writes the lines
    before; any bad line raises, and the store then keeps none of them."""
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            fields = _spec_fields([stripped])
            job = build(_merge(defaults, fields, "the line") if defaults else fields, now)
        except InvalidInput as exc:
            raise InvalidInput(f"{path} line {number}: {exc}") from None
        if "id" in fields:
            if job.id in seen:
                raise InvalidInput(f"{path} line {number}: duplicate id {job.id!r} "
                                   f"(also on line {seen[job.id]})")
            seen[str(job.id)] = number
        yield job


def _do_enqueue(spec: Sequence[str], command: Optional[str], job: Optional[str],
                file: Optional[str], opts: dict[str, Any],
                extra: Optional[dict[str, Any]] = None, then: Optional[str] = None
                ) -> None:
    """`then`: "wait" (as `wait` does, with its exit code) or "follow" (its output
    as `logs -f` prints it; exit 0 when it completed, else 1) once it is stored."""
    st = state()
    now = time.time()
    if then == "follow" and file:
        raise InvalidInput("--follow follows one job: not with --file (--wait waits for "
                           "them all)")
    if then == "follow" and st.json:
        raise InvalidInput("--follow prints the job's output, not JSON: use --wait --json")
    fields = _option_fields(opts)
    if extra:
        fields = _merge(fields, extra, "the arguments")
    given = [name for name, value in (("a positional job", spec), ("--command", command),
                                      ("--job", job), ("--file", file)) if value]
    if len(given) > 1:
        raise InvalidInput(f"give the job once: {' and '.join(given)} were both given")
    if file:
        if "id" in fields:
            raise InvalidInput("--id cannot be used with --file (give ids in the file)")
        text = _read_batch(file)
        line_ids: list[str] = []  # each line's id, to tell new jobs from unique-key matches

        def noted(jobs: Iterator[NewJob]) -> Iterator[NewJob]:
            for new in jobs:
                line_ids.append(str(new.id))  # build() gave every line an id
                yield new

        ids = st.queue().enqueue_stream(noted(_batch_jobs(file, text, fields, now)))
        matched = sum(1 for mine, stored in zip(line_ids, ids) if mine != stored)
        if then == "wait":
            if not st.json:
                sys.stdout.write("".join(f"{job_id}\n" for job_id in ids))
                sys.stdout.flush()
            _then_wait(st, ids)
            return
        if st.json:
            render.emit_json({"enqueued": len(ids) - matched, "matched": matched,
                              "ids": ids})
        else:
            note = f" ({matched} matched a live job by unique key)" if matched else ""
            added = len(ids) - matched
            click.echo(f"Enqueued {added} job{'' if added == 1 else 's'}{note}", err=True)
            sys.stdout.write("".join(f"{job_id}\n" for job_id in ids))
        return
    if command is not None or job is not None:
        fields = _merge(fields, {"command": command if command is not None else job},
                        "--command")
    else:
        spec_fields = _spec_fields(spec)
        if not spec_fields:
            raise InvalidInput("no job given: queuectl enqueue \"echo hi\", or a JSON "
                               "object, or --command/--job CMD, or --file FILE")
        fields = _merge(spec_fields, fields, "the JSON")
    jobs = [build(fields, now)]
    stored = st.queue().enqueue(jobs)
    item = stored[0]
    timed = fields.get("run_at") is not None or fields.get("delay") is not None
    if timed and item.run_at < now - 1:
        click.echo(f"queuectl: warning: run_at {_when_text(item.run_at)} is "
                   f"{render.ago(now - item.run_at)} in the past: the job is due now",
                   err=True)
    if st.json and then == "wait":
        _then_wait(st, [item.id])  # one JSON object: what `wait --json` prints
        return
    if st.json:
        render.emit_json(st.job_dict(item))
        return
    click.echo(item.id)
    if sys.stderr.isatty():
        note = (f"scheduled for {_when_text(item.run_at)} (in {render.ago(item.run_at - now)})"
                if item.state is JobState.SCHEDULED else item.state.value)
        click.echo(f"Enqueued job {item.id}: {note}", err=True)
    if then == "wait":
        _then_wait(st, [item.id])
    elif then == "follow":
        from queuectl.cli.watch import follow_output

        sys.stdout.flush()
        ended = follow_output(st.queue(), item.id, sanitise=render.is_tty())
        if ended.state is not JobState.COMPLETED:
            detail = f" ({ended.error})" if ended.error else ""
            click.echo(f"queuectl: job {ended.id} {ended.state.value}{detail}", err=True)
            raise click.exceptions.Exit(1)


def _then_wait(st: Any, ids: list[str]) -> None:
    from queuectl.cli.watch import report_wait

    sys.stdout.flush()
    code = report_wait(st, st.queue().watch(ids), quiet=False)
    if code:
        raise click.exceptions.Exit(code)


def _when_text(ts: float) -> str:
    """`2026-12-03 04:29 local`: minutes are what a person schedules by."""
    return render.local_text(ts)[:16] + " local"


ENQUEUE_HELP = """Add a job and print its id.

\b
The job is a JSON object, or a shell command:
  queuectl enqueue "echo 'Hello World'"
  queuectl enqueue '{"id":"job1","command":"sleep 2","priority":8,"run_at":"+5m"}'
  queuectl enqueue --command "echo hi" --id job1
  queuectl enqueue --job "./backup.sh" --max-retries 5 --timeout 300
  queuectl enqueue --file jobs.jsonl     # one JSON object or command per line; - is stdin
  queuectl enqueue --id test --after build "make test"   # once build completed
  queuectl enqueue --wait "make test"    # then wait: exit 0 only if it completed
  queuectl enqueue --follow "make test"  # then print its output until it ends
  queuectl enqueue --retry-on 75,SIGKILL,timeout --no-retry-on 2 "./sync.sh"
"""


def _enqueue_command(name: str, hidden: bool = False) -> click.Command:
    @click.command(name, help=ENQUEUE_HELP, hidden=hidden,
                   short_help="Add a job (a command or a JSON object)." if name == "enqueue"
                   else "Same as enqueue.")
    @click.argument("spec", nargs=-1, metavar="[COMMAND|JSON]")
    @click.option("--command", "-c", metavar="CMD", help="The shell command to run.")
    @click.option("--job", metavar="CMD", help="Same as --command.")
    @click.option("--file", "-f", metavar="FILE", help="Add many jobs in one transaction.")
    @click.option("--wait", "then_wait", is_flag=True,
                  help="Then wait for it to finish, as `wait` does (its exit code).")
    @click.option("--follow", "then_follow", is_flag=True,
                  help="Then print its output as `logs -f` does until it ends; exit 0 "
                       "if it completed, else 1.")
    @job_options
    @json_option
    def command(spec: tuple[str, ...], command: Optional[str], job: Optional[str],
                file: Optional[str], then_wait: bool, then_follow: bool,
                **opts: Any) -> None:
        if then_wait and then_follow:
            raise InvalidInput("--wait or --follow, not both (--follow waits too)")
        _do_enqueue(spec, command, job, file, opts,
                    then="wait" if then_wait else "follow" if then_follow else None)
    return command


enqueue = _enqueue_command("enqueue")
add = _enqueue_command("add")


@click.command()
@click.argument("command_text", metavar="COMMAND")
@click.argument("when")
@job_options
@json_option
def schedule(command_text: str, when: str, **opts: Any) -> None:
    """Add a job that runs no earlier than WHEN.

    \b
    WHEN is +30s, +5m, +1h, seconds from now, ISO-8601, or a local date and time:
      queuectl schedule "./backup.sh" "+1h"
      queuectl schedule "./report.sh" "2025-11-10 02:00:00"
    """
    if opts.get("delay") or opts.get("run_at"):
        raise InvalidInput("schedule takes the time as its second argument; "
                           "--delay/--run-at are not needed")
    _do_enqueue([command_text], None, None, None, opts, {"run_at": when})


# -- listing -------------------------------------------------------------------------
def _states(values: Sequence[str]) -> list[JobState]:
    chosen: list[JobState] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                chosen.append(parse_state(part.strip()))
    return chosen


TERMINAL_LIMIT = 50  # the default --limit on a terminal; piped or --json: every job


def list_limit(limit: Optional[int]) -> Optional[int]:
    """--limit as given (0 = all -> None), else the default: a short page on a
    terminal, every matching job when the output goes to a program or is --json."""
    if limit is not None:
        if limit < 0:
            raise InvalidInput("--limit must be 0 or more")
        return limit or None
    return TERMINAL_LIMIT if render.is_tty() and not state().json else None


def more_note(shown: int, total: int) -> None:
    if total > shown:
        click.echo(f"showing {shown} of {total} (--limit 0 for all)", err=True)


def _list(states: list[JobState], queue_name: Optional[str], limit: Optional[int]) -> None:
    st = state()
    cap = list_limit(limit)
    q = st.queue()
    jobs = q.iter_jobs(states or None, queue_name, cap)
    if st.json:
        render.emit_json_stream(st.job_dict(job, with_output=False) for job in jobs)
        return
    what = "/".join(s.value for s in states) if states else ""
    shown = 0

    def counted() -> Iterator[Job]:
        nonlocal shown
        for job in jobs:
            shown += 1
            yield job

    render.job_table(counted(), q.now(), st.job_defaults(),
                     empty=f"No {what + ' ' if what else ''}jobs.")
    if cap is not None and shown == cap and render.is_tty():
        more_note(shown, q.count_jobs(states or None, queue_name))


LIST_LIMIT = click.option("--limit", "-n", default=None, type=int,
                          help="Show at most N jobs, newest first (0 = all; default 50 "
                               "on a terminal, else all, streamed).")


@click.command("list")
@click.option("--state", "-s", "state_names", multiple=True, metavar="STATE",
              shell_complete=complete.state_names,
              help="scheduled, pending, processing, completed, failed, dead (dlq), "
                   "cancelled, waiting, blocked; repeatable or comma-separated.")
@click.option("--queue", "-q", "queue_name", metavar="NAME", help="Only this queue.",
              shell_complete=complete.queue_names)
@LIST_LIMIT
@json_option
def list_cmd(state_names: tuple[str, ...], queue_name: Optional[str],
             limit: Optional[int]) -> None:
    """List jobs, newest first.

    \b
      queuectl list --state pending
      queuectl list --state failed --state dead --json
    """
    _list(_states(state_names), queue_name, limit)


@click.command("list-jobs", hidden=True)
@click.argument("state_name", required=False, metavar="[STATE]",
                shell_complete=complete.state_names)
@click.option("--queue", "-q", "queue_name", metavar="NAME", shell_complete=complete.queue_names)
@LIST_LIMIT
@json_option
def list_jobs(state_name: Optional[str], queue_name: Optional[str],
              limit: Optional[int]) -> None:
    """List jobs in STATE (same as list --state STATE).

    \b
      queuectl list-jobs pending
    """
    _list(_states([state_name] if state_name else []), queue_name, limit)


@click.command(hidden=True)
@click.option("--queue", "-q", "queue_name", metavar="NAME", shell_complete=complete.queue_names)
@LIST_LIMIT
@json_option
def scheduled(queue_name: Optional[str], limit: Optional[int]) -> None:
    """List scheduled jobs (same as list --state scheduled).

    \b
      queuectl scheduled
    """
    _list([JobState.SCHEDULED], queue_name, limit)


@click.command()
@click.argument("job_ref", metavar="ID", shell_complete=complete.job_ids)
@click.option("--env", "with_env", is_flag=True,
              help="Also print the values of the job's environment variables "
                   "(by default only their names: values are often secrets).")
@json_option
def show(job_ref: str, with_env: bool) -> None:
    """Every field of a job, its attempt history and its output.

    The job's environment is shown by name only (`env_names` in --json); add --env
    for the values (`env` in --json).  Control characters in commands and output
    are drawn visibly (ESC as ^[), never sent to the terminal.

    \b
      queuectl show job1
      queuectl show 08232c92      # a unique prefix of 4+ characters works
      queuectl show job1 --env --json
    """
    st = state()
    q = st.queue()
    job = q.get(job_ref)
    deps, dependants = q.dependencies(job)
    if st.json:
        from queuectl.dependencies import graph_fields

        render.emit_json({**st.job_dict(job, with_env=with_env),
                          **graph_fields(deps, dependants)})
    else:
        render.job_detail(job, q.now(), st.job_defaults(), with_env=with_env,
                          dependencies=(deps, dependants))



# -- transitions ----------------------------------------------------------------------
def _transition_command(name: str, verb: str, hidden: bool = False,
                        help_text: str = "", tree: bool = False,
                        edit: bool = False) -> click.Command:
    @click.command(name, hidden=hidden, help=help_text)
    @click.argument("job_refs", nargs=-1, required=True, metavar="ID...",
                    shell_complete=complete.job_ids)
    @json_option
    def command(job_refs: tuple[str, ...], with_dependants: bool = False,
                explain: bool = False, **edits: Any) -> None:
        st = state()
        q = st.queue()
        changes = edit_changes(edits)
        if explain:
            if changes or len(job_refs) != 1:
                raise InvalidInput("--explain takes one job id and no changes")
            _explain(q.explain_retry(job_refs[0]), st.json)
            return
        done = []
        for ref in job_refs:
            moved = q.cancel_with_dependants(ref) if with_dependants \
                else [q.retry(ref, changes)] if changes else [getattr(q, verb)(ref)]
            for job in moved:
                done.append(job)
                if not st.json:
                    click.echo(f"{job.id}: {job.state.value}")
        if st.json:
            render.emit_json(st.job_dict(done[0], with_output=False) if len(done) == 1 else
                             {"jobs": [st.job_dict(j, with_output=False) for j in done]})
    if edit:
        command = edit_options(command)
        command = click.option(
            "--explain", is_flag=True,
            help="Change nothing: print the retry policy that applies and where each "
                 "part comes from, the decision for the last failure, and the next run "
                 "times.")(command)
    if tree:
        command = click.option(
            "--with-dependants", is_flag=True,
            help="Also cancel every live job that depends on it, directly or through "
                 "others.")(command)
    return command


CANCEL_HELP = """Cancel a waiting job, or kill a running one.

Jobs that depend on it are decided as if it had failed: an --after dependant is
blocked, --after-any and --after-failure ones run.  --with-dependants cancels them
too (and theirs).

\b
  queuectl cancel job3
  queuectl cancel build --with-dependants
  queuectl dequeue job3       # the same as cancel
"""
cancel = _transition_command("cancel", "cancel", help_text=CANCEL_HELP, tree=True)
dequeue = _transition_command("dequeue", "cancel", hidden=True, help_text=CANCEL_HELP,
                              tree=True)
RETRY_HELP = """Run a failed, dead, cancelled or completed job again now.

The options change the job first (its history records what changed, old and new).
--explain changes nothing: it shows why the job was (or was not) retried and when it
would run again.

\b
  queuectl retry job1
  queuectl retry job1 --command "./backup.sh --fixed" --timeout 600
  queuectl retry job1 --env TOKEN=new --queue slow
  queuectl retry --explain job1
"""


def _explain(report: dict[str, Any], as_json: bool) -> None:
    """Print `retry --explain`'s report."""
    from queuectl.times import iso_utc, local_text

    if as_json:
        render.emit_json({**report, "next_runs": [
            {**run, "at": iso_utc(run["at"])} for run in report["next_runs"]]})
        return
    now = time.time()
    out = render.visible
    click.echo(f"Job {out(report['id'])}: {report['state']}, queue {out(report['queue'])}, "
               f"{report['attempts']} attempt(s) so far")
    mr, base, cap, jitter = (report[k] for k in ("max_retries", "backoff_base",
                                                 "backoff_max", "backoff_jitter"))
    click.echo("Policy (value, where it comes from):")
    click.echo(f"  max retries   {mr['value']} ({mr['source']}): at most "
               f"{1 + mr['value']} runs")
    click.echo(f"  backoff       {base['value']:g} ** n seconds ({base['source']}), capped "
               f"at {cap['value']:g}s ({cap['source']})")
    click.echo(f"  jitter        {'on' if jitter['value'] else 'off'} ({jitter['source']})")
    click.echo("  retry rules   the first layer with a say decides:")
    for layer in report["rules"]:
        text = render.retry_rules_text(layer)
        click.echo(f"    {layer['source']:<7} {out(text)}" +
                   ("" if text != "-" else f"   (set with {layer['set_by']})"))
    if report["default"]:
        click.echo(f"    default: {report['default']}")
    last = report["last_failure"]
    if last is None:
        click.echo("Last failure: none")
    else:
        recorded = last["recorded"] + (f" ({last['recorded_rule']})"
                                       if last["recorded_rule"] else "")
        click.echo(f"Last failure: attempt {last['attempt']}, {out(last['failure'])}; "
                   f"recorded {out(recorded)}")
        click.echo(f"  decision under this policy: {last['decision']}: {out(last['why'])}")
    click.echo(f"Next runs ({report['next_runs_basis']}):")
    for run in report["next_runs"]:
        wait = "" if run["wait_s"] is None else f"   after a {run['wait_s']:g}s wait"
        when = "now" if abs(run["at"] - now) < 1 else local_text(run["at"])
        click.echo(f"  run {run['run']:<3} {when}{wait}")
    if report["more_runs"]:
        click.echo(f"  ... and {report['more_runs']} more")
    click.echo(f"  then dead if it still fails; waits are {report['jitter']}")
    click.echo("Nothing was changed.")
retry = _transition_command("retry", "retry", help_text=RETRY_HELP, edit=True)


def _edit_text(text: str) -> str:
    """Open `text` in $EDITOR, then $VISUAL, then vi (click.edit: a private temporary
    file; an editor with arguments such as `code --wait` works); the text saved."""
    import os

    from queuectl.errors import QueuectlError

    editor = next((value for value in (os.environ.get(name, "").strip()
                                       for name in ("EDITOR", "VISUAL")) if value), "vi")
    try:
        edited = click.edit(text + "\n", editor=editor, extension=".sh", require_save=False)
    except click.ClickException as exc:
        raise QueuectlError(f"{exc.message}; nothing changed (set EDITOR)") from None
    except UnicodeDecodeError:
        raise InvalidInput("the edited command is not UTF-8 text; nothing changed") from None
    return edited or ""


@click.command("edit")
@click.argument("job_ref", metavar="ID", shell_complete=complete.job_ids)
@click.option("--retry", "then_retry", is_flag=True,
              help="Then run it again now (a failed or dead job; dead ones start their "
                   "attempts afresh, as `dlq retry` does).")
@json_option
def edit(job_ref: str, then_retry: bool) -> None:
    """Edit a job's command in $EDITOR (then $VISUAL, then vi).

    Works on a job that is pending, scheduled, failed, dead, waiting or blocked (not
    while it runs, not once it completed or was cancelled: `retry ID --command`
    does that).  The history records the change, old and new.  Saving the command
    unchanged, or emptying it, changes nothing.

    \b
      queuectl edit job1
      queuectl edit 08232c92 --retry     # fix a dead job's command and run it again
      EDITOR=nano queuectl edit job1
    """
    st = state()
    q = st.queue()
    job = q.check_editable(job_ref)
    if then_retry and job.state not in (JobState.FAILED, JobState.DEAD):
        raise InvalidInput(f"--retry is for failed or dead jobs; job {job.id} is "
                           f"{job.state.value} (edit it without --retry)")
    text = _edit_text(job.command)
    command = text[:-1] if text.endswith("\n") else text
    if not command.strip() or command == job.command:
        why = "empty command" if not command.strip() else "command unchanged"
        if st.json:
            render.emit_json({"id": job.id, "changed": False, "reason": why,
                              "state": job.state.value})
        else:
            click.echo(f"{job.id}: {why}; nothing changed", err=True)
        return
    updated: Optional[Job]
    if then_retry:
        updated = (q.dlq_retry if job.state is JobState.DEAD else q.retry)(
            job.id, {"command": command})
    else:
        updated = q.edit(job.id, {"command": command})
    if updated is None:  # the same command after validation
        click.echo(f"{job.id}: command unchanged; nothing changed", err=True)
        return
    if st.json:
        render.emit_json({**st.job_dict(updated, with_output=False), "changed": True})
        return
    click.echo(f"{updated.id}: command changed ({updated.state.value})")


@click.command("rm")
@click.argument("job_refs", nargs=-1, required=True, metavar="ID...",
                shell_complete=complete.job_ids)
@json_option
def rm(job_refs: tuple[str, ...]) -> None:
    """Delete jobs, with their history and output.

    A running job is refused: cancel it first (`queuectl cancel ID` kills it), then
    remove it.  Every id is checked before any job is deleted.

    \b
      queuectl rm job1
      queuectl rm 08232c92 job2
    """
    st = state()
    q = st.queue()
    found = [q.get(ref) for ref in dict.fromkeys(job_refs)]
    for job in found:
        if job.state is JobState.PROCESSING:
            from queuectl.errors import InvalidTransition

            raise InvalidTransition(f"job {job.id} is processing: cancel it first "
                                    f"(queuectl cancel {job.id}), then remove it")
    removed = [q.remove(job.id).id for job in found]
    if st.json:
        render.emit_json({"removed": removed})
    else:
        for job_id in removed:
            click.echo(f"{job_id}: removed")
