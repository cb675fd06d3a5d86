"""The few job rules the quick enqueue lane (cli/quick.py) shares with jobspec: new
ids, the rule every command obeys, and how a JSON job is recognised.  Free of heavy
imports, since they sit on the start-up path of `queuectl enqueue "CMD"`."""

from __future__ import annotations

import os
from collections import deque

from queuectl.errors import InvalidInput

# `sh -c COMMAND` passes the command as one argument, and Linux caps one argument at
# 128 KiB (MAX_ARG_STRLEN, the final NUL included): a longer command could never run.
MAX_COMMAND_BYTES = 128 * 1024 - 1

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


# Ids are cut from one os.urandom call per 64: a call per id cost a batch enqueue
# ~8 us each, the syscall handing the GIL to the thread writing the batch.  popleft is
# atomic, so threads never share an id; a forked child starts with an empty pool.
_POOL: deque[str] = deque()
os.register_at_fork(after_in_child=_POOL.clear)


def new_job_id() -> str:
    """A random (version 4) UUID, formatted directly: `uuid.uuid4()` was a tenth of the
    cost of validating a job in a batch enqueue."""
    while True:
        try:
            return _POOL.popleft()
        except IndexError:
            _refill(64)


def _refill(count: int) -> None:
    raw = os.urandom(16 * count).hex()
    for at in range(0, len(raw), 32):
        h = raw[at:at + 32]
        _POOL.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")


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
        raise InvalidInput("command is longer than 128 KiB (put a long script in a file "
                           "and run the file)")
    return value
