"""The command line: a click group whose commands live in small modules, imported only
when used.  `run()` is the one error funnel: every QueuectlError becomes one line on
stderr and its exit code."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Optional

import click

from queuectl import __version__
from queuectl.cli.context import CliState, json_option
from queuectl.cli.quick import quiet_stdout
from queuectl.errors import EXIT_USAGE, QueuectlError

# command name -> "module:attribute" (relative to queuectl.cli)
COMMANDS: dict[str, str] = {
    "enqueue": "jobs:enqueue",
    "add": "jobs:add",
    "schedule": "jobs:schedule",
    "list": "jobs:list_cmd",
    "list-jobs": "jobs:list_jobs",
    "scheduled": "jobs:scheduled",
    "show": "jobs:show",
    "logs": "watch:logs",
    "wait": "watch:wait",
    "cancel": "jobs:cancel",
    "dequeue": "jobs:dequeue",
    "retry": "jobs:retry",
    "edit": "jobs:edit",
    "rm": "jobs:rm",
    "dlq": "dlq:dlq",
    "queue": "queues_cmd:queue_group",
    "cron": "cron_cmd:cron",
    "hooks": "queues_cmd:hooks_cmd",
    "config": "config_cmd:config",
    "status": "admin:status",
    "metrics": "metrics_cmd:metrics",
    "clear": "admin:clear",
    "purge": "admin:purge",
    "cleanup": "admin:cleanup",
    "migrate": "admin:migrate",
    "doctor": "admin:doctor",
    "time": "admin:time_cmd",
    "worker": "workers:worker",
    "workers": "workers:workers",
    "start": "workers:start",
    "stop": "workers:stop",
    "scheduler": "workers:scheduler",
    "demo": "demo_cmd:demo",
    "shell": "shell:shell",
    "completion": "complete:completion",
    "dashboard": "dashboard_cmd:dashboard",
}

SECTIONS = [
    ("Jobs", ["enqueue", "add", "schedule", "list", "show", "logs", "wait", "cancel",
              "retry", "edit", "rm", "dlq", "queue", "cron", "hooks"]),
    ("Workers", ["worker", "workers", "start", "stop", "scheduler"]),
    ("Store", ["status", "metrics", "config", "cleanup", "purge", "clear", "migrate",
               "doctor", "time", "demo", "dashboard"]),
    ("Interactive", ["shell", "completion"]),
]
HIDDEN = {"list-jobs", "scheduled", "dequeue"}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if name not in HIDDEN]

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = import_module(f"queuectl.cli.{module_name}")
        return getattr(module, attr)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[Optional[str], Optional[click.Command], list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand:
            # click suggests from self.commands, which a lazy group leaves empty
            raise click.exceptions.NoSuchCommand(
                str(args[0]), possibilities=list(COMMANDS), ctx=ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for title, names in SECTIONS:
            rows = []
            for name in names:
                cmd = self.get_command(ctx, name)
                if cmd is not None:
                    rows.append((name, cmd.get_short_help_str(limit=64)))
            with formatter.section(f"{title} commands"):
                formatter.write_dl(rows)


EPILOG = """\b
Examples:
  queuectl enqueue "echo hello"                 # prints the new job's id
  queuectl enqueue '{"id":"job1","command":"sleep 2","priority":8}'
  queuectl worker start --count 4               # run jobs (Ctrl-C stops gracefully)
  queuectl status
  queuectl dlq list
  queuectl --db postgresql://host/db status     # a shared PostgreSQL store

The store: --db PATH|URL, else $QUEUECTL_DB, else the file in the user data dir.
Exit codes: 0 ok, 1 operation failed, 2 usage or bad input, 3 store unavailable,
locked or corrupt (`queuectl doctor` checks it)."""


@click.group(cls=LazyGroup, invoke_without_command=True, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"],
                               "max_content_width": 100})
@click.option("--db", metavar="PATH|URL", help="Store: an SQLite path, sqlite:///path or "
              "postgresql://...  [env QUEUECTL_DB]")
@json_option
@click.option("-v", "--debug", is_flag=True, help="Debug logging and full tracebacks.")
@click.version_option(__version__, "--version", prog_name="queuectl")
@click.pass_context
def app(ctx: click.Context, db: Optional[str], debug: bool) -> Optional[int]:
    """queuectl: a background job queue for shell commands.

    Enqueue commands, run them with workers, retry failures with exponential backoff,
    and keep what keeps failing in a dead-letter queue.  Runs embedded on SQLite with
    no setup, or on PostgreSQL across many machines.  Without a command, on a
    terminal: the interactive shell."""
    state = ctx.ensure_object(CliState)
    if db is not None:
        state.db = db
    state.debug = state.debug or debug
    if ctx.invoked_subcommand is None:
        if not state.in_shell and sys.stdin.isatty() and sys.stdout.isatty():
            from queuectl.cli.shell import open_shell

            return open_shell(state, banner=True)
        click.echo(ctx.get_help())
    return None


def run(args: list[str], shell: Optional[CliState] = None) -> int:
    """Run the CLI on `args`; every error becomes a line on stderr and an exit code.
    Inside the shell, `shell` is the shell's state: the line reuses its open store."""
    before = args[:args.index("--")] if "--" in args else args
    debug = "--debug" in before or "-v" in before
    state = CliState(debug=debug) if shell is None else shell.line()
    state.debug = state.debug or debug
    debug = state.debug
    code = 0
    try:
        # In non-standalone mode click returns an Exit's code instead of raising it.
        result = app.main(args=args, prog_name="queuectl", standalone_mode=False, obj=state)
        if isinstance(result, int) and not isinstance(result, bool):
            code = result
    except QueuectlError as exc:
        code = _fail(str(exc) + (f" ({exc.hint})" if exc.hint else ""), exc.exit_code, debug)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        code = 130
    except click.UsageError as exc:  # one line, like every other error
        where = exc.ctx.command_path if exc.ctx is not None else "queuectl"
        code = _fail(f"{exc.format_message()} (see '{where} --help')", EXIT_USAGE, debug)
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        code = 130
    except BrokenPipeError:
        quiet_stdout()
        code = 0
    except OSError as exc:
        code = _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""),
                     1, debug)
    except Exception as exc:  # the last resort of the funnel; --debug shows the traceback
        code = _fail(f"internal error: {type(exc).__name__}: {exc} "
                     "(run with --debug for the traceback)", 1, debug)
    finally:
        state.close()
    return code


def _fail(message: str, code: int, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exc()
    click.echo(f"queuectl: error: {message}", err=True)
    return code


__all__: list[Any] = ["app", "run"]
