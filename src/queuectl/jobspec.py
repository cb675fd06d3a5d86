"""Turn user input (a JSON object, a command line, a JSONL file line) into a validated
NewJob.  Pure: the clock is passed in.  Every problem is an InvalidInput with a
message that names the field."""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from queuectl.errors import InvalidInput
from queuectl.jobcore import check_command as _command
from queuectl.jobcore import new_job_id
from queuectl.models import MAX_PRIORITY, MIN_PRIORITY, NewJob
from queuectl.times import parse_duration, parse_when

FIELDS = ("id", "command", "priority", "delay", "run_at", "timeout", "max_retries",
          "backoff_base", "queue", "cwd", "env", "depends_on", "after", "unique_key",
          "retry_on", "no_retry_on")
# Fields of a stored job that `show --json` prints; accepted when they hold the
# values a new job starts with, so a job object copied from the docs enqueues.
_FIELD_SET = frozenset(FIELDS)
_INITIAL_ONLY = {"state": ("pending",), "attempts": (0,)}
_IGNORED = ("created_at", "updated_at")
_ID = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def parse_json_object(text: str) -> dict[str, Any]:
    """A JSON object from text, or InvalidInput."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
                           ) from None
    except ValueError as exc:  # e.g. a number too long to convert
        raise InvalidInput(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"a job must be a JSON object, not {type(value).__name__}")
    return value


def build(fields: Mapping[str, Any], now: float) -> NewJob:
    """Validate job fields (JSON keys; `-` or `_` both work) into a NewJob."""
    data: dict[str, Any] = {}
    for raw_key, value in fields.items():
        key = raw_key if raw_key in _FIELD_SET else str(raw_key).strip().replace("-", "_")
        if key not in _FIELD_SET and key not in _IGNORED and key not in _INITIAL_ONLY:
            key = raw_key  # unknown: reported as given ("\r" and " " are not one field)
        if key in data:
            raise InvalidInput(f"field {key!r} given twice")
        data[key] = value
    if not data.keys() <= _FIELD_SET:  # the common case skips this (batch enqueue)
        _drop_stored_fields(data)
    if "command" not in data or data["command"] is None:
        raise InvalidInput("a job needs a command (e.g. '{\"command\": \"echo hi\"}')")
    job = NewJob(command=_command(data["command"]))
    job.id = _job_id(data["id"]) if data.get("id") is not None else new_job_id()
    if data.get("priority") is not None:
        job.priority = _priority(data["priority"])
    if data.get("delay") is not None and data.get("run_at") is not None:
        raise InvalidInput("give either delay or run_at, not both")
    if data.get("delay") is not None:
        job.run_at = now + _duration(data["delay"], "delay")
    elif data.get("run_at") is not None:
        job.run_at = _when(data["run_at"], now)
    if data.get("timeout") is not None:
        job.timeout = _duration(data["timeout"], "timeout")
    if data.get("max_retries") is not None:
        job.max_retries = _int(data["max_retries"], "max_retries", 0, 1000)
    if data.get("backoff_base") is not None:
        job.backoff_base = _number(data["backoff_base"], "backoff_base", 1, 1000)
    if data.get("queue") is not None:
        job.queue = check_queue_name(data["queue"])
    if data.get("cwd") is not None:
        job.cwd = _text(data["cwd"], "cwd")
    if data.get("env") is not None:
        job.env = _env(data["env"])
    for key in ("depends_on", "after"):
        if data.get(key) is not None:
            _add_dependencies(job, data[key], key)
    if data.get("unique_key") is not None:
        job.unique_key = _text(data["unique_key"], "unique_key")
    if data.get("retry_on") is not None or data.get("no_retry_on") is not None:
        job.retry_policy = retry_policy(data.get("retry_on"), data.get("no_retry_on"))
    return job


def retry_policy(retry_on: Any, no_retry_on: Any) -> dict[str, list[str]] | None:
    """A job's or queue's retry rules as stored (None: none), or InvalidInput."""
    from queuectl.retryrules import rules_from_input

    return rules_from_input(retry_on, no_retry_on).to_json()


def _drop_stored_fields(data: dict[str, Any]) -> None:
    """Accept the fields of a stored job a new job starts with; reject unknown ones."""
    for key in list(data):
        if key in _IGNORED:
            del data[key]
        elif key in _INITIAL_ONLY:
            if data[key] not in _INITIAL_ONLY[key] or isinstance(data[key], bool):
                raise InvalidInput(f"field {key!r} is set by queuectl, not by the job "
                                   f"(a new job starts with {key}={_INITIAL_ONLY[key][0]!r})")
            del data[key]
    unknown = sorted(set(data) - _FIELD_SET)
    if unknown:
        raise InvalidInput(f"unknown job field {unknown[0]!r}; valid fields: "
                           + ", ".join(FIELDS))


def _job_id(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"id must be a string, not {type(value).__name__}")
    text = str(value)
    if not _ID.match(text):
        raise InvalidInput(f"invalid job id {text!r}: 1-200 characters, no spaces or "
                           "control characters")
    return text


def _priority(value: Any) -> int:
    return _int(value, "priority", MIN_PRIORITY, MAX_PRIORITY)


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer, not a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _number(value: Any, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a number, not a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}") from None
    if number != number or not lo <= number <= hi:
        raise InvalidInput(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
    return number


def _duration(value: Any, name: str) -> float:
    if value is None or isinstance(value, (list, dict)):
        raise InvalidInput(f"{name} must be seconds or a duration like 5m, got {value!r}")
    seconds = parse_duration(value, what=name)
    if seconds > 10 * 365 * 86400:
        raise InvalidInput(f"{name} is more than ten years")
    return seconds


def _when(value: Any, now: float) -> float:
    if isinstance(value, (list, dict)) or value is None:
        raise InvalidInput(f"run_at must be a time like +5m or 2025-11-10 02:00:00, "
                           f"got {value!r}")
    when = parse_when(value, now)
    if not when - now <= 10 * 365 * 86400:  # also rejects inf and nan
        raise InvalidInput(f"run_at is more than ten years away: {value!r}")
    if when < 0:
        raise InvalidInput(f"run_at is before 1970: {value!r}")
    return when


def check_queue_name(value: Any) -> str:
    """A valid queue name, or InvalidInput."""
    if not isinstance(value, str) or not _QUEUE.match(value):
        raise InvalidInput(f"invalid queue name {value!r}: 1-64 letters, digits, _ . : -")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidInput(f"{name} must be a non-empty string, got {value!r}")
    return value


def _env(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidInput("env must be an object of NAME: value strings")
    env = {}
    for key, item in value.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key)):
            raise InvalidInput(f"invalid environment variable name {key!r}")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise InvalidInput(f"env value of {key} must be a string")
        env[str(key)] = str(item)
    return env


def _add_dependencies(job: NewJob, value: Any, name: str) -> None:
    """`"a"`, `["a", "b"]` or `[{"id": "a", "on": "any"}]` (ids or id prefixes; the
    queue resolves them) into job.depends_on and job.conditions."""
    from queuectl.dependencies import COMPLETED, parse_condition

    for item in value if isinstance(value, list) else [value]:
        condition = COMPLETED
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"id", "on"})
            if unknown or "id" not in item:
                raise InvalidInput(f"{name} entries are ids or objects "
                                   '{"id": ID, "on": "completed|any|failure"}')
            condition = parse_condition(item.get("on", COMPLETED))
            item = item["id"]
        dep = _job_id(item)
        if dep in job.conditions:
            if job.conditions[dep] != condition:
                raise InvalidInput(f"dependency {dep!r} is given twice with different "
                                   "conditions")
            continue
        job.depends_on.append(dep)
        job.conditions[dep] = condition



#: the fields `retry ID --command ...` may change
EDITABLE = ("command", "timeout", "priority", "queue", "max_retries", "env")


def edit_fields(changes: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Validated new values for a job being retried (only the fields given)."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name not in EDITABLE:
            raise InvalidInput(f"{name} cannot be changed on retry (valid: "
                               + ", ".join(EDITABLE) + ")")
        if name == "command":
            out[name] = _command(value)
        elif name == "timeout":
            out[name] = _duration(value, "timeout")
        elif name == "priority":
            out[name] = _priority(value)
        elif name == "queue":
            out[name] = check_queue_name(value)
        elif name == "max_retries":
            out[name] = _int(value, "max_retries", 0, 1000)
        else:
            out[name] = _env(value)
    return out
