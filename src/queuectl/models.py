"""Plain data: jobs, outcomes, workers.  No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from queuectl.states import JobState
from queuectl.times import iso_utc

DEFAULT_QUEUE = "default"
DEFAULT_PRIORITY = 5
MIN_PRIORITY, MAX_PRIORITY = 1, 10
MIN_PREFIX_LEN = 4
#: the job fields that follow the config when a job leaves them unset
EFFECTIVE_FIELDS = ("max_retries", "backoff_base", "timeout")


@dataclass
class NewJob:
    """A job as submitted, validated, before it is stored.

    `max_retries`, `backoff_base` and `timeout` left as None follow the stored config
    at the time they are needed, so `config set` also reaches jobs already queued.
    """

    command: str
    id: Optional[str] = None
    priority: int = DEFAULT_PRIORITY
    run_at: Optional[float] = None  # epoch seconds; None = now
    queue: str = DEFAULT_QUEUE
    max_retries: Optional[int] = None
    backoff_base: Optional[float] = None
    timeout: Optional[float] = None
    cwd: Optional[str] = None
    env: Optional[dict[str, str]] = None
    depends_on: list[str] = field(default_factory=list)
    #: condition per dependency id (queuectl.dependencies: completed, any, failure)
    conditions: dict[str, str] = field(default_factory=dict)
    unique_key: Optional[str] = None
    #: its own retry rules ({"retry_on": [...], "no_retry_on": [...]}); None: none
    retry_policy: Optional[dict[str, list[str]]] = None


@dataclass
class Job:
    """A stored job, every field."""

    id: str
    command: str
    state: JobState
    queue: str = DEFAULT_QUEUE
    priority: int = DEFAULT_PRIORITY
    run_at: float = 0.0
    attempts: int = 0
    max_retries: Optional[int] = None
    backoff_base: Optional[float] = None
    timeout: Optional[float] = None
    cwd: Optional[str] = None
    env: Optional[dict[str, str]] = None
    depends_on: list[str] = field(default_factory=list)
    unique_key: Optional[str] = None
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    worker: Optional[str] = None  # host:pid/slot of the last (or current) run
    worker_id: Optional[str] = None  # registry id of the supervisor running it
    exit_code: Optional[int] = None
    error: Optional[str] = None
    output: Optional[str] = None  # tail of stdout+stderr of the last run
    history: list[dict[str, Any]] = field(default_factory=list)
    rescues: int = 0  # times it was taken back from a worker that died
    #: its own retry rules ({"retry_on": [...], "no_retry_on": [...]}); None: those of
    #: its queue, then the config's (queuectl.retryrules)
    retry_policy: Optional[dict[str, Any]] = None

    def aged_priority(self, now: float, aging: float) -> tuple[float, float]:
        """(seconds it has been due, effective priority) with priority aging of `aging`
        seconds a step: priority + whole steps waited.  The claim orders by the same
        continuous key (run_at - priority * aging), so a tie of the shown numbers may go
        either way."""
        from queuectl.states import CLAIMABLE

        waited = max(0.0, now - self.run_at) if self.state in CLAIMABLE else 0.0
        return waited, self.priority + (waited // aging if aging > 0 else 0)

    def _last_run(self) -> Optional[dict[str, Any]]:
        """The history entry of the run whose output `output` holds, when it says
        how much it wrote (runs recorded before that was counted do not)."""
        if self.state is JobState.PROCESSING:  # its run has not said yet
            return None
        for entry in reversed(self.history):
            if "output_bytes" in entry:
                return entry if entry.get("attempt") == self.attempts else None
        return None

    @property
    def total_output_bytes(self) -> Optional[int]:
        """Bytes the last run wrote in all (None: unknown, or not run yet)."""
        entry = self._last_run()
        return None if entry is None else int(entry["output_bytes"])

    @property
    def output_dropped(self) -> int:
        """Bytes of the last run's output that its stored tail does not hold."""
        entry = self._last_run()
        return 0 if entry is None else int(entry.get("output_dropped") or 0)

    @property
    def output_file(self) -> Optional[str]:
        """The file on the worker's host with the last run's full output (up to
        output-file-max), when one was kept."""
        entry = self._last_run()
        return None if entry is None else entry.get("output_file")

    def effective(self, defaults: Mapping[str, Any]) -> dict[str, tuple[Any, bool]]:
        """max_retries, backoff_base and timeout as they apply to this job: its own
        value, else the config default in `defaults` -> {name: (value, from_config)}."""
        return {name: (defaults[name], True) if getattr(self, name) is None
                else (getattr(self, name), False)
                for name in EFFECTIVE_FIELDS}

    def to_dict(self, *, with_output: bool = True, with_env: bool = False,
                defaults: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """The stable JSON shape (timestamps ISO-8601 UTC).

        `env_names` lists the names of the job's environment variables; their values
        (often secrets) are in `env` only with `with_env` (`show --json --env`).  With
        `defaults` (the config's max_retries, backoff_base, timeout) those fields are
        the effective values and `from_config` says which came from the config.
        `next_retry_at` is when a failed job runs again (null in other states)."""
        data: dict[str, Any] = {
            "id": self.id,
            "command": self.command,
            "state": self.state.value,
            "queue": self.queue,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "backoff_base": self.backoff_base,
            "timeout": self.timeout,
            "run_at": iso_utc(self.run_at),
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "worker": self.worker,
            "exit_code": self.exit_code,
            "error": self.error,
            "cwd": self.cwd,
            "env_names": sorted(self.env or {}),
            "depends_on": list(self.depends_on),
            "unique_key": self.unique_key,
            "retry_on": (self.retry_policy or {}).get("retry_on"),
            "no_retry_on": (self.retry_policy or {}).get("no_retry_on"),
            "rescues": self.rescues,
            "history": [_history_entry(h) for h in self.history],
            "next_retry_at": iso_utc(self.run_at) if self.state is JobState.FAILED
            else None,
            "total_output_bytes": self.total_output_bytes,
            "output_truncated": self.output_dropped > 0,
            "output_file": self.output_file,
        }
        if defaults is not None:
            effective = self.effective(defaults)
            for name, (value, _) in effective.items():
                data[name] = value
            data["from_config"] = {name: from_config
                                   for name, (_, from_config) in effective.items()}
        if with_env:
            data["env"] = self.env
        if with_output:
            data["output"] = self.output
        return data


def _history_entry(entry: dict[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    for key in ("started_at", "finished_at", "at"):
        if isinstance(out.get(key), (int, float)):
            out[key] = iso_utc(out[key])
    return out


@dataclass
class Outcome:
    """How one run of a command ended (reported by the runner)."""

    exit_code: Optional[int] = None  # None when killed by a signal or never started
    signal: Optional[int] = None  # the signal that ended it, if any
    timed_out: bool = False
    spawn_error: Optional[str] = None  # the command could not be started at all
    spawn_permanent: bool = False  # ...and never can be (a missing working directory)
    cancelled: bool = False  # killed because a user cancelled it or stopped --now
    output_tail: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    output_bytes: int = 0  # everything the run wrote
    output_dropped: int = 0  # of those, the bytes before `output_tail`
    output_file: Optional[str] = None  # where its full output was kept (output-file-max)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.spawn_error is None

    @property
    def duration(self) -> float:
        return max(0.0, self.finished_at - self.started_at)

    def reason(self) -> str | None:
        """One line saying why it failed (None when it succeeded)."""
        if self.ok:
            return None
        if self.spawn_error:
            return f"spawn failed: {self.spawn_error}"
        if self.timed_out:
            return "timeout"
        if self.cancelled:
            return "cancelled"
        last = _last_line(self.output_tail)
        if self.signal is not None:
            text = f"killed by signal {self.signal}"
        else:
            text = f"exit code {self.exit_code}"
        return f"{text}: {last}" if last else text


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


@dataclass
class WorkerInfo:
    """A registered worker supervisor."""

    id: str
    host: str
    pid: int
    slots: int
    queues: list[str]
    started_at: float
    heartbeat_at: float
    busy: int = 0
    jobs_done: int = 0
    stop_requested: Optional[str] = None  # None, "graceful" or "now"

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "slots": self.slots,
            "busy": self.busy,
            "queues": self.queues,
            "started_at": iso_utc(self.started_at),
            "heartbeat_at": iso_utc(self.heartbeat_at),
            "heartbeat_age_s": round(max(0.0, now - self.heartbeat_at), 3),
            "jobs_done": self.jobs_done,
            "stop_requested": self.stop_requested,
        }


def worker_figures(workers: Sequence[WorkerInfo]) -> dict[str, Any]:
    """The seeds' count of live workers: each slot of a supervisor (`worker start
    --count 3` is three workers) is a worker; the supervisor processes and their hosts
    are the detail."""
    return {
        "worker_count": sum(w.slots for w in workers),
        "busy_workers": sum(w.busy for w in workers),
        "processes": len(workers),
        "hosts": sorted({w.host for w in workers}),
    }


class RunRecord(NamedTuple):
    """A run that ended, as `metrics` reads it from the store (a job's row for its last
    run, a history entry with a result for an earlier one), or a job cancelled
    (`result` "cancelled", no run times)."""

    job_id: str
    queue: str
    result: str  # completed, failed (to be retried), dead, or cancelled
    timed_out: bool
    attempt: Optional[int]
    started_at: Optional[float]
    finished_at: float


#: A job whose last run ended (or that was cancelled) in a `metrics` window, as the
#: store returns it: (id, queue, state, attempts, duration_s, wait_s, finished_at,
#: timed_out); wait_s (due time to start) only for completed and dead jobs.
FinishedRow = tuple[str, str, str, int, Optional[float], Optional[float], float, bool]


#: The window's job rows counted together (`metrics`): (queue, state, retry: attempts
#: > 1, timed out, jobs, runs with a duration, duration sum, longest duration).
WindowGroup = tuple[str, str, bool, bool, int, int, float, Optional[float]]
#: The window's job rows counted per bucket of the series as well (`metrics` over a
#: window whose 60 buckets line up with the 1, 5 and 15 minute spans): a WindowGroup
#: with the bucket (from the window's start) after the timed-out mark.
BucketGroup = tuple[str, str, bool, bool, int, int, int, float, Optional[float]]
#: Runs of the last 15 minutes (`metrics`): (queue, in the last minute, in the last 5,
#: runs).
SpanGroup = tuple[str, bool, bool, int]
#: One run of the percentiles' sample: (queue, duration_s, wait_s or None).
SampleRow = tuple[str, Optional[float], Optional[float]]


class LiveCount(NamedTuple):
    """Jobs of one queue in one live state, and the oldest due one's run_at."""

    queue: str
    state: str
    jobs: int
    oldest_due: Optional[float]  # run_at of its oldest job already due (waiting states)


@dataclass
class CronSchedule:
    """A cron schedule as stored (`queuectl cron`): when, and the job each run is."""

    name: str
    schedule: str  # 5 cron fields or @hourly/@daily/@weekly/@monthly
    tz: str  # IANA zone name the fields are read in
    job: dict[str, Any]  # the job template: command, queue, priority, timeout, ...
    next_fire_at: float  # the next instant not yet fired (epoch seconds)
    paused: bool = False
    catch_up: str = "one"  # after missed instants: none, one or all
    no_overlap: bool = False  # skip an instant while the last run is live
    last_fire_at: Optional[float] = None  # the instant of the last run enqueued
    last_job_id: Optional[str] = None
    created_at: float = 0.0
    updated_at: float = 0.0
    last_state: Optional[str] = None  # of the last run's job (None: none, or purged)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `cron list --json` (timestamps ISO-8601 UTC)."""
        return {
            "name": self.name, "schedule": self.schedule, "tz": self.tz,
            "command": self.job.get("command"), "job": dict(self.job),
            "paused": self.paused, "catch_up": self.catch_up,
            "no_overlap": self.no_overlap,
            "next_run_at": None if self.paused else iso_utc(self.next_fire_at),
            "last_run_at": iso_utc(self.last_fire_at), "last_job_id": self.last_job_id,
            "last_state": self.last_state, "created_at": iso_utc(self.created_at),
        }


class CronFired(NamedTuple):
    """What one firing of a schedule's due instants did (`Backend.cron_fire`)."""

    job_ids: list[str]  # the runs enqueued (or, for a held id or key, the live job)
    skipped: bool  # --no-overlap: the last run was still live, nothing enqueued


@dataclass
class HookEvent:
    """A job's final transition with a hook to run (`on-dead`, `on-complete`): a row of
    the store's outbox, written with the transition, claimed by one supervisor."""

    id: int
    job_id: str
    event: str  # the state the job entered: dead or completed
    hook: str  # the command to run (sh -c), resolved when the event was recorded
    queue: str
    attempts: int
    exit_code: Optional[int]
    error: Optional[str]
    command: str  # the job's command
    created_at: float
    claimed_by: Optional[str] = None  # the worker id of the supervisor that took it
    claimed_at: Optional[float] = None
    finished_at: Optional[float] = None
    result: Optional[str] = None  # ok, failed, timeout, error (None: not run yet)
    detail: Optional[str] = None  # exit status, or why it did not run

    def status(self, live_workers: Optional[set[str]] = None) -> str:
        """waiting (unclaimed), running, lost (its supervisor is gone without an
        outcome: at most once, it is not run again), or the result."""
        if self.result is not None:
            return self.result
        if self.claimed_at is None:
            return "waiting"
        if live_workers is not None and self.claimed_by not in live_workers:
            return "lost"
        return "running"

    def to_dict(self, live_workers: Optional[set[str]] = None) -> dict[str, Any]:
        """The stable JSON shape of `queuectl hooks --json`."""
        return {
            "id": self.id, "job_id": self.job_id, "event": self.event, "hook": self.hook,
            "queue": self.queue, "attempts": self.attempts, "exit_code": self.exit_code,
            "error": self.error, "status": self.status(live_workers),
            "detail": self.detail, "worker_id": self.claimed_by,
            "recorded_at": iso_utc(self.created_at), "started_at": iso_utc(self.claimed_at),
            "finished_at": iso_utc(self.finished_at),
        }
