"""The schedule logic of queuectl.cron (pure: no store, times passed in): croniter's
instants in a named zone across both daylight-saving changes of Europe/Berlin in
2026, nicknames, run ids and the catch-up plans."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from queuectl import cron
from queuectl.errors import InvalidInput
from queuectl.models import CronSchedule

BERLIN = ZoneInfo("Europe/Berlin")


def walk(schedule: str, start: datetime, count: int) -> list[str]:
    found, moment = [], start.timestamp()
    for _ in range(count):
        moment = cron.next_after(schedule, "Europe/Berlin", moment)
        found.append(datetime.fromtimestamp(moment, BERLIN).isoformat(timespec="minutes"))
    return found


def test_spring_forward_a_missing_instant_runs_at_the_first_minute_after() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist that day
    assert walk("30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=BERLIN), 3) == [
        "2026-03-29T03:00+02:00", "2026-03-30T02:30+02:00", "2026-03-31T02:30+02:00"]
    assert walk("@hourly", datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), 3) == [
        "2026-03-29T01:00+01:00", "2026-03-29T03:00+02:00", "2026-03-29T04:00+02:00"]


def test_fall_back_a_fixed_hour_runs_once_and_hourly_every_real_hour() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:00-02:59 happens twice
    assert walk("30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2) == [
        "2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"]
    assert walk("0 * * * *", datetime(2026, 10, 25, 0, 30, tzinfo=BERLIN), 4) == [
        "2026-10-25T01:00+02:00", "2026-10-25T02:00+02:00", "2026-10-25T02:00+01:00",
        "2026-10-25T03:00+01:00"]
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN).timestamp()
    until = datetime(2026, 10, 26, 12, tzinfo=BERLIN).timestamp()
    assert len(cron.instants("30 2 * * *", "Europe/Berlin", first, until, 10)) == 2


def test_a_run_id_names_the_instant_in_the_schedules_zone() -> None:
    moment = datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN).timestamp()
    assert cron.run_id("backup", moment, "Europe/Berlin") == "backup@2026-12-03T10:00+01:00"


@pytest.mark.parametrize("nickname, fields", [
    ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"), ("  */5   *  * * * ", "*/5 * * * *")])
def test_nicknames_and_spacing(nickname: str, fields: str) -> None:
    assert cron.normalize(nickname) == fields


@pytest.mark.parametrize("bad", ["", "* * * *", "* * * * * *", "61 * * * *", "@often",
                                 "a b c d e", "* 25 * * *"])
def test_bad_schedules_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="invalid cron schedule"):
        cron.normalize(bad)


def test_local_zone_name_comes_from_tz_or_is_refused() -> None:
    assert cron.local_zone_name({"TZ": "Europe/Berlin"}) == "Europe/Berlin"
    assert cron.local_zone_name({"TZ": ":Asia/Tokyo"}) == "Asia/Tokyo"
    with pytest.raises(InvalidInput, match="unknown time zone"):
        cron.local_zone_name({"TZ": "CET-1CEST"})


def test_plans_after_downtime_by_catch_up_mode() -> None:
    start = datetime(2026, 12, 3, 10, 0, tzinfo=BERLIN).timestamp()
    now = start + 3 * 3600 + 10  # four hourly instants missed: 10, 11, 12, 13
    plans = {mode: cron.plan(CronSchedule(name="h", schedule="@hourly",
                                          tz="Europe/Berlin", job={"command": "true"},
                                          next_fire_at=start, catch_up=mode), now)
             for mode in cron.CATCH_UP_MODES}
    assert plans["all"].runs == [start + h * 3600 for h in range(4)]
    assert plans["one"].runs == [start + 3 * 3600]
    assert plans["none"].runs == []
    assert {p.next_fire_at for p in plans.values()} == {start + 4 * 3600}
