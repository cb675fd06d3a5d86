"""Time parsing and formatting (SPEC 1: --delay, --run-at, "run_at")."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Iterator

import pytest

from queuectl.errors import InvalidInput
from queuectl.times import ago, iso_utc, local_text, parse_duration, parse_when

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()  # type: ignore[misc]


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC-5 all year (a POSIX TZ string: no tz database needed)."""
    monkeypatch.setenv("TZ", "QQQ+05")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# -- parse_duration -------------------------------------------------------------------

@pytest.mark.parametrize("text,seconds", [
    ("60", 60), (60, 60), (0, 0), ("0", 0), (2.5, 2.5), ("1.5", 1.5), ("90s", 90),
    ("5m", 300), ("2h", 7200), ("7d", 604800), ("1w", 604800), ("1h30m", 5400),
    ("1h 30m", 5400), ("2d3h4m5s", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
    (" 10 min ", 600), ("5 mins", 300), ("3 days", 259200), ("1 day", 86400),
    ("2hr", 7200), ("2hrs", 7200), ("30sec", 30), ("30secs", 30), ("5M", 300),
    ("1.5h", 5400), ("0.5m", 30),
])
def test_durations(text: object, seconds: float) -> None:
    result = parse_duration(text)  # type: ignore[arg-type]
    assert result == seconds and isinstance(result, float)


@pytest.mark.parametrize("text", [
    "", "   ", "-5", "-5m", "5x", "m", "1h-30m", "5m30", "1y", "1e3", "nan", "inf",
    "5 m s", "h1", "1,5", True, False, -1, -0.5, float("nan"), None, [5],
])
def test_bad_durations(text: object) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)  # type: ignore[arg-type]


def test_bad_duration_message_names_what_and_shows_examples() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_duration("soon", what="timeout")
    assert str(caught.value).startswith("invalid timeout: 'soon'")
    assert "5m" in str(caught.value)
    assert caught.value.exit_code == 2


# -- parse_when -----------------------------------------------------------------------

@pytest.mark.parametrize("text,offset", [
    ("+5m", 300), ("+30s", 30), ("+1h", 3600), ("+2d", 172800), ("+90", 90),
    ("+1h30m", 5400), ("+ 5m", 300), ("5m", 300), ("60", 60), ("0", 0), (60, 60),
    (1.5, 1.5), ("now", 0), ("NOW", 0), (" now ", 0),
])
def test_relative_times(text: object, offset: float) -> None:
    assert parse_when(text, NOW) == NOW + offset  # type: ignore[arg-type]


def test_relative_times_follow_the_given_now() -> None:
    assert parse_when("+5m", 1000.0) == 1300.0
    assert parse_when("+5m", 0.0) == 300.0


@pytest.mark.parametrize("text,expected", [
    ("2025-11-10T02:00:00Z", utc(2025, 11, 10, 2)),
    ("2025-11-10T02:00:00z", utc(2025, 11, 10, 2)),
    ("2025-11-10T02:00:00+00:00", utc(2025, 11, 10, 2)),
    ("2025-11-10T02:00:00+02:00", utc(2025, 11, 10, 0)),
    ("2025-11-10 02:00:00-03:30", utc(2025, 11, 10, 5, 30)),
    ("2025-11-10T02:00:00.500Z", utc(2025, 11, 10, 2) + 0.5),
])
def test_absolute_times_with_an_offset(text: str, expected: float, tz: None) -> None:
    # the local zone (UTC-5 here) must not matter when the text has an offset
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text,expected", [
    ("2025-11-10 02:00:00", utc(2025, 11, 10, 7)),
    ("2025-11-10T02:00:00", utc(2025, 11, 10, 7)),
    ("2025-11-10 02:00", utc(2025, 11, 10, 7)),
    ("2025-11-10", utc(2025, 11, 10, 5)),
])
def test_naive_times_are_local(text: str, expected: float, tz: None) -> None:
    assert parse_when(text, NOW) == expected


def test_naive_time_in_the_real_local_zone() -> None:
    local = datetime(2025, 11, 10, 2, 0, 0).astimezone()
    assert parse_when("2025-11-10 02:00:00", NOW) == local.timestamp()


def test_past_absolute_times_are_returned_as_they_are() -> None:
    # the caller decides what a time in the past means (run now)
    assert parse_when("2020-01-01T00:00:00Z", NOW) == utc(2020, 1, 1)


@pytest.mark.parametrize("text", [
    "+", "+junk", "+-5m", "-5m", "tomorrow", "2025-13-45 99:00", "2025-11-10 25:00:00",
    "{}", "", "10/11/2025", "2025-11-10T02:00:00+99:00",
])
def test_bad_times(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid time"):
        parse_when(text, NOW)


def test_bad_relative_time_message_explains_the_plus() -> None:
    with pytest.raises(InvalidInput, match=r"after \+ comes a duration"):
        parse_when("+soon", NOW)


@pytest.mark.parametrize("value", [True, False, -5, float("nan")])
def test_bad_non_text_times(value: object) -> None:
    with pytest.raises(InvalidInput):
        parse_when(value, NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0001-01-01 00:00:00", "9999-12-31 23:59:59"])
def test_out_of_range_local_times_are_invalid_input(text: str, tz: None) -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        parse_when(text, NOW)


# -- formatting -----------------------------------------------------------------------

def test_iso_utc() -> None:
    assert iso_utc(NOW) == "2023-11-14T22:13:20Z"
    assert iso_utc(NOW + 0.25) == "2023-11-14T22:13:20.250Z"
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(None) is None


def test_iso_utc_round_trips_through_parse_when() -> None:
    for ts in (NOW, NOW + 0.25, utc(2025, 11, 10, 2)):
        assert parse_when(iso_utc(ts), 0.0) == ts  # type: ignore[arg-type]


def test_local_text(tz: None) -> None:
    assert local_text(utc(2025, 11, 10, 7)) == "2025-11-10 02:00:00"
    assert local_text(None) == "-"
    # what local_text prints, parse_when reads back
    assert parse_when(local_text(NOW), 0.0) == NOW


@pytest.mark.parametrize("seconds,text", [
    (None, "-"), (-3, "0.0s"), (0, "0.0s"), (5, "5.0s"), (9.94, "9.9s"), (10, "10s"),
    (59, "59s"), (90, "2m"), (3599, "60m"), (3600, "1.0h"), (7200, "2.0h"),
    (86400, "1.0d"), (5 * 86400, "5.0d"),
])
def test_ago(seconds: float | None, text: str) -> None:
    assert ago(seconds) == text


@pytest.mark.parametrize("value", [1_900_000_000, "1900000000", 1_900_000_000.5, " 1900000000 "])
def test_a_big_number_is_a_unix_time(value: object) -> None:
    assert parse_when(value, 1_764_000_000.0) == float(str(value).strip())  # type: ignore[arg-type]


def test_numbers_below_a_billion_stay_seconds_from_now() -> None:
    assert parse_when(999_999_999, 1_764_000_000.0) == 1_764_000_000.0 + 999_999_999
    assert parse_when("60", 1_764_000_000.0) == 1_764_000_060.0
