"""The service API.  The CLI, the shell and the web dashboard all call this; it calls
the backend.  It returns data (models and small report dataclasses), never prints."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from queuectl import wakeup
from queuectl.backends import display_url, is_postgres, open_backend, store_url
from queuectl.backends.base import Backend
from queuectl.errors import (
    AmbiguousId,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StoreError,
)
from queuectl.jobcore import new_job_id
from queuectl.models import MIN_PREFIX_LEN, Job, NewJob, RunRecord, WorkerInfo, worker_figures
from queuectl.paths import runtime_dir
from queuectl.states import FINISHED, JobState, Transition
from queuectl.worker import capture

if TYPE_CHECKING:
    from typing import BinaryIO

    from queuectl import jobevents
    from queuectl.config import Settings
    from queuectl.dependencies import Edge
    from queuectl.maintenance import RescueReport
    from queuectl.metrics import Metrics

Clock = Callable[[], float]


@dataclass
class Status:
    url: str
    counts: dict[JobState, int]
    workers: list[WorkerInfo]
    oldest_due_age_s: Optional[float]
    finished_last_minute: int
    now: float
    #: scheduled/failed jobs already due (a supervisor relabels them pending; while
    #: none runs they keep their label): counted up to DUE_CAP
    due_waiting: int = 0
    #: queues no worker takes jobs from (`queue pause`)
    paused_queues: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def slots(self) -> int:
        return sum(w.slots for w in self.workers)

    @property
    def busy_slots(self) -> int:
        """Jobs the live workers hold in `processing` at the moment of the report."""
        return sum(w.busy for w in self.workers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.url,
            "counts": {state.value: n for state, n in self.counts.items()},
            "total": self.total,
            "workers": [w.to_dict(self.now) for w in self.workers],
            "slots": self.slots,
            "busy_slots": self.busy_slots,
            "utilisation": utilisation(self.busy_slots, self.slots),
            "oldest_pending_age_s": (None if self.oldest_due_age_s is None
                                     else round(self.oldest_due_age_s, 3)),
            "throughput_last_minute": self.finished_last_minute,
            "due_waiting": self.due_waiting,
            "paused_queues": list(self.paused_queues),
            **worker_figures(self.workers),
        }


LIST_PAGE = 500  # rows per page when a listing streams


def utilisation(busy: int, slots: int) -> Optional[float]:
    """Busy slots / slots, rounded (None without slots)."""
    return round(busy / slots, 4) if slots else None


DUE_CAP = 10_000  # status counts due scheduled/failed jobs up to this many
SEARCH_WINDOW = 100_000  # jobs (by seq) a command-text search looks through per page
_TOP_SEQ = 2 ** 62


@dataclass
class JobsPage:
    """One keyset page of jobs, newest first; `next_before` continues it (None: the
    end).  A text search looks through SEARCH_WINDOW jobs per page, so a page can
    hold fewer jobs than asked and still have a next one."""

    jobs: list[Job]
    next_before: Optional[int]


@dataclass
class StopReport:
    signalled: list[int] = field(default_factory=list)  # local pids sent a signal
    requested: int = 0  # registrations flagged in the store (reaches other hosts)


#: dependants listed by `show`
DEPENDANTS_SHOWN = 50


def resolve_url(url: Optional[str], env: Mapping[str, str] | None = None) -> str:
    """--db flag > QUEUECTL_DB > the default file in the user data dir."""
    return store_url(url, env)


def _check_new(job: NewJob) -> None:
    for what in ("command", "id", "queue", "cwd", "unique_key"):
        _check_utf8(getattr(job, what), what)
    for name, value in (job.env or {}).items():
        _check_utf8(value, f"env value of {name}")
        if "\x00" in value:  # no process environment can hold it
            raise InvalidInput(f"env value of {name} contains a NUL byte")
    if job.id is None:
        job.id = new_job_id()


class Queue:
    """One store, seen through the domain verbs of queuectl."""

    def __init__(self, url: Optional[str] = None, *, flags: Mapping[str, Any] | None = None,
                 env: Mapping[str, str] | None = None, clock: Clock = time.time,
                 durable: bool = True) -> None:
        self.url = resolve_url(url, env)
        self._flags = dict(flags or {})
        self._env = env
        self._clock = clock
        self._durable = durable
        self._backend: Optional[Backend] = None
        self._logs_dir: Optional[str] = None

    # -- plumbing -------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = open_backend(self.url, durable=self._durable)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __enter__(self) -> "Queue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> float:
        return self._clock()

    def job_defaults(self) -> dict[str, Any]:
        """The config values that jobs without their own max_retries, backoff_base and
        timeout follow: what `Job.to_dict(defaults=...)` shows as effective numbers."""
        settings = self.settings()
        return {"max_retries": settings.max_retries, "backoff_base": settings.backoff_base,
                "timeout": settings.job_timeout, "priority_aging": settings.priority_aging}

    def settings(self) -> "Settings":
        """Current settings (stored config is re-read on every call)."""
        from queuectl.config import Settings  # not needed to enqueue

        return Settings(self.backend.config_items(), self._env, self._flags)

    @property
    def display_url(self) -> str:
        """The store as printed and logged (a PostgreSQL password masked)."""
        return display_url(self.url)

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.url)

    def runtime_dir(self) -> str:
        return runtime_dir(self.url, None if self.is_postgres else self.url)

    def job_log_path(self, job_id: str) -> str:
        """Where a running job's output is captured on the host that runs it, where
        in-memory captures are not available (see queuectl.worker.capture)."""
        if self._logs_dir is None:
            self._logs_dir = os.path.join(self.runtime_dir(), "logs")
        return f"{self._logs_dir}/{capture.capture_name(job_id)}.log"

    def job_output_file(self, job_id: str) -> str:
        """Where a worker on this host keeps a job's full output (its last run's, up
        to `output-file-max` bytes) when that key is set."""
        return os.path.join(self.runtime_dir(), "output",
                            f"{capture.capture_name(job_id)}.log")

    def open_live_output(self, job: Job) -> Optional[BinaryIO]:
        """The live capture of a job running on this host, opened for reading (it
        stays readable after the job ends); None when there is none here."""
        if job.state is not JobState.PROCESSING:
            return None
        from queuectl.maintenance import this_host

        handle = capture.open_live(job.worker, job.id, this_host())
        if handle is None:
            try:
                handle = open(self.job_log_path(job.id), "rb")
            except OSError:
                return None
        return handle

    @property
    def publishes_output(self) -> bool:
        """Whether workers publish running jobs' output through this store, so that
        `logs -f` on any host can read it (every store keeps output chunks)."""
        return True

    def read_output(self, job_id: str, attempt: int, from_offset: int,
                    limit: int) -> list[tuple[int, bytes]]:
        """Published output chunks of a run, (byte offset, data), from `from_offset`."""
        return list(self.backend.read_output(job_id, attempt, from_offset, limit))

    def wake_workers(self) -> None:
        if not self.backend.notifies_through_store:
            wakeup.notify(self.url)

    # -- jobs -----------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Store jobs atomically (all or none) and wake idle workers."""
        if not jobs:
            return []
        known: set[str] = set()
        for job in jobs:
            _check_new(job)
            self._resolve_dependencies(job, known)
            known.add(str(job.id))
        stored = self.backend.enqueue(jobs, self.now())
        self.wake_workers()
        return stored

    def enqueue_stream(self, jobs: Iterable[NewJob]) -> list[str]:
        """Store a large batch atomically, validating and writing it slice by slice;
        returns the ids.  An error raised by `jobs` midway stores nothing."""
        known: set[str] = set()

        def checked() -> Iterator[NewJob]:
            for job in jobs:
                _check_new(job)
                self._resolve_dependencies(job, known)
                known.add(str(job.id))  # a later line may name it (~100 bytes a job)
                yield job

        ids = self.backend.enqueue_stream(checked(), self.now())
        self.wake_workers()
        return ids

    def _resolve_dependencies(self, job: NewJob, earlier: set[str]) -> None:
        """Dependencies as full ids: an id of an earlier job of the same batch, or a
        stored job's id or unique prefix.  Unknown ones are InvalidInput (exit 2)."""
        if not job.depends_on:
            return
        resolved: list[str] = []
        conditions: dict[str, str] = {}
        for ref in job.depends_on:
            condition = job.conditions.get(ref, "completed")
            if ref == job.id:
                raise InvalidInput(f"job {job.id!r} cannot depend on itself")
            if ref in earlier:
                dep = ref
            else:
                try:
                    dep = self.resolve(ref)
                except NotFound as exc:
                    raise InvalidInput(f"dependency {ref!r} does not exist"
                                       + (f" ({exc})" if "prefix needs" in str(exc) else "")
                                       + "; nothing was enqueued") from None
            if dep == job.id:
                raise InvalidInput(f"job {job.id!r} cannot depend on itself")
            if dep not in conditions:
                resolved.append(dep)
                conditions[dep] = condition
            elif conditions[dep] != condition:
                raise InvalidInput(f"dependency {dep!r} is given twice with different "
                                   "conditions")
        job.depends_on, job.conditions = resolved, conditions

    def resolve(self, ref: str) -> str:
        """A full id from an id or a unique prefix of at least 4 characters."""
        ref = str(ref).strip()
        if not ref:
            raise InvalidInput("a job id is required")
        _check_utf8(ref, "job id")
        if "\x00" in ref:  # no stored id holds one, and PostgreSQL refuses it as text
            raise NotFound(f"no job {ref!r}")
        if self.backend.get(ref) is not None:
            return ref
        if len(ref) < MIN_PREFIX_LEN:
            raise NotFound(f"no job {ref!r} (a prefix needs at least {MIN_PREFIX_LEN} "
                           "characters)")
        matches = self.backend.find_prefix(ref, 6)
        if not matches:
            raise NotFound(f"no job {ref!r}")
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise AmbiguousId(f"job id prefix {ref!r} is ambiguous: {shown}")
        return matches[0]

    def get(self, ref: str) -> Job:
        job = self.backend.get(self.resolve(ref))
        if job is None:
            raise NotFound(f"no job {ref!r}")
        return job

    def list_jobs(self, states: Sequence[JobState] | None = None, queue: Optional[str] = None,
                  limit: int = 50, offset: int = 0) -> list[Job]:
        if limit < 0:
            raise InvalidInput("limit must be >= 0")
        _check_utf8(queue, "queue")
        return self.backend.list_jobs(list(states) if states else None, queue, limit, offset)

    def iter_jobs(self, states: Sequence[JobState] | None = None,
                  queue: Optional[str] = None, limit: Optional[int] = None,
                  page: int = LIST_PAGE) -> Iterator[Job]:
        """Jobs newest first, every match (or the first `limit`), fetched a page at a
        time by seq (keyset pagination): constant memory at any depth."""
        _check_utf8(queue, "queue")
        chosen = list(states) if states else list(JobState)
        before, left = 1 << 62, limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            rows = self.backend.list_page(chosen, queue, before, size)
            for _seq, job in rows:
                yield job
            if len(rows) < size:
                return
            before = rows[-1][0]
            if left is not None:
                left -= len(rows)

    def count_jobs(self, states: Sequence[JobState] | None = None,
                   queue: Optional[str] = None) -> int:
        """How many jobs a listing with these filters has in all."""
        chosen = set(states) if states else set(JobState)
        if queue is None:
            counts = self.backend.counts()
        else:
            _check_utf8(queue, "queue")
            counts = self.backend.queue_counts().get(queue, {})
        return sum(n for s, n in counts.items() if s in chosen)

    def queue_counts(self) -> dict[str, dict[JobState, int]]:
        """Jobs per state of every queue that has jobs (`status --queue`)."""
        return self.backend.queue_counts()

    def queue_list(self) -> list[dict[str, Any]]:
        """Every queue that has jobs or settings: its depth per state, running jobs,
        whether it is paused, its concurrency limit (`queue list`)."""
        counts = self.backend.queue_counts()
        settings = {name: (paused, limit) for name, paused, limit in self.backend.queue_rows()}
        hooks = self.backend.queue_hooks()
        policies = self.backend.queue_policies()
        out = []
        for name in sorted(set(counts) | set(settings)):
            per_state = counts.get(name, {})
            paused, limit = settings.get(name, (False, None))
            on_dead, on_complete = hooks.get(name, (None, None))
            out.append({"name": name, "paused": paused, "limit": limit,
                        "on_dead": on_dead, "on_complete": on_complete,
                        "retry_policy": policies.get(name),
                        "running": per_state.get(JobState.PROCESSING, 0),
                        "counts": {s.value: per_state.get(s, 0) for s in JobState},
                        "total": sum(per_state.values())})
        return out

    def set_paused(self, names: Sequence[str], paused: bool, *,
                   every: bool = False) -> list[str]:
        """Pause (no host claims the queue's jobs; running ones finish) or resume
        queues; `every`: all queues that have jobs or settings, and `default`."""
        from queuectl.jobspec import check_queue_name
        from queuectl.models import DEFAULT_QUEUE

        if every:
            chosen = sorted({DEFAULT_QUEUE, *self.backend.queue_counts(),
                             *(row[0] for row in self.backend.queue_rows())})
        else:
            if not names:
                raise InvalidInput("name a queue (or give --all)")
            chosen = [check_queue_name(name) for name in dict.fromkeys(names)]
        self.backend.set_queue_paused(chosen, paused, self.now())
        if not paused:
            self.wake_workers()
        return chosen

    def set_limit(self, name: str, limit: Optional[int]) -> str:
        """At most `limit` jobs of the queue run at once across every host (None: no
        limit); running jobs over a lowered limit finish, none starts until below it.
        Idle workers are woken (a raised limit may leave room)."""
        from queuectl.jobspec import check_queue_name

        name = check_queue_name(name)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not 0 <= limit <= 2**31 - 1):
            raise InvalidInput(f"a concurrency limit is a whole number from 0 to "
                               f"{2**31 - 1}, or none; got {limit!r}")
        self.backend.set_queue_limit(name, limit, self.now())
        self.wake_workers()
        return name

    def set_queue_hooks(self, name: str, *, on_dead: Optional[str] = None,
                        on_complete: Optional[str] = None, clear: bool = False
                        ) -> tuple[Optional[str], Optional[str]]:
        """`queue hook`: a queue's own on-dead / on-complete command ("" = none for this
        queue, whatever the global one; `clear`: the global ones apply again).  The
        hooks the queue has now."""
        from queuectl import config as configmod
        from queuectl.jobspec import check_queue_name

        name = check_queue_name(name)
        if clear and (on_dead is not None or on_complete is not None):
            raise InvalidInput("give --clear alone, or --on-dead/--on-complete")
        if not clear and on_dead is None and on_complete is None:
            raise InvalidInput("give --on-dead CMD, --on-complete CMD or --clear")
        checked = {}
        for option, value in (("--on-dead", on_dead), ("--on-complete", on_complete)):
            if value is not None:
                _check_utf8(value, option)
                try:
                    checked[option] = configmod.KEYS["on-dead"].parse(value)
                except ValueError as exc:
                    raise InvalidInput(f"invalid {option}: {exc}") from None
        self.backend.set_queue_hooks(
            name, self.now(), on_dead=checked.get("--on-dead"),
            on_complete=checked.get("--on-complete"),
            keep_dead=not clear and on_dead is None,
            keep_complete=not clear and on_complete is None)
        return self.backend.queue_hooks().get(name, (None, None))

    def hook_events(self, limit: int = 50, job: Optional[str] = None
                    ) -> list[dict[str, Any]]:
        """The newest hook runs (of one job), newest first, as `queuectl hooks --json`
        shows them (an event claimed by a supervisor that is gone is `lost`)."""
        job_id = None if job is None else self.resolve(job)
        events = self.backend.hook_list(limit, job_id)
        live: set[str] = set()
        if any(e.result is None and e.claimed_at is not None for e in events):
            live = {w.id for w, alive in self.workers() if alive}
        return [event.to_dict(live) for event in events]

    def set_queue_policy(self, name: str, retry_on: Any = None, no_retry_on: Any = None,
                         *, clear: bool = False) -> Optional[dict[str, list[str]]]:
        """`queue policy Q --retry-on ... --no-retry-on ...`: a queue's retry rules
        (validated first: a bad term writes nothing); the lists not given are kept;
        `clear` removes both.  Returns the rules now stored (None: none).  Running
        workers apply them from their next heartbeat."""
        from queuectl.jobspec import check_queue_name, retry_policy

        name = check_queue_name(name)
        if clear and (retry_on is not None or no_retry_on is not None):
            raise InvalidInput("give --clear or rules, not both")
        if clear:
            self.backend.set_queue_policy(name, None, self.now())
            return None
        if retry_on is None and no_retry_on is None:
            raise InvalidInput("give --retry-on, --no-retry-on or --clear")
        given = retry_policy(retry_on, no_retry_on) or {}
        policy = {**(self.backend.queue_policies().get(name) or {}), **given}
        self.backend.set_queue_policy(name, policy, self.now())
        return policy

    def complete_ids(self, prefix: str, limit: int = 20) -> list[str]:
        """Up to `limit` ids starting with `prefix` (newest ids when it is empty), for
        completion: one bounded index walk (the id index, or seq), at any depth."""
        if not prefix:
            return [job.id for job in self.backend.list_jobs(None, None, limit)]
        _check_utf8(prefix, "job id")
        return self.backend.find_prefix(prefix, limit)

    def queue_names(self, sample: int = 100) -> list[str]:
        """Queue names for completion: `default` and those of the newest `sample` jobs."""
        names = {"default"}
        names.update(job.queue for job in self.backend.list_jobs(None, None, sample))
        return sorted(names)

    def jobs_page(self, state: Optional[JobState] = None, queue: Optional[str] = None,
                  text: str = "", id_prefix: str = "", before: Optional[int] = None,
                  limit: int = 50) -> JobsPage:
        """Jobs newest first by keyset (`before` = a page's `next_before`): an index
        walk at any depth.  `id_prefix` lists the jobs whose id starts with it (one
        page, through the id index); `text` matches inside the command."""
        if limit < 1:
            raise InvalidInput("limit must be >= 1")
        for value, what in ((queue, "queue"), (text, "search text"),
                            (id_prefix, "id prefix")):
            _check_utf8(value, what)
            if value and "\x00" in value:
                raise InvalidInput(f"{what} contains a NUL byte")
        if id_prefix:
            found = [self.backend.get(i) for i in self.backend.find_prefix(id_prefix, limit)]
            jobs = [j for j in found if j is not None and (state is None or j.state is state)
                    and (queue is None or j.queue == queue) and text in j.command]
            jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
            return JobsPage(jobs, None)
        top = _TOP_SEQ if before is None else before
        floor = 0
        if text:
            if before is None:
                newest = self.backend.search_page(None, None, _TOP_SEQ, 0, "", 1)
                top = newest[0][0] + 1 if newest else 0
            floor = max(0, top - SEARCH_WINDOW)
        rows = self.backend.search_page(state, queue, top, floor, text, limit)
        if len(rows) == limit:
            next_before: Optional[int] = rows[-1][0]
        else:
            next_before = floor if floor > 0 else None
        return JobsPage([job for _, job in rows], next_before)

    def _transition(self, ref: str, transition: Transition, *, reset: bool = False,
                    note: Optional[str] = None) -> Job:
        job = self.get(ref)
        try:
            if job.depends_on and transition.target is JobState.PENDING:
                updated = self.backend.transition_held(job.id, transition, self.now(),
                                                       reset_attempts=reset)
            else:
                updated = self.backend.transition(job.id, transition, self.now(),
                                                  reset_attempts=reset, note=note)
        except StoreError:
            # back to a live state while another live job holds the unique key: the
            # store's unique index refused it; that is an invalid transition
            holder = job.unique_key and self.backend.live_job_with_key(job.unique_key)
            if holder and holder != job.id:
                raise InvalidTransition(
                    f"job {job.id} cannot be moved back to pending: its unique key "
                    f"{job.unique_key!r} is held by live job {holder}") from None
            raise
        if updated is None:
            current = self.backend.get(job.id)
            state = current.state.value if current else "deleted"
            allowed = ", ".join(sorted(s.value for s in transition.sources))
            raise InvalidTransition(f"job {job.id} is {state}; "
                                    f"{transition.name.lower().replace('_', ' ')} "
                                    f"works on {allowed} jobs")
        self.wake_workers()
        return updated

    def edit(self, ref: str, changes: Mapping[str, Any]) -> Optional[Job]:
        """`queuectl edit`: change a job that is not running and not done (states.
        EDITABLE) where it is, with an "edit" history entry; None when nothing would
        change.  A job in another state (also one claimed meanwhile) is refused."""
        from queuectl.jobspec import edit_fields
        from queuectl.states import EDITABLE

        job = self.get(ref)
        fields = edit_fields(changes, self.now())
        diff = {name: [getattr(job, name), value] for name, value in fields.items()
                if getattr(job, name) != value}
        if not diff:
            return None
        updated = self.backend.edit(job.id, EDITABLE, {**fields, "_diff": diff},
                                    self.now())
        if updated is None:
            self.check_editable(job.id)
            raise InvalidTransition(f"job {job.id} changed meanwhile; nothing was edited")
        return updated

    def check_editable(self, ref: str) -> Job:
        """The job, or InvalidTransition when `edit` cannot change it."""
        from queuectl.states import EDITABLE

        job = self.get(ref)
        if job.state not in EDITABLE:
            allowed = ", ".join(sorted(s.value for s in EDITABLE))
            hint = (f" (cancel it first: queuectl cancel {job.id})"
                    if job.state is JobState.PROCESSING else
                    f" (retry it with --command: queuectl retry {job.id} --command ...)"
                    if job.state in (JobState.COMPLETED, JobState.CANCELLED) else "")
            raise InvalidTransition(f"job {job.id} is {job.state.value}; edit works on "
                                    f"{allowed} jobs{hint}")
        return job

    def explain_retry(self, ref: str) -> dict[str, Any]:
        """`retry --explain`: the retry policy of a job and where each part comes from,
        the decision for its last failure, the next run times (queuectl.retry.explain);
        reads only."""
        from queuectl.retry import explain

        job = self.get(ref)
        return explain(job, self.settings(), self.backend.queue_policies().get(job.queue),
                       self.now())

    def cancel(self, ref: str) -> Job:
        """Cancel a waiting job, or kill a running one (its worker stops it)."""
        return self._transition(ref, Transition.CANCEL, note="cancelled by user")

    def retry(self, ref: str, changes: Optional[Mapping[str, Any]] = None) -> Job:
        """Run a failed, dead, cancelled or completed job again now; `changes` (job
        fields: command, timeout, priority, queue, max_retries, env) edit it first."""
        if changes:
            return self._retry_edited(ref, Transition.RETRY, changes)
        return self._transition(ref, Transition.RETRY)

    def _retry_edited(self, ref: str, transition: Transition,
                      changes: Mapping[str, Any]) -> Job:
        """Validate the changes (InvalidInput, nothing written), then edit the job and
        move it in one transaction; the history entry lists each change (old, new)."""
        from queuectl.jobspec import edit_fields

        job = self.get(ref)
        fields = edit_fields(changes, self.now())
        if "env" in fields:  # --env adds or replaces variables, keeps the others
            fields["env"] = {**(job.env or {}), **fields["env"]}
        diff = {name: [getattr(job, name), value] for name, value in fields.items()
                if getattr(job, name) != value}
        if "env" in diff:  # values are often secrets: the history names the variables
            diff["env"] = [sorted(job.env or {}), sorted(fields["env"])]
        updated = self.backend.retry_edited(
            job.id, transition, {**fields, "_diff": diff}, self.now(),
            reset_attempts=transition is Transition.DLQ_RETRY)
        if updated is None:
            return self._transition(job.id, transition)  # says why it cannot move
        self.wake_workers()
        return updated

    def cancel_with_dependants(self, ref: str) -> list[Job]:
        """Cancel a job and every live job that depends on it, directly or through
        others (deepest first, so none is released on the way); the cancelled jobs."""
        job = self.get(ref)
        done: list[Job] = []
        now = self.now()
        for job_id in [*self.backend.live_dependants_tree(job.id), job.id]:
            updated = self.backend.transition(job_id, Transition.CANCEL, now,
                                              note="cancelled by user with " + job.id
                                              if job_id != job.id else "cancelled by user")
            if updated is not None:
                done.append(updated)
        if not done:
            current = self.backend.get(job.id)
            state = current.state.value if current else "deleted"
            raise InvalidTransition(f"job {job.id} is {state} and no live job depends on "
                                    "it; nothing to cancel")
        self.wake_workers()
        return done

    def dependencies(self, job: Job) -> tuple[list["Edge"], list["Edge"]]:
        """(what `job` depends on, the jobs that depend on it: up to 50), with states."""
        return (self.backend.dependencies_of(job.id),
                self.backend.dependants_of(job.id, DEPENDANTS_SHOWN))

    def remove(self, ref: str) -> Job:
        """Delete one job (not while it runs: cancel it first); returns it as it was.
        A job that live jobs depend on is refused: cancel them first."""
        job = self.get(ref)
        waiting = self.backend.live_dependants_tree(job.id)
        if waiting:
            shown = ", ".join(waiting[:3]) + (", ..." if len(waiting) > 3 else "")
            raise InvalidTransition(
                f"job {job.id} has {len(waiting)} live dependant(s) ({shown}): cancel "
                f"them first (queuectl cancel {job.id} --with-dependants), then remove it")
        if not self.backend.delete(job.id):
            current = self.backend.get(job.id)
            if current is None:
                raise NotFound(f"no job {ref!r}")
            raise InvalidTransition(f"job {job.id} is {current.state.value}: cancel it "
                                    f"first (queuectl cancel {job.id}), then remove it")
        path = self._kept_file_here(job)
        if path is not None:
            try:  # its full output, kept on this host
                os.unlink(path)
            except OSError:
                pass
        return job

    def dlq_list(self, limit: int = 50) -> list[Job]:
        return self.list_jobs([JobState.DEAD], limit=limit)

    def dlq_retry(self, ref: str, changes: Optional[Mapping[str, Any]] = None) -> Job:
        """Dead -> pending with attempts reset to 0 (the history is kept); `changes`
        edit the job first, as `retry` does."""
        if changes:
            return self._retry_edited(ref, Transition.DLQ_RETRY, changes)
        return self._transition(ref, Transition.DLQ_RETRY, reset=True)

    def dlq_retry_all(self) -> list[Job]:
        """Every dead job -> pending, attempts reset, in one statement: a job buried
        again while this runs is not retried twice (it was a list-then-update loop)."""
        moved = self.backend.transition_all(Transition.DLQ_RETRY, self.now(),
                                            reset_attempts=True)
        if moved:
            self.wake_workers()
        return moved

    def dlq_purge(self) -> int:
        return self.backend.purge([JobState.DEAD], None)

    def clear(self) -> int:
        deleted = self.backend.clear()
        self._remove_kept_files(None)
        return deleted

    def purge(self, older_than_s: float, states: Sequence[JobState] | None = None) -> int:
        """Delete finished jobs that finished more than `older_than_s` ago."""
        chosen = sorted(states or FINISHED)
        bad = [s for s in chosen if s not in FINISHED]
        if bad:
            raise InvalidInput(f"only finished jobs can be purged, not {bad[0].value}")
        purged = self.backend.purge(chosen, self.now() - older_than_s)
        self._remove_kept_files(time.time() - older_than_s)
        return purged

    def _remove_kept_files(self, before: Optional[float]) -> None:
        """Delete the full-output files (output-file-max) on this host last written
        before `before` (None: all of them): they go with the jobs a purge, `cleanup`
        or `clear` deletes.  A file younger than that is a recent run's, kept."""
        folder = os.path.dirname(self.job_output_file("x"))
        try:
            names = os.listdir(folder)
        except OSError:
            return
        for name in names:
            path = os.path.join(folder, name)
            try:
                if before is None or os.stat(path).st_mtime < before:
                    os.unlink(path)
            except OSError:
                continue

    def cleanup(self) -> tuple[RescueReport, int]:
        """Rescue jobs of dead workers, then purge finished jobs past retention."""
        settings = self.settings()
        now = self.now()
        from queuectl.maintenance import purge_expired, rescue

        report = rescue(self.backend, settings, now)
        if report.requeued:
            self.wake_workers()
        purged = purge_expired(self.backend, settings, now)
        if settings.retention:
            self._remove_kept_files(time.time() - settings.retention)
        return report, purged

    def output(self, ref: str) -> tuple[Job, str, bool]:
        """(job, output, live): the live capture while it runs on this host (its last
        9 MiB at most), else the full output kept on this host (output-file-max) with
        the stored tail after it, else the tail stored when it finished."""
        job = self.get(ref)
        handle = self.open_live_output(job)
        if handle is not None:
            with handle:
                return job, capture.read_live(handle).decode("utf-8", "replace"), True
        kept = self.kept_output(job)
        if kept is not None:
            return job, kept[0], False
        return job, job.output or "", False

    def _kept_file_here(self, job: Job) -> Optional[str]:
        """The file with the job's full output when a worker on this host kept one."""
        from queuectl.maintenance import this_host

        if job.output_file is None or (job.worker or "").rpartition(":")[0] != this_host():
            return None
        return job.output_file

    def kept_output(self, job: Job) -> Optional[tuple[str, int]]:
        """(output, bytes missing in it) from the file a worker on this host kept of
        the job's last run (output-file-max): the file, then what the stored tail
        holds beyond it; None when there is no such file here."""
        path, total = self._kept_file_here(job), job.total_output_bytes
        if path is None or total is None:
            return None
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        missing = 0
        if len(data) < total:
            tail = (job.output or "").encode("utf-8", "replace")
            tail_start = job.output_dropped  # the byte offset the stored tail starts at
            if tail_start <= len(data):
                data += tail[len(data) - tail_start:]
            else:
                missing = tail_start - len(data)
                data += b"\n" if data and not data.endswith(b"\n") else b""
                data += tail
        return data.decode("utf-8", "replace"), missing

    # -- status ---------------------------------------------------------------------
    def schema_version(self) -> int:
        """The store's schema version (opening the store migrates it)."""
        return self.backend.schema_version()

    def status(self) -> Status:
        from queuectl.maintenance import this_host

        now = self.now()
        settings = self.settings()
        workers = [w for w, alive in self._workers_now(settings, now, this_host()) if alive]
        oldest = self.backend.oldest_due(now)
        return Status(url=self.display_url, counts=self.backend.counts(), workers=workers,
                      oldest_due_age_s=None if oldest is None else now - oldest,
                      finished_last_minute=self.backend.finished_since(now - 60), now=now,
                      due_waiting=self.backend.due_waiting(now, DUE_CAP),
                      paused_queues=[name for name, paused, _ in self.backend.queue_rows()
                                     if paused])

    def metrics(self, since_s: float = 3600.0, queue: Optional[str] = None, *,
                series: bool = False, status: Optional[Status] = None) -> "Metrics":
        """`queuectl metrics`: runs by outcome, rates, durations, waits, depth and
        slots over the last `since_s` seconds, overall and per queue (or of `queue`),
        read from the store (every host's workers).  `series`: also the runs of each
        60th of the window (the dashboard's chart).  `status`: a `status()` just
        read, whose time, live workers and counts per state are used rather than
        read again (the dashboard's overview reads both)."""
        from queuectl import metrics
        from queuectl.maintenance import this_host

        if not 0 < since_s <= metrics.MAX_WINDOW_S:
            raise InvalidInput("the metrics window must be longer than 0 seconds and "
                               "at most 3650 days")
        _check_utf8(queue, "queue")
        if status is not None:
            now, workers = status.now, status.workers
        else:
            now = self.now()
            workers = [w for w, alive in self._workers_now(self.settings(), now, this_host())
                       if alive]
        since = metrics.horizon(now, since_s)
        width = since_s / metrics.BUCKETS
        buckets: Optional[list[tuple[int, int, int]]]
        if metrics.aligned(since_s):  # one walk of the window (the default hour)
            window, spans, buckets = metrics.from_buckets(
                self.backend.metrics_buckets(now - since_s, width, queue), since_s)
        else:
            window = self.backend.metrics_window(now - since_s, queue)
            spans = self.backend.metrics_spans(now, queue)
            buckets = self.backend.metrics_series(now - since_s, width, queue) \
                if series else None
        return metrics.compute(
            store=self.display_url, now=now, since_s=since_s, queue=queue,
            window=window, spans=spans,
            sample=self.backend.metrics_sample(now - since_s, queue, metrics.SAMPLE_CAP),
            sample_cap=metrics.SAMPLE_CAP,
            earlier=self.backend.metrics_earlier_runs(since, queue),
            live=self.backend.metrics_live(now, queue, metrics.LIVE_CAP),
            live_cap=metrics.LIVE_CAP,
            counts=None if queue is not None else
            (status.counts if status is not None else self.backend.counts()),
            workers=workers,
            series=buckets if series else None)

    def runs_since(self, since: float, queue: Optional[str] = None) -> list[RunRecord]:
        """The runs that ended at or after `since` (and the jobs cancelled since then),
        one record each, of every queue or of `queue` (the Prometheus counters)."""
        _check_utf8(queue, "queue")
        rows = self.backend.metrics_rows(since, queue)
        return [RunRecord(job_id, q, state if state in ("completed", "dead", "cancelled")
                          else "failed", bool(timed_out), attempts,
                          None if duration is None else finished - duration, finished)
                for job_id, q, state, attempts, duration, _, finished, timed_out in rows] \
            + self.backend.metrics_earlier_runs(since, queue)

    def workers(self) -> list[tuple[WorkerInfo, bool]]:
        """Every registration with whether it is alive."""
        from queuectl.maintenance import this_host

        return self._workers_now(self.settings(), self.now(), this_host())

    def _workers_now(self, settings: "Settings", now: float, host: str
                     ) -> list[tuple[WorkerInfo, bool]]:
        """Registrations with whether they are alive; `busy` is what each one holds in
        `processing` in the store now (the heartbeat's figure lags up to an interval)."""
        from queuectl.maintenance import worker_alive

        running = self.backend.running_by_worker()
        return [(replace(w, busy=running.get(w.id, 0)), worker_alive(w, settings, now, host))
                for w in self.backend.list_workers()]

    def stop_workers(self, *, now_mode: bool = False) -> StopReport:
        """Ask every supervisor to stop: local ones at once (a signal), remote ones
        through the store at their next heartbeat.  A graceful request sends SIGUSR1
        ("a stop is requested": however often it comes, running jobs finish); `now`
        sends SIGTERM with the store flag, which kills running jobs at once."""
        import signal

        from queuectl.maintenance import started_by, this_host

        mode = "now" if now_mode else "graceful"
        report = StopReport(requested=self.backend.request_stop(mode))
        host = this_host()
        for info, alive in self.workers():
            # a pid that now belongs to a newer process is left alone: that worker
            # still hears the request through the store
            if info.host == host and alive and info.pid != os.getpid() \
                    and started_by(info.pid, info.started_at):
                try:
                    os.kill(info.pid, signal.SIGTERM if now_mode else signal.SIGUSR1)
                    report.signalled.append(info.pid)
                except (ProcessLookupError, PermissionError):
                    pass
        return report

    # -- config ---------------------------------------------------------------------
    def config_items(self) -> list[tuple[str, Any, str]]:
        return self.settings().items()

    def config_get(self, key: str) -> tuple[str, Any, str]:
        from queuectl import config as configmod

        name = configmod.canonical_key(key)
        settings = self.settings()
        return name, settings[name], settings.source(name)

    def config_set(self, key: str, value: Any) -> tuple[str, Any]:
        """Validate, then store; nothing is written when the value is bad."""
        from queuectl import config as configmod

        name = configmod.canonical_key(key)
        typed = configmod.validate(name, value)
        stored = configmod.Settings(self.backend.config_items(), env={}, flags={})
        values = {key_name: v for key_name, v, _ in stored.items()}
        values[name] = typed
        configmod.check_together(values)  # against the stored values, not env/flags
        if name == "priority-aging":  # the claim index of the new step, before it counts
            self.backend.set_aging_index(float(typed), float(stored.priority_aging))
        self.backend.config_set(name, configmod.to_text(typed), self.now())
        return name, typed

    def config_unset(self, key: str) -> tuple[str, bool]:
        from queuectl import config as configmod

        name = configmod.canonical_key(key)
        if name == "priority-aging":
            previous = self.settings().priority_aging
            self.backend.set_aging_index(0.0, float(previous))
        return name, self.backend.config_unset(name)

    # -- following ------------------------------------------------------------------
    def find(self, job_id: str) -> Optional[Job]:
        """The job with exactly this id, or None (no prefix matching)."""
        return self.backend.get(job_id)

    def follow(self, ref: str, tail: Optional[int] = None
               ) -> Iterator["jobevents.FollowEvent"]:
        """A job's output and run changes as events until it ends (`logs -f`); `tail`:
        of the output so far only the last `tail` lines (`logs -n N -f`)."""
        from queuectl import jobevents

        return jobevents.follow(self, self.resolve(ref), tail=tail)

    def running_ids(self, limit: int) -> list[str]:
        """Ids of the jobs running now (`processing`), newest first, at most `limit`."""
        return [job.id for job in self.iter_jobs([JobState.PROCESSING], limit=limit)]

    def watch_live(self, queue: Optional[str] = None, timeout_s: Optional[float] = None
                   ) -> Iterator["jobevents.WatchEvent"]:
        """`wait` without ids: every job live now (of `queue`) until all are finished
        or the timeout passes; ends with a WatchDone."""
        from queuectl import jobevents

        if queue is not None:
            from queuectl.jobspec import check_queue_name

            check_queue_name(queue)
        return jobevents.watch_live(self, queue, timeout_s)

    def watch(self, refs: Sequence[str], timeout_s: Optional[float] = None
              ) -> Iterator["jobevents.WatchEvent"]:
        """State changes of jobs until all are finished or the timeout passes
        (`wait`); the last event is a WatchDone with every job's latest view."""
        from queuectl import jobevents

        ids = list(dict.fromkeys(self.resolve(ref) for ref in refs))  # bad ids fail first
        return jobevents.watch(self, ids, timeout_s)


def _check_utf8(value: Optional[str], what: str) -> None:
    """Text from argv (bytes that are not UTF-8) or JSON (a lone \\uD800) can hold
    surrogates that no store can keep: bad input, not an internal error."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} is not valid UTF-8 text: {value!r}") from None
