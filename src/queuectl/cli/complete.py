"""Completion, shared by the shell's prompt and the shells' (bash, zsh, fish) scripts.

Both walk the same click app through click's own completion machinery; the dynamic
values (job ids, states, queues, config keys) come from the `shell_complete` callbacks
below, which the commands attach to their arguments and options.  Nothing heavy is
imported at module level: every command module imports this one."""

from __future__ import annotations

import contextlib
import os
import shlex
from typing import TYPE_CHECKING, Iterator, Optional

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from queuectl.queue import Queue

#: How many job ids a completion offers at most (one bounded index walk).
ID_COMPLETIONS = 20
COMPLETE_VAR = "_QUEUECTL_COMPLETE"
#: Words the shell understands besides the commands.
SHELL_WORDS = {"help": "Show the commands, or a command's help.",
               "exit": "Leave the shell.", "quit": "Leave the shell."}


@contextlib.contextmanager
def _store(ctx: click.Context) -> Iterator[Optional["Queue"]]:
    """The store to complete from: the shell's open one, else the line's --db (or the
    environment's / default store) opened for this completion only.  A store that
    does not exist yet is not created."""
    from queuectl.cli.context import CliState
    from queuectl.errors import QueuectlError

    st = ctx.find_object(CliState)
    if st is not None and st.in_shell:
        yield st.queue()
        return
    from queuectl.backends import is_postgres, store_url
    from queuectl.queue import Queue

    try:
        url = store_url(ctx.find_root().params.get("db"))
    except QueuectlError:
        yield None
        return
    if not is_postgres(url) and not os.path.exists(url):
        yield None
        return
    q = Queue(url)
    try:
        yield q
    finally:
        q.close()


def _items(values: list[str], incomplete: str, help: Optional[str] = None
           ) -> list["CompletionItem"]:
    from click.shell_completion import CompletionItem

    return [CompletionItem(v, help=help) for v in values if v.startswith(incomplete)]


def job_ids(ctx: click.Context, param: click.Parameter, incomplete: str
            ) -> list["CompletionItem"]:
    """Ids of stored jobs that start with `incomplete` (at most ID_COMPLETIONS)."""
    from queuectl.errors import QueuectlError

    try:
        with _store(ctx) as q:
            ids = [] if q is None else q.complete_ids(incomplete, ID_COMPLETIONS)
    except QueuectlError:
        return []  # a completion never prints an error into the user's line
    return _items(ids, "")


def queue_names(ctx: click.Context, param: click.Parameter, incomplete: str
                ) -> list["CompletionItem"]:
    """Queue names in use (from the newest jobs), and `default`."""
    from queuectl.errors import QueuectlError

    try:
        with _store(ctx) as q:
            names = ["default"] if q is None else q.queue_names()
    except QueuectlError:
        names = ["default"]
    return _items(names, incomplete)


def cron_names(ctx: click.Context, param: click.Parameter, incomplete: str
               ) -> list["CompletionItem"]:
    """Names of the store's cron schedules."""
    from queuectl.errors import QueuectlError

    try:
        with _store(ctx) as q:
            names = [] if q is None else [s.name for s in q.backend.cron_list()]
    except QueuectlError:
        return []
    return _items(names, incomplete)


def state_names(ctx: click.Context, param: click.Parameter, incomplete: str
                ) -> list["CompletionItem"]:
    """Every job state (and `dlq`, the name of `dead` jobs as a queue)."""
    from queuectl.states import JobState

    return _items([s.value for s in JobState] + ["dlq"], incomplete)


def config_keys(ctx: click.Context, param: click.Parameter, incomplete: str
                ) -> list["CompletionItem"]:
    """Every config key, with what it means."""
    from click.shell_completion import CompletionItem

    from queuectl.config import KEYS

    return [CompletionItem(name, help=key.help) for name, key in KEYS.items()
            if name.startswith(incomplete)]


# -- the prompt's completion --------------------------------------------------------
def split_for_completion(text: str) -> tuple[list[str], str]:
    """(complete words, the word being typed) of a prompt line up to the cursor; an
    unclosed quote belongs to the word being typed."""
    try:
        words = shlex.split(text)
    except ValueError:  # an open quote: complete inside it
        for quote in ('"', "'"):
            try:
                words = shlex.split(text + quote)
                break
            except ValueError:
                continue
        else:
            return [], ""
        return words[:-1], words[-1] if words else ""
    if not text or text[-1].isspace():
        return words, ""
    return words[:-1], words[-1]


def candidates(app: click.Command, obj: object, text: str
               ) -> tuple[str, list["CompletionItem"]]:
    """What can follow `text` at the prompt: (the word being typed, completions)."""
    from click.shell_completion import CompletionItem, ShellComplete

    args, incomplete = split_for_completion(text)
    if args[:1] == ["help"]:
        args = args[1:]
    completer = ShellComplete(app, {"obj": obj}, "queuectl", COMPLETE_VAR)
    items = [item for item in completer.get_completions(args, incomplete)
             if item.type == "plain"]
    if not items and not incomplete:  # nothing else fits: the options
        items = [item for item in completer.get_completions(args, "--")
                 if item.type == "plain"]
    if not args:
        items += [CompletionItem(word, help=help) for word, help in SHELL_WORDS.items()
                  if word.startswith(incomplete)]
    return incomplete, items


# -- `queuectl completion SHELL` ----------------------------------------------------
COMPLETION_HELP = """Print the shell-completion script for bash, zsh or fish.

Completes commands, options, job ids (live from the store), states, queue names and
config keys.  Install it once:

\b
  echo 'eval "$(queuectl completion bash)"' >> ~/.bashrc
  echo 'eval "$(queuectl completion zsh)"' >> ~/.zshrc
  queuectl completion fish > ~/.config/fish/completions/queuectl.fish

\b
Example:
  queuectl completion bash > /etc/bash_completion.d/queuectl
"""


@click.command("completion", help=COMPLETION_HELP,
               short_help="Print the bash, zsh or fish completion script.")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    from click.shell_completion import get_completion_class

    from queuectl.cli.app import app

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice allows only the shells click knows
    click.echo(cls(app, {}, "queuectl", COMPLETE_VAR).source())


__all__ = ["job_ids", "queue_names", "state_names", "config_keys", "candidates",
           "completion"]
