"""`queuectl shell`: a `queuectl>` prompt over the same click app.

Each line is split like a shell would split it and run through `app.run`, the CLI's
one error funnel, so a line behaves exactly like the same words after `queuectl`
and an error prints its one line and returns to the prompt.  The lines share the
shell's --db, --json and --debug and its open store.  prompt_toolkit is imported only
here, when the shell starts: the other commands never pay for it."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from typing import Any, Iterable, Iterator, Optional

import click

from queuectl.cli.context import CliState, json_option, state
from queuectl.errors import EXIT_STORE, EXIT_USAGE, InvalidInput

PROMPT = "queuectl> "
LEAVE_WORDS = ("exit", "quit")
SHELL_HELP = ("At this prompt: any command without `queuectl`, help [COMMAND], "
              "exit (or Ctrl-D); Tab completes, Up recalls history.")


BANNER = """\
 ███   █   █  █████  █   █  █████   ████  █████  █
█   █  █   █  █      █   █  █      █        █    █
█   █  █   █  ████   █   █  ████   █        █    █
█  ██  █   █  █      █   █  █      █        █    █
 ████   ███   █████   ███   █████   ████    █    █████"""
TIPS = ("Type a command (enqueue \"echo hi\", status, list, worker start), help for "
        "all of them; Tab completes; exit or Ctrl-D leaves.")


class _Leave(Exception):
    """`exit` / `quit` at the prompt."""


_ENQUEUE_JSON = re.compile(r"(?:^|\s)(?:enqueue|add)\s+(?=\{)")


def split_line(text: str) -> list[str]:
    """The words of a prompt line, split as /bin/sh would split them, except that a
    JSON object right after `enqueue`/`add` is one word as typed, unquoted
    (`enqueue {"id":"test","command":"echo hello"}`); words after it split as usual."""
    try:
        for match in _ENQUEUE_JSON.finditer(text):
            head = shlex.split(text[:match.end()])
            if head and head[-1] in ("enqueue", "add"):
                rest = text[match.end():].rstrip()
                try:
                    _, end = json.JSONDecoder().raw_decode(rest)
                except ValueError:  # not JSON: the enqueue command says what is wrong
                    return head + [rest]
                return head + [rest[:end]] + shlex.split(rest[end:])
        return shlex.split(text)
    except ValueError as exc:  # "No closing quotation"
        raise InvalidInput(f"cannot split the line: {str(exc).lower()}") from None


def split_commands(text: str) -> list[str]:
    """A line's commands, separated by `;` outside quotes and JSON objects."""
    parts: list[str] = []
    start = depth = 0
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == ";" and not depth:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def run_line(home: CliState, text: str) -> Optional[int]:
    """Run one prompt line (`;` separates commands); the last command's exit code, or
    None for a blank line or a comment."""
    code = None
    for command in split_commands(text):
        result = _run_command(home, command)
        if result is not None:
            code = result
    return code


def _run_command(home: CliState, text: str) -> Optional[int]:
    from queuectl.cli.app import _fail, app, run

    text = text.strip()
    if not text or text.startswith("#"):
        return None
    try:
        words = split_line(text)
    except InvalidInput as exc:
        return _fail(str(exc), EXIT_USAGE, home.debug)
    if not words:
        return None
    if words[0] in LEAVE_WORDS:
        raise _Leave()
    if words[0] == "help":
        if len(words) == 1:
            with click.Context(app, info_name="queuectl") as ctx:
                click.echo(ctx.get_help())
            click.echo("\n" + SHELL_HELP)
            return 0
        words = words[1:] + ["--help"]
    code = run(words, shell=home)
    if code == EXIT_STORE:
        home.close()  # the next line opens the store afresh (a restarted server)
    return code


def run_lines(home: CliState, lines: Iterable[str]) -> int:
    """Run lines one after another (`shell -c`, a script on stdin); the last code."""
    code = 0
    for text in lines:
        try:
            result = run_line(home, text)
        except _Leave:
            break
        if result is not None:
            code = result
    return code


def history_file() -> str:
    """$XDG_STATE_HOME/queuectl/history (the user state dir), private to the user."""
    from queuectl.paths import APP, PRIVATE_FILE_MODE, make_private_dir

    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_STATE_HOME", "").strip() or os.path.expanduser(
            "~/.local/state")
        folder = os.path.join(base, APP)
    else:
        from platformdirs import user_state_dir

        folder = user_state_dir(APP, appauthor=False)
    make_private_dir(folder)
    path = os.path.join(folder, "history")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE))
    return path


def _completer(home: CliState) -> Any:
    """A prompt_toolkit completer over the click app (see cli/complete.py)."""
    from prompt_toolkit.completion import Completer, Completion

    from queuectl.cli import complete
    from queuectl.cli.app import app

    class AppCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
            word, items = complete.candidates(app, home.line(), document.text_before_cursor)
            for item in items:
                yield Completion(item.value, start_position=-len(word),
                                 display_meta=item.help or "")

    return AppCompleter()


def interactive(home: CliState) -> int:
    """The prompt loop: Ctrl-C drops the line, Ctrl-D or `exit` leaves."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.shortcuts import CompleteStyle

    session: PromptSession[str] = PromptSession(
        history=FileHistory(history_file()), auto_suggest=AutoSuggestFromHistory(),
        completer=_completer(home), complete_while_typing=False,
        complete_style=CompleteStyle.READLINE_LIKE)
    while True:
        try:
            text = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return 0
        try:
            run_line(home, text)
        except _Leave:
            return 0
        except KeyboardInterrupt:  # between the funnel and the prompt
            click.echo("interrupted", err=True)


def open_shell(home: CliState, lines: Iterable[str] = (), banner: bool = False) -> int:
    """Run `lines`, or a script from a stdin that is not a terminal, or the prompt
    (after the banner, when asked for)."""
    lines = list(lines)
    if lines:
        return run_lines(home, lines)
    if not sys.stdin.isatty():
        return run_lines(home, sys.stdin)
    if banner:
        from queuectl import __version__

        click.echo(f"{BANNER}\n\nqueuectl {__version__}: a background job queue for "
                   f"shell commands\n{TIPS}\n")
    return interactive(home)


SHELL_DOC = """An interactive `queuectl>` prompt: every command, without typing `queuectl`.

The store stays open between lines; --db and --json given here apply to every line.
`help` lists the commands, `help CMD` shows one, `exit` or Ctrl-D leaves, Ctrl-C
drops the line being typed.  -c runs lines and exits with the last line's code.

\b
Examples:
  queuectl shell
  queuectl --db jobs.db shell -c "enqueue 'echo hi'" -c status
  queuectl shell -c "list --state dead; dlq retry --all"
"""


@click.command("shell", help=SHELL_DOC, short_help="An interactive queuectl> prompt.")
@click.option("--command", "-c", "commands", multiple=True, metavar="LINE",
              help="Run LINE and exit (repeatable; ';' separates lines too).")
@json_option
def shell(commands: tuple[str, ...]) -> int:
    home = state()
    if home.in_shell:
        raise InvalidInput("already in the shell")
    return open_shell(home, commands)


__all__ = ["shell", "open_shell", "run_line", "split_line"]
