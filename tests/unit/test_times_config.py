"""Time parsing and configuration precedence/validation."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from queuectl.config import KEYS, Settings, canonical_key, to_text, validate
from queuectl.errors import ConfigError, InvalidInput
from queuectl.times import ago, iso_utc, parse_duration, parse_when

NOW = 1_700_000_000.0


@pytest.mark.parametrize("text,seconds", [
    ("60", 60), (60, 60), ("1.5", 1.5), ("90s", 90), ("5m", 300), ("2h", 7200),
    ("7d", 604800), ("1h30m", 5400), (" 10 min ", 600), ("1w", 604800),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "-5", "5x", "m", "1h-30m", True, -1, "nan"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)  # type: ignore[arg-type]


def test_relative_and_absolute_times() -> None:
    assert parse_when("+5m", NOW) == NOW + 300
    assert parse_when("60", NOW) == NOW + 60
    assert parse_when(60, NOW) == NOW + 60
    assert parse_when("now", NOW) == NOW
    assert parse_when("2025-11-10T02:00:00Z", NOW) == \
        datetime(2025, 11, 10, 2, tzinfo=timezone.utc).timestamp()
    assert parse_when("2025-11-10T02:00:00+02:00", NOW) == \
        datetime(2025, 11, 10, 0, tzinfo=timezone.utc).timestamp()
    local = datetime(2025, 11, 10, 2, 0, 0).astimezone()  # naive text = local time
    assert parse_when("2025-11-10 02:00:00", NOW) == local.timestamp()


@pytest.mark.parametrize("text", ["+", "+junk", "tomorrow", "2025-13-45 99:00", "{}"])
def test_bad_times(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid time"):
        parse_when(text, NOW)


def test_formatting() -> None:
    assert iso_utc(NOW) == "2023-11-14T22:13:20Z"
    assert iso_utc(NOW + 0.25) == "2023-11-14T22:13:20.250Z"
    assert iso_utc(None) is None
    assert ago(5) == "5.0s" and ago(90) == "2m" and ago(7200) == "2.0h"


def test_keys_accept_dash_underscore_and_case() -> None:
    assert canonical_key("max_retries") == canonical_key("MAX-RETRIES") == "max-retries"
    with pytest.raises(ConfigError) as caught:
        canonical_key("backoff")
    assert "valid keys:" in str(caught.value) and "backoff-base" in str(caught.value)


@pytest.mark.parametrize("key,value", [
    ("max-retries", "-1"), ("max-retries", "abc"), ("max-retries", "1.5"),
    ("backoff-base", "0.5"), ("backoff-jitter", "maybe"), ("worker-count", "0"),
    ("log-level", "LOUD"), ("poll-interval", "0"), ("lease-timeout", "-3"),
])
def test_bad_values(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid value .* for {key}"):
        validate(key, value)


def test_typed_values() -> None:
    assert validate("max-retries", "5") == 5
    assert validate("backoff-jitter", "yes") is True
    assert validate("retention", "7d") == 604800
    assert to_text(True) == "true"


def test_precedence_flag_env_stored_default() -> None:
    stored = {"max-retries": "5", "backoff-base": "3"}
    env = {"QUEUECTL_BACKOFF_BASE": "4", "QUEUECTL_JOB_TIMEOUT": "9"}
    flags = {"job-timeout": 12}
    s = Settings(stored, env, flags)
    assert (s.max_retries, s.source("max-retries")) == (5, "stored")
    assert (s.backoff_base, s.source("backoff-base")) == (4, "env")
    assert (s.job_timeout, s.source("job-timeout")) == (12, "flag")
    assert (s.lease_timeout, s.source("lease-timeout")) == (30, "default")
    assert [name for name, _, _ in s.items()] == list(KEYS)


def test_bad_stored_value_falls_back_to_default() -> None:
    s = Settings({"max-retries": "lots"}, {})
    assert s.max_retries == 3


def test_bad_env_value_is_an_error() -> None:
    with pytest.raises(ConfigError):
        Settings({}, {"QUEUECTL_MAX_RETRIES": "x"})
