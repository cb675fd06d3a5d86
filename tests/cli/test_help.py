"""Every command's --help ends with an example, and mistyped names get a suggestion."""

from __future__ import annotations

import re
from typing import Iterator

import click
import pytest

from tests.conftest import run_cli

EXAMPLE = re.compile(r"^\s+queuectl \S", re.MULTILINE)


def _commands() -> Iterator[tuple[str, click.Command]]:
    from queuectl.cli.app import COMMANDS, app

    def walk(path: str, command: click.Command) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                sub = command.get_command(click.Context(command), name)
                assert sub is not None
                yield from walk(f"{path} {name}", sub)

    ctx = click.Context(app)
    for name in COMMANDS:
        command = app.get_command(ctx, name)
        assert command is not None
        yield from walk(name, command)


def test_every_command_help_has_an_example() -> None:
    missing = []
    for path, command in _commands():
        with click.Context(command, info_name=f"queuectl {path}") as ctx:
            text = command.get_help(ctx)
        if not EXAMPLE.search(text):
            missing.append(path)
    assert not missing, f"--help without an indented `queuectl ...` example: {missing}"


@pytest.mark.parametrize("args, needle", [
    (["stauts"], "'status'"),
    (["lst"], "Did you mean 'list'?"),
    (["dlq", "retri"], "Did you mean 'retry'?"),
    (["config", "get", "backoff"], "did you mean backoff-base"),
    (["config", "set", "max-retry", "5"], "did you mean max-retries?"),
    (["list", "--state", "pendng"], "did you mean pending?"),
    (["purge", "--older-than", "1d", "--state", "complted"], "did you mean completed?"),
])
def test_mistyped_names_get_the_nearest_match(sqlite_url: str, args: list[str],
                                              needle: str) -> None:
    done = run_cli(*args, db=sqlite_url)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("queuectl: error: "), done.stderr
    assert needle in lines[0]
    shown = run_cli("config", "get", "max-retries", db=sqlite_url)
    # nothing was written: no store at all, or the default value
    assert shown.stdout.strip() == "3" or "no queue at" in shown.stderr
