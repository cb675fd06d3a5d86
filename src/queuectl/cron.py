"""Cron schedules: when a schedule's instants fall, which runs a firing enqueues, and
the operations `queuectl cron` and the supervisors' firing service call.

Schedules are read by croniter (imported lazily: CLI start-up stays fast), in the
schedule's IANA time zone through zoneinfo, so daylight-saving days are the
library's: on a spring-forward day an instant in the missing hour runs at the first
minute after it; on a fall-back day an instant at a fixed hour (`30 2 * * *`) runs
once, at its first occurrence, while an hour-wildcard schedule (`@hourly`) runs
every real hour.  The pure part is functions of (schedule, time); the store makes
each instant fire once (Backend.cron_fire).
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from queuectl.errors import InvalidInput, NotFound
from queuectl.models import CronSchedule, NewJob

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from queuectl.backends.base import Backend
    from queuectl.queue import Queue

log = logging.getLogger("queuectl.cron")

CATCH_UP_MODES = ("none", "one", "all")
NICKNAMES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
             "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
             "@annually": "0 0 1 1 *"}
#: with --catch-up none, an instant at most this late still runs (a busy store, a
#: supervisor that woke late); an older one was missed and is skipped
ON_TIME_S = 30.0
#: with --catch-up all, at most this many missed instants run (the latest ones)
CATCH_UP_MAX = 1000
#: schedules fired per tick of a supervisor (the rest at the next tick)
DUE_BATCH = 100
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


# -- the pure part ---------------------------------------------------------------------
def check_name(name: str) -> str:
    """A valid schedule name (it starts the ids of its runs), or InvalidInput."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"invalid cron schedule name {name!r}: 1-64 letters, digits, "
                           "_ . : - (starting with a letter or digit)")
    return name


