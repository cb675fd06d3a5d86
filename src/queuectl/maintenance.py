"""Rescue jobs whose worker died, and purge finished jobs past retention.

A supervisor is dead when its heartbeat is older than `lease-timeout`, or at once when
it ran on this host and its pid is gone.  Its processing jobs go back to pending (the
history says "worker lost"), or to dead once they were rescued more than max_retries
times.  Every rescue is a guarded update on (job, worker), so two rescuers racing each
other, or a worker that was only slow, cannot double-move a job.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from dataclasses import dataclass, field

from queuectl.backends.base import Backend
from queuectl.config import Settings
from queuectl.models import Job, WorkerInfo
from queuectl.retry import rescue_exhausted
from queuectl.states import FINISHED, JobState

log = logging.getLogger(__name__)


def this_host() -> str:
    return os.environ.get("QUEUECTL_HOST_ID") or socket.gethostname()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """An exited process nobody reaped yet (a detached supervisor's parent is often a
    container's PID 1, which may never reap): kill(pid, 0) succeeds, but it is dead."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False  # no /proc (or it just went away): trust kill(pid, 0)
    return stat[stat.rfind(b")") + 2:][:1] == b"Z"


def started_by(pid: int, moment: float, slack_s: float = 5.0) -> bool:
    """False when process `pid` started after `moment` (epoch): its pid was reused.
    True when it started before, or when that cannot be told (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        with open("/proc/stat", "rb") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith(b"btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return True
    return boot + ticks / os.sysconf("SC_CLK_TCK") <= moment + slack_s


def worker_alive(info: WorkerInfo, settings: Settings, now: float, host: str) -> bool:
    """Live = heartbeat within the lease and, on this host, the pid still exists.
    The lease is never shorter than two heartbeat intervals: a live worker's
    heartbeat is up to one interval old, and must not make it look dead."""
    lease = max(settings.lease_timeout, 2 * settings.heartbeat_interval)
    if now - info.heartbeat_at > lease:
        return False
    if info.host == host and not pid_alive(info.pid):
        return False
    return True


@dataclass
class RescueReport:
    dead_workers: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    buried: list[str] = field(default_factory=list)


def rescue(backend: Backend, settings: Settings, now: float, *, host: str | None = None,
           exclude: str | None = None) -> RescueReport:
    """Take back the jobs of dead supervisors (all but `exclude`, the caller itself)."""
    host = host or this_host()
    report = RescueReport()
    workers = backend.list_workers()
    dead = [w for w in workers
            if w.id != exclude and not worker_alive(w, settings, now, host)]
    live_ids = {w.id for w in workers} - {w.id for w in dead}
    jobs = backend.processing_jobs([w.id for w in dead])
    jobs += [j for j in backend.orphaned_jobs() if j.worker_id not in live_ids]
    for job in jobs:
        _rescue_job(backend, settings, job, now, report)
    for worker in dead:
        backend.unregister_worker(worker.id)
        report.dead_workers.append(worker.id)
        log.warning("worker %s (%s pid %s) is gone; its jobs were rescued",
                    worker.id, worker.host, worker.pid)
    return report


def _rescue_job(backend: Backend, settings: Settings, job: Job, now: float,
                report: RescueReport) -> None:
    exhausted = rescue_exhausted(job, settings)
    entry = {"attempt": job.attempts, "event": "worker lost", "worker": job.worker,
             "started_at": job.started_at, "finished_at": now,
             "error": "worker lost" + (" too many times" if exhausted else "")}
    target = JobState.DEAD if exhausted else JobState.PENDING
    end_lost_run(job, this_host())
    if backend.requeue(job, now=now, count_attempt=True, rescued=True,
                       history_entry=entry, to_state=target):
        (report.buried if exhausted else report.requeued).append(job.id)
        log.warning("job %s: its worker %s was lost; now %s", job.id, job.worker, target)


def end_lost_run(job: Job, host: str) -> int:
    """Kill what a dead supervisor on this host left running of `job`, so that the job
    never runs twice at once.  The run's shell leads its own process group, which
    nobody else would end; it is found through /proc by the QUEUECTL_JOB_ID and
    QUEUECTL_JOB_ATTEMPT every run gets.  Returns how many groups were killed."""
    if not job.worker or job.worker.rsplit(":", 1)[0] != host:
        return 0  # run elsewhere: that host's processes are out of reach
    wanted = {f"QUEUECTL_JOB_ID={job.id}".encode(),
              f"QUEUECTL_JOB_ATTEMPT={job.attempts}".encode()}
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return 0
    groups = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if wanted <= set(handle.read().split(b"\0")):
                    groups.add(os.getpgid(pid))
        except OSError:  # gone, or another user's
            continue
    groups.discard(os.getpgid(0))
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    if groups:
        log.warning("job %s: killed what its lost run (attempt %d) left running",
                    job.id, job.attempts)
    return len(groups)


def purge_expired(backend: Backend, settings: Settings, now: float) -> int:
    """Delete finished jobs older than `retention` (0 keeps them forever)."""
    if not settings.retention:
        return 0
    return backend.purge(sorted(FINISHED), now - settings.retention)
