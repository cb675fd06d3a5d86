"""Pure time parsing and formatting.  `now` is always passed in, never read here."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from queuectl.errors import InvalidInput

_UNITS_S = {"": 1, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60,
            "h": 3600, "hr": 3600, "hrs": 3600, "d": 86400, "day": 86400, "days": 86400,
            "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
_COMPOUND = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")


def parse_duration(text: str | int | float, *, what: str = "duration") -> float:
    """Seconds from `60`, `1.5`, `90s`, `5m`, `2h`, `7d`, `1h30m`.  Negative is an error."""
    if isinstance(text, bool):
        raise InvalidInput(f"invalid {what}: {text!r}")
    if isinstance(text, (int, float)):
        if text < 0 or text != text:
            raise InvalidInput(f"invalid {what}: {text!r} (must be >= 0)")
        return float(text)
    raw = str(text).strip().lower()
    match = _DURATION.match(raw)
    if match and match.group(2) in _UNITS_S:
        return float(match.group(1)) * _UNITS_S[match.group(2)]
    parts = _COMPOUND.findall(raw)
    if parts and "".join(n + u for n, u in parts) == raw.replace(" ", ""):
        total = 0.0
        for number, unit in parts:
            if unit not in _UNITS_S:
                break
            total += float(number) * _UNITS_S[unit]
        else:
            return total
    raise InvalidInput(
        f"invalid {what}: {text!r} (use seconds or a number with s/m/h/d, e.g. 30, 5m, 2h)"
    )


# A number this big is a Unix time, not seconds from now: as a delay it would be over
# 31 years, far past the 10-year limit, so no valid delay is read differently.
EPOCH_FROM = 1_000_000_000


def _epoch(value: str | int | float) -> float | None:
    """`value` as a Unix time if it is a number of at least EPOCH_FROM, else None."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    number = float(value)
    return number if EPOCH_FROM <= number < float("inf") else None


def parse_when(text: str | int | float, now: float) -> float:
    """Epoch seconds from `+5m`, `5m`, `60` (seconds from now), `now`, an ISO-8601 time,
    `YYYY-MM-DD HH:MM[:SS]` (local time unless it carries an offset), or a Unix time
    (a number of 1,000,000,000 or more)."""
    if isinstance(text, bool):
        raise InvalidInput(f"invalid time: {text!r}")
    if isinstance(text, (int, float)):
        return _epoch(text) or now + parse_duration(text, what="delay")
    raw = str(text).strip()
    epoch = _epoch(raw)
    if epoch:
        return epoch
    if raw.lower() == "now":
        return now
    if raw.startswith("+"):
        try:
            return now + parse_duration(raw[1:], what="delay")
        except InvalidInput:
            raise InvalidInput(f"invalid time: {text!r} (after + comes a duration: "
                               "+30s, +5m, +1h, +2d)") from None
    try:
        return now + parse_duration(raw, what="delay")
    except InvalidInput:
        pass
    iso = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise InvalidInput(
            f"invalid time: {text!r} (use +5m, 60, 'YYYY-MM-DD HH:MM:SS' or ISO-8601)"
        ) from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # naive means local time
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        raise InvalidInput(f"invalid time: {text!r} (out of range)") from None


def iso_utc(ts: float | None) -> str | None:
    """`2025-11-04T10:30:00Z` (milliseconds kept when present)."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def local_text(ts: float | None) -> str:
    """`2025-11-04 11:30:00` in local time, for people."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def ago(seconds: float | None) -> str:
    """A short human age: `3s`, `4m`, `2h`, `5d`."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