def zone(name: str) -> "ZoneInfo":
    """The IANA time zone `name`, or InvalidInput."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not name or name != name.strip() or name.startswith(("/", ".")):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f"unknown time zone {name!r} (an IANA name such as "
                           "Europe/Berlin, America/New_York or UTC)") from None


def local_zone_name(env: Optional[dict[str, str]] = None) -> str:
    """The IANA name of this host's local time zone: $TZ, else /etc/localtime's
    target, else /etc/timezone; UTC when none is set (as the C library does)."""
    env = dict(os.environ) if env is None else env
    tz = env.get("TZ", "").lstrip(":")
    if tz:
        zone(tz)  # a POSIX rule such as CET-1CEST names no zone: --tz is needed
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            return target.split("/zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        with open("/etc/timezone", encoding="utf-8") as handle:
            found = handle.read().strip()
        if found:
            return found
    except OSError:
        pass
    return "UTC"


def normalize(schedule: str) -> str:
    """The 5 cron fields a schedule stands for, or InvalidInput."""
    text = " ".join(str(schedule).split())
    fields = NICKNAMES.get(text.lower(), text)
    if fields.startswith("@") or len(fields.split()) != 5:
        raise InvalidInput(f"invalid cron schedule {schedule!r}: 5 fields (minute hour "
                           "day-of-month month day-of-week, e.g. '*/15 * * * *') or "
                           "@hourly, @daily, @weekly, @monthly, @yearly")
    from croniter import croniter

    try:
        croniter(fields, datetime(2026, 1, 1, tzinfo=timezone.utc)).get_next(float)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"invalid cron schedule {schedule!r}: {exc}") from None
    return fields


def _fixed_hour(fields: str) -> bool:
    return not fields.split()[1].startswith("*")


def _repeat(moment: datetime, where: "ZoneInfo") -> bool:
    """`moment` is the second occurrence of its wall-clock time (a fall-back day):
    the same wall time read as its first occurrence is another, earlier instant."""
    first = moment.replace(tzinfo=None).replace(tzinfo=where, fold=0)
    return first.timestamp() != moment.timestamp()


def _walk(schedule: str, tz: str, start: float, forward: bool) -> Any:
    """Instants (epoch seconds) after `start` (forward) or before it, in order; a
    fixed-hour schedule skips the repeat of a fall-back day."""
    from croniter import croniter

    fields = normalize(schedule)
    where = zone(tz)
    it = croniter(fields, datetime.fromtimestamp(start, where))
    fixed = _fixed_hour(fields)
    while True:
        moment: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
        moment = moment.astimezone(where)
        if fixed and _repeat(moment, where):
            continue
        yield moment.timestamp()


def next_after(schedule: str, tz: str, after: float) -> float:
    """The first instant of `schedule` in zone `tz` strictly after `after`."""
    found: float = next(_walk(schedule, tz, after, True))
    return found


def instants(schedule: str, tz: str, first: float, until: float, cap: int) -> list[float]:
    """The instants from `first` (itself an instant) through `until`: the latest
    `cap` of them, walked back from `until` (a long downtime costs no more)."""
    found: list[float] = []
    # instants fall on whole minutes: from the next second back, `until` is included
    for moment in _walk(schedule, tz, math.floor(until) + 1, False):
        if moment < first or len(found) == cap:
            break
        found.append(moment)
    found.reverse()
    return found


@dataclass
class FirePlan:
    """What one firing of a due schedule does."""

    runs: list[float]  # the instants to enqueue a run for
    next_fire_at: float  # the first instant after now


def plan(schedule: CronSchedule, now: float) -> FirePlan:
    """The runs of a due schedule at `now` under its catch-up mode: `all` one per due
    instant (at most CATCH_UP_MAX), `one` the latest due instant, `none` the latest
    only when it is on time (ON_TIME_S) and nothing was missed before it."""
    due = instants(schedule.schedule, schedule.tz, schedule.next_fire_at, now,
                   CATCH_UP_MAX if schedule.catch_up == "all" else 2)
    following = next_after(schedule.schedule, schedule.tz, now)
    if schedule.catch_up == "all":
        runs = due
    elif schedule.catch_up == "none":
        runs = due[-1:] if len(due) == 1 and now - due[-1] <= ON_TIME_S else []
    else:
        runs = due[-1:]
    return FirePlan(runs, following)


def run_id(name: str, instant: float, tz: str) -> str:
    """The id of the run for one instant: `NAME@2026-12-03T10:00+01:00`."""
    moment = datetime.fromtimestamp(instant, zone(tz))
    return f"{name}@{moment.isoformat(timespec='minutes')}"


def job_for(schedule: CronSchedule, job_id: str) -> NewJob:
    """A run of `schedule`, from its job template."""
    spec = schedule.job
    return NewJob(command=spec["command"], id=job_id,
                  queue=spec.get("queue") or "default",
                  priority=int(spec.get("priority") or 5),
                  timeout=spec.get("timeout"), max_retries=spec.get("max_retries"),
                  unique_key=f"cron:{schedule.name}" if spec.get("unique") else None)


def job_template(fields: dict[str, Any], unique: bool) -> dict[str, Any]:
    """The job template stored with a schedule, from validated job fields."""
    from queuectl.jobspec import build

    job = build(fields, 0.0)
    template: dict[str, Any] = {"command": job.command, "queue": job.queue,
                                "priority": job.priority}
    if job.timeout is not None:
        template["timeout"] = job.timeout
    if job.max_retries is not None:
        template["max_retries"] = job.max_retries
    if unique:
        template["unique"] = True
    return template


# -- firing (the supervisors' service) ---------------------------------------------------
def fire_due(backend: "Backend", now: float) -> list[str]:
    """Fire every due schedule once at `now`; the ids of the runs enqueued.  Another
    supervisor firing the same instant makes this one's compare-and-set match
    nothing, so each instant is enqueued by one caller only."""
    enqueued: list[str] = []
    for schedule in backend.cron_due(now, DUE_BATCH):
        try:
            fire_plan = plan(schedule, now)
            runs = [(t, job_for(schedule, run_id(schedule.name, t, schedule.tz)))
                    for t in fire_plan.runs]
        except InvalidInput as exc:  # e.g. a zone this host's tzdata lacks
            log.warning("cron schedule %s cannot be fired here: %s", schedule.name, exc)
            continue
        fired = backend.cron_fire(schedule.name, schedule.next_fire_at,
                                  fire_plan.next_fire_at, runs,
                                  no_overlap=schedule.no_overlap, now=now)
        if fired is None:
            continue  # another supervisor fired it
        if fired.skipped:
            log.info("cron %s: skipped (its last run %s is still live)", schedule.name,
                     schedule.last_job_id)
        elif not runs:
            log.info("cron %s: missed instants skipped (--catch-up none)", schedule.name)
        else:
            log.info("cron %s: enqueued %s", schedule.name, ", ".join(fired.job_ids))
            enqueued.extend(fired.job_ids)
    return enqueued


# -- the operations of `queuectl cron` ---------------------------------------------------
def add(queue: "Queue", name: str, schedule: str, fields: dict[str, Any], *,
        tz: Optional[str], unique: bool, catch_up: str, no_overlap: bool) -> CronSchedule:
    """Validate and store a new schedule (everything is checked before the store)."""
    check_name(name)
    fields_text = normalize(schedule)
    if catch_up not in CATCH_UP_MODES:
        raise InvalidInput(f"--catch-up must be none, one or all, got {catch_up!r}")
    zone_name = local_zone_name() if tz is None else tz
    zone(zone_name)
    template = job_template(fields, unique)
    now = queue.now()
    shown = " ".join(schedule.split())
    new = CronSchedule(name=name, schedule=shown.lower() if shown.startswith("@")
                       else fields_text, tz=zone_name, job=template,
                       next_fire_at=next_after(fields_text, zone_name, now),
                       catch_up=catch_up, no_overlap=no_overlap, created_at=now,
                       updated_at=now)
    queue.backend.cron_add(new, now)
    return new


def list_all(queue: "Queue") -> list[CronSchedule]:
    """Every schedule by name, with its last run's state."""
    return queue.backend.cron_list()


