"""What every command shares: the chosen store, the --json switch, the --debug switch."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

import click

if TYPE_CHECKING:
    from queuectl.queue import Queue


@dataclass
class CliState:
    db: Optional[str] = None
    json: bool = False
    debug: bool = False
    flags: dict[str, Any] = field(default_factory=dict)  # config overrides from flags
    in_shell: bool = False  # a line typed at the `queuectl>` prompt
    parent: Optional["CliState"] = None  # the shell's state, whose store a line reuses
    _queue: Optional["Queue"] = None
    _defaults: Optional[dict[str, Any]] = None

    def line(self) -> "CliState":
        """The state of one line at the shell's prompt: the shell's --db, --json and
        --debug, and the shell's open store (unless the line names another --db)."""
        return CliState(db=self.db, json=self.json, debug=self.debug, flags=self.flags,
                        in_shell=True, parent=self)

    def queue(self) -> "Queue":
        """The store's service API, opened on first use (bad input fails before this)."""
        if self.parent is not None and self.db == self.parent.db:
            return self.parent._open(check=False)  # the shell's store: it is worked in
        return self._open(check=True)

    def _open(self, check: bool) -> "Queue":
        if self._queue is None:
            from queuectl.queue import Queue  # not needed for --help / --version

            queue = Queue(self.db, flags=self.flags)
            if check:
                _check_exists(queue)
            self._queue = queue
        return self._queue

    def job_defaults(self) -> dict[str, Any]:
        """The config values jobs without their own max_retries, backoff_base and
        timeout follow (read once per command)."""
        if self._defaults is None:
            self._defaults = self.queue().job_defaults()
        return self._defaults

    def job_dict(self, job: Any, **options: Any) -> dict[str, Any]:
        """A job's JSON shape with its effective retry and timeout numbers."""
        return job.to_dict(defaults=self.job_defaults(), **options)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
            self._queue = None

    def setup_logging(self, level: str = "INFO", stream: Any = None) -> None:
        """Log lines to stderr (or `stream`); on a terminal the level is coloured."""
        import sys

        out = stream or sys.stderr
        handler = logging.StreamHandler(out)
        fmt, datefmt = "%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"
        handler.setFormatter(_LevelColours(fmt, datefmt) if _isatty(out)
                             else logging.Formatter(fmt, datefmt))
        logging.basicConfig(
            level=logging.DEBUG if self.debug else getattr(logging, level, logging.INFO),
            handlers=[handler])


#: commands that only read (or only reach workers, who need a store): on an SQLite path
#: that does not exist they fail instead of creating folders and an empty store
READ_ONLY = frozenset({
    "status", "list", "list-jobs", "scheduled", "show", "logs", "wait", "dlq", "dlq list",
    "workers", "worker status", "worker stop", "stop", "scheduler status",
    "scheduler stop", "scheduler logs", "config", "config show", "config list",
    "config get", "cron", "cron list", "hooks",
})


def _check_exists(queue: "Queue") -> None:
    """"no queue at PATH" (exit 3) for a read-only command on a SQLite file that does
    not exist; the default store in the data dir reads as an empty queue."""
    if queue.is_postgres:
        return
    import os

    if os.path.exists(queue.url):
        return
    from queuectl.paths import default_store_url

    if queue.url == default_store_url():
        return
    ctx = click.get_current_context(silent=True)
    path = " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""
    if path in READ_ONLY:
        from queuectl.errors import StoreError

        raise StoreError(f"no queue at {queue.url} (nothing was created; a command that "
                         "adds a job creates it)")


def confirm_bulk(yes: bool, question: Callable[[], str], refusal: str) -> None:
    """A destructive bulk command goes on with --yes; without it, it asks on a
    terminal (`question()` is called only then) and refuses elsewhere."""
    if yes:
        return
    import sys

    if not sys.stdin.isatty():
        from queuectl.errors import InvalidInput

        raise InvalidInput(f"refusing to {refusal} without --yes")
    click.confirm(question(), abort=True)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LevelColours(logging.Formatter):
    """The level name coloured (a terminal only): the line is formatted once, as a
    plain Formatter does, and the padded level name wrapped in its colour."""

    COLOURS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "31",
               "CRITICAL": "1;31"}

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        name = f"{record.levelname:<7}"
        colour = self.COLOURS.get(record.levelname)
        if colour is None:
            return text
        return text.replace(name, f"\x1b[{colour}m{name}\x1b[0m", 1)


def state() -> CliState:
    return click.get_current_context().find_object(CliState) or CliState()


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).json = True


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` on the group and on every command: both spellings work."""
    return click.option("--json", "as_json", is_flag=True, expose_value=False,
                        is_eager=True, callback=_set_json,
                        help="Print JSON (a stable, documented shape).")(func)
