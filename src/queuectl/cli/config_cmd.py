"""`config`: every key with its value and where the value comes from."""

from __future__ import annotations

from typing import Any, Optional

import click

from queuectl.cli import complete, render
from queuectl.cli.context import json_option, state
from queuectl.config import KEYS, canonical_key
from queuectl.errors import InvalidInput


def _show() -> None:
    st = state()
    items = st.queue().config_items()
    if st.json:
        render.emit_json({name: {"value": value, "source": source}
                          for name, value, source in items})
        return
    render.table(["KEY", "VALUE", "SOURCE", "MEANING"],
                 [[name, _text(value), source, KEYS[name].help] for name, value, source in items])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _get(key: str) -> None:
    st = state()
    name = canonical_key(key)
    name, value, source = st.queue().config_get(name)
    if st.json:
        render.emit_json({"key": name, "value": value, "source": source})
    else:
        click.echo(_text(value))


def _set(key: str, value: str) -> None:
    st = state()
    canonical_key(key)  # an unknown key fails before the store is opened
    q = st.queue()
    name, typed = q.config_set(key, value)
    _, effective, source = q.config_get(name)
    if st.json:
        render.emit_json({"key": name, "value": typed, "source": "stored",
                          "effective": effective, "effective_source": source})
        return
    click.echo(f"{name} = {_text(typed)}")
    if source != "stored":
        click.echo(f"note: {source} overrides it here (effective value {_text(effective)})",
                   err=True)


@click.group(invoke_without_command=True)
@click.option("--key", "-k", metavar="KEY", help="With --value: set KEY; alone: print it.",
              shell_complete=complete.config_keys)
@click.option("--value", metavar="VALUE", help="The value to set for --key.")
@json_option
@click.pass_context
def config(ctx: click.Context, key: Optional[str], value: Optional[str]) -> None:
    """Show or change settings stored in the queue (seen by every worker).

    \b
      queuectl config                        # every key, its value and its source
      queuectl config get max-retries
      queuectl config set max-retries 5      # max_retries works too
      queuectl config set --key backoff_base --value 3
      queuectl config --key max_retries --value 5
      queuectl config unset max-retries

    Precedence: command-line flag > QUEUECTL_* environment > stored > default.
    """
    if ctx.invoked_subcommand is not None:
        if key is not None or value is not None:
            raise InvalidInput("--key/--value go after `config set`, or alone after `config`")
        return
    if value is not None and key is None:
        raise InvalidInput("--value needs --key")
    if key is not None and value is not None:
        _set(key, value)
    elif key is not None:
        _get(key)
    else:
        _show()


@config.command("show")
@json_option
def config_show() -> None:
    """Every key with its value and source.

    \b
      queuectl config show
      queuectl config show --json
    """
    _show()


@config.command("list", hidden=True)
@json_option
def config_list() -> None:
    """Every key with its value and source (same as show).

    \b
      queuectl config list
    """
    _show()


@config.command("get")
@click.argument("key", shell_complete=complete.config_keys)
@json_option
def config_get(key: str) -> None:
    """Print one key's effective value.

    \b
      queuectl config get max-retries
      queuectl config get backoff_base --json
    """
    _get(key)


@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key", required=False, shell_complete=complete.config_keys)
@click.argument("value", required=False)
@click.option("--key", "-k", "key_opt", metavar="KEY", shell_complete=complete.config_keys)
@click.option("--value", "value_opt", metavar="VALUE")
@json_option
def config_set(key: Optional[str], value: Optional[str], key_opt: Optional[str],
               value_opt: Optional[str]) -> None:
    """Store a value: `config set KEY VALUE` or `config set --key KEY --value VALUE`.

    \b
      queuectl config set max-retries 5
      queuectl config set --key retention --value 7d
    """
    if key is not None and key_opt is not None:
        raise InvalidInput("give the key once (KEY or --key)")
    if value is not None and value_opt is not None:
        raise InvalidInput("give the value once (VALUE or --value)")
    key = key if key is not None else key_opt
    value = value if value is not None else value_opt
    if key is None or value is None:
        raise InvalidInput("usage: queuectl config set KEY VALUE (valid keys: "
                           + ", ".join(KEYS) + ")")
    _set(key, value)


@config.command("unset")
@click.argument("key", shell_complete=complete.config_keys)
@json_option
def config_unset(key: str) -> None:
    """Remove a stored value (the default applies again).

    \b
      queuectl config unset max-retries
    """
    st = state()
    canonical_key(key)
    name, removed = st.queue().config_unset(key)
    if st.json:
        render.emit_json({"key": name, "removed": removed})
    else:
        click.echo(f"{name} unset" if removed else f"{name} was not set")