def get(queue: "Queue", name: str) -> CronSchedule:
    found = queue.backend.cron_get(name)
    if found is None:
        raise NotFound(f"no cron schedule {name!r} (see queuectl cron list)")
    return found


def remove(queue: "Queue", name: str) -> None:
    if not queue.backend.cron_remove(name):
        raise NotFound(f"no cron schedule {name!r} (see queuectl cron list)")


def set_paused(queue: "Queue", name: str, paused: bool) -> CronSchedule:
    """Pause, or resume from the first instant after now (the paused ones are not
    caught up)."""
    schedule = get(queue, name)
    if schedule.paused == paused:
        return schedule  # resuming a running schedule must not skip a due instant
    now = queue.now()
    following = None if paused else next_after(schedule.schedule, schedule.tz, now)
    if not queue.backend.cron_set_paused(name, paused, following, now):
        raise NotFound(f"no cron schedule {name!r} (see queuectl cron list)")
    return get(queue, name)


def run_now(queue: "Queue", name: str) -> str:
    """Enqueue one run of a schedule now (`cron run`); its job id."""
    schedule = get(queue, name)
    now = queue.now()
    from queuectl.jobcore import new_job_id

    job = job_for(schedule, f"{name}@run-{new_job_id()[:8]}")
    job_id = queue.backend.cron_run(name, job, now)
    if job_id is None:
        raise NotFound(f"no cron schedule {name!r} (see queuectl cron list)")
    queue.wake_workers()
    return job_id


def fire_now(queue: "Queue") -> list[str]:
    """Fire the due schedules of the store once (what a supervisor's tick does)."""
    fired = fire_due(queue.backend, queue.now())
    if fired:
        queue.wake_workers()
    return fired
