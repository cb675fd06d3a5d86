"""Settings: command-line flag > QUEUECTL_* environment > stored config > default.

Config lives in the store (so every worker on every host sees the same values); this
module only knows the keys, their defaults and how to validate them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from queuectl.errors import ConfigError, InvalidInput
from queuectl.times import parse_duration

if TYPE_CHECKING:
    from queuectl.retryrules import Rules


def _int_range(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("expected an integer")
            value = int(value)
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError("expected an integer") from None
        if number < lo or (hi is not None and number > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise ValueError(f"must be {bound}")
        return number

    return check


def _number(lo: float, hi: float | None = None, *, duration: bool = False,
            strict_lo: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            if duration:
                number = parse_duration(value)
            else:
                number = float(str(value).strip())
        except (ValueError, InvalidInput):
            raise ValueError("expected a number" + (" of seconds (or 5m, 2h, 7d)"
                                                      if duration else "")) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        if number < lo or (strict_lo and number == lo) or (hi is not None and number > hi):
            op = ">" if strict_lo else ">="
            bound = f"{op} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
            raise ValueError(f"must be {bound}")
        return int(number) if float(number).is_integer() else number

    return check


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _aging_step(value: Any) -> float:
    """0 (off), or at least one second a priority step, at most ten years."""
    number = _number(0, 10 * 365 * 86400, duration=True)(value)
    if 0 < number < 1:
        raise ValueError("must be 0 (off) or at least 1 second")
    return number


def _log_level(value: Any) -> str:
    text = str(value).strip().upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return text


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(value: Any) -> int:
    """Bytes: a whole number, or one with K, M or G (KiB, MiB, GiB): `10M`."""
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes (e.g. 1048576 or 10M)")
    if isinstance(value, int):
        number, unit = value, ""
    else:
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in ("K", "M", "G") else ""
        digits = text[:len(text) - len(unit)].strip()
        if not digits.isdigit():
            raise ValueError("expected a size in bytes (e.g. 1048576 or 10M)")
        number = int(digits)
    if not 0 <= number * _SIZE_UNITS[unit] <= 1 << 40:
        raise ValueError("expected a size from 0 to 1T")
    return number * _SIZE_UNITS[unit]


def _hook(value: Any) -> str:
    """A shell command line (run with sh -c); "" = none."""
    text = str(value).strip()
    if "\0" in text or len(text) > 4096:
        raise ValueError("expected a shell command line (at most 4096 characters)")
    return text


def _retry_terms(value: Any) -> str:
    """Retry terms (queuectl.retryrules), stored canonical and comma-separated."""
    from queuectl.retryrules import parse_terms

    if isinstance(value, str) and value.strip() == "":
        return ""  # none: the default
    try:
        return ",".join(parse_terms(value))
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    #: read from the store only (the store itself uses it: a hook is chosen by the
    #: final transition's trigger), so QUEUECTL_* and flags do not apply
    stored_only: bool = False

    @property
    def env(self) -> str:
        return "QUEUECTL_" + self.name.upper().replace("-", "_")


KEYS: dict[str, Key] = {k.name: k for k in (
    Key("max-retries", 3, _int_range(0, 1000), "retries after the first failure"),
    Key("backoff-base", 2, _number(1, 1000), "retry delay is backoff-base ** attempts seconds"),
    Key("backoff-max", 3600, _number(0, duration=True, strict_lo=True),
        "cap on one retry delay, seconds"),
    Key("backoff-jitter", False, _boolean, "randomise retry delays by up to 25%"),
    Key("job-timeout", 0, _number(0, duration=True), "seconds a run may take; 0 = no limit"),
    Key("worker-count", 1, _int_range(1, 512), "slots of `worker start` without --count"),
    Key("poll-interval", 2, _number(0.01, 3600, duration=True),
        "fallback poll of idle workers, seconds (wake-ups are immediate)"),
    Key("heartbeat-interval", 5, _number(0.05, 3600, duration=True),
        "how often workers report they are alive, seconds"),
    Key("lease-timeout", 30, _number(0.1, duration=True),
        "silence after which a worker's jobs are rescued, seconds"),
    Key("output-limit", 65536, _int_range(0), "bytes of output kept per job (the tail)"),
    Key("output-file-max", 0, _size,
        "keep each job's full output in a file on the worker's host, up to this many "
        "bytes (e.g. 100M; 0 = off)"),
    Key("retention", 604800, _number(0, duration=True),
        "finished jobs older than this are purged by `cleanup`, seconds"),
    Key("log-level", "INFO", _log_level, "worker log level"),
    Key("priority-aging", 0, _aging_step,
        "seconds of waiting worth one priority step (no starvation); 0 = strict priority"),
    Key("on-dead", "", _hook, "command run once when a job ends dead, its fields in "
        "QUEUECTL_* variables (queue hook overrides it); empty = none", stored_only=True),
    Key("on-complete", "", _hook, "command run once when a job completes (as on-dead); "
        "empty = none", stored_only=True),
    Key("hook-timeout", 30, _number(0, 86400, duration=True, strict_lo=True),
        "seconds an on-dead/on-complete hook may run before it is killed"),
    Key("retry-on", "", _retry_terms,
        "only these failures are retried (e.g. 75,64-78,SIGKILL,timeout); "
        "empty = all; a queue's or job's own rules win"),
    Key("no-retry-on", "", _retry_terms,
        "these failures go straight to dead (e.g. 2,126,127,spawn-error); a queue's or "
        "job's own rules win"),
)}


def did_you_mean(word: str, choices: list[str]) -> str:
    """" (did you mean X?)" for the nearest of `choices` to a mistyped `word` (the
    choices it begins, else difflib's closest), or ""."""
    import difflib

    matches = [c for c in choices if word and c.startswith(word)][:3] or \
        difflib.get_close_matches(word, choices, n=1)
    if not matches:
        return ""
    listed = matches[0] if len(matches) == 1 else \
        ", ".join(matches[:-1]) + " or " + matches[-1]
    return f" (did you mean {listed}?)"


def canonical_key(name: str) -> str:
    """`max_retries`, `MAX-RETRIES` and `max-retries` are the same key."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in KEYS:
        valid = ", ".join(sorted(KEYS))
        raise ConfigError(f"unknown config key {name!r}{did_you_mean(key, list(KEYS))}; "
                          f"valid keys: {valid}")
    return key


def validate(name: str, value: Any) -> Any:
    """The typed value of `value` for key `name`, or ConfigError."""
    key = KEYS[canonical_key(name)]
    try:
        return key.parse(value)
    except ValueError as exc:
        raise ConfigError(f"invalid value {value!r} for {key.name}: {exc}") from None


def check_together(values: Mapping[str, Any]) -> None:
    """Keys that bound each other (`values`: every key's value as it would be
    stored): a worker's lease must outlast two heartbeats, or live workers' jobs are
    rescued from under them."""
    lease, beat = values["lease-timeout"], values["heartbeat-interval"]
    if lease < 2 * beat:
        raise ConfigError(f"lease-timeout ({lease:g}s) must be at least twice "
                          f"heartbeat-interval ({beat:g}s); set heartbeat-interval "
                          "lower first, or lease-timeout higher")


def to_text(value: Any) -> str:
    """How a typed value is stored."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Settings:
    """Resolved configuration with the source of every value."""

    def __init__(self, stored: Mapping[str, str] | None = None,
                 env: Mapping[str, str] | None = None,
                 flags: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        env = os.environ if env is None else env
        for name, key in KEYS.items():
            value, source = key.default, "default"
            if stored and name in stored:
                try:
                    value, source = key.parse(stored[name]), "stored"
                except ValueError:
                    pass  # a bad stored value never stops workers: the default applies
            if key.stored_only:
                pass
            elif key.env in env and env[key.env] != "":
                value, source = validate(name, env[key.env]), "env"
            if not key.stored_only and flags and flags.get(name) is not None:
                value, source = validate(name, flags[name]), "flag"
            self._values[name] = value
            self._sources[name] = source

    def __getitem__(self, name: str) -> Any:
        return self._values[canonical_key(name)]

    def source(self, name: str) -> str:
        return self._sources[canonical_key(name)]

    def items(self) -> list[tuple[str, Any, str]]:
        return [(name, self._values[name], self._sources[name]) for name in KEYS]

    # Typed accessors used by core code.
    @property
    def max_retries(self) -> int:
        return self._values["max-retries"]

    @property
    def backoff_base(self) -> float:
        return self._values["backoff-base"]

    @property
    def backoff_max(self) -> float:
        return self._values["backoff-max"]

    @property
    def backoff_jitter(self) -> bool:
        return self._values["backoff-jitter"]

    @property
    def job_timeout(self) -> float:
        return self._values["job-timeout"]

    @property
    def worker_count(self) -> int:
        return self._values["worker-count"]

    @property
    def poll_interval(self) -> float:
        return self._values["poll-interval"]

    @property
    def heartbeat_interval(self) -> float:
        return self._values["heartbeat-interval"]

    @property
    def lease_timeout(self) -> float:
        return self._values["lease-timeout"]

    @property
    def output_limit(self) -> int:
        return self._values["output-limit"]

    @property
    def output_file_max(self) -> int:
        return self._values["output-file-max"]

    @property
    def retention(self) -> float:
        return self._values["retention"]

    @property
    def log_level(self) -> str:
        return self._values["log-level"]

    @property
    def priority_aging(self) -> float:
        return float(self._values["priority-aging"])

    @property
    def on_dead(self) -> str:
        return self._values["on-dead"]

    @property
    def on_complete(self) -> str:
        return self._values["on-complete"]

    @property
    def hook_timeout(self) -> float:
        return float(self._values["hook-timeout"])

    @property
    def retry_on(self) -> str:
        return self._values["retry-on"]

    @property
    def no_retry_on(self) -> str:
        return self._values["no-retry-on"]

    @property
    def retry_rules(self) -> "Rules":
        """The config's retry rules (`retry-on`, `no-retry-on`), parsed once."""
        cached = self.__dict__.get("_retry_rules")
        if cached is None:
            from queuectl.retryrules import Rules

            cached = Rules(tuple(self._values["retry-on"].split(","))
                           if self._values["retry-on"] else None,
                           tuple(self._values["no-retry-on"].split(","))
                           if self._values["no-retry-on"] else None)
            self.__dict__["_retry_rules"] = cached
        return cached
