"""The few job rules the quick enqueue lane (cli/quick.py) shares with jobspec: new
ids, the rule every command obeys, and how a JSON job is recognised.  Free of heavy
imports, since they sit on the start-up path of `queuectl enqueue "CMD"`."""

from __future__ import annotations

import os

from queuectl.errors import InvalidInput

MAX_COMMAND_BYTES = 1 << 20

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def new_job_id() -> str:
    """A random (version 4) UUID, formatted directly: `uuid.uuid4()` was a tenth of the
    cost of validating a job in a batch enqueue."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def looks_like_json_object(text: str) -> bool:
    return text.lstrip().startswith("{")


def check_command(value: object) -> str:
    """The command itself, or InvalidInput saying what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidInput(f"command must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput("command is empty")
    if "\x00" in value:
        raise InvalidInput("command contains a NUL byte")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_COMMAND_BYTES:
        raise InvalidInput("command is longer than 1 MiB")
    return value
