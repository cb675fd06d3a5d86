"""Results that could not be recorded before a supervisor had to exit (a full disk, a
store gone for longer than `worker stop --now` waits): kept in a private file so that
the next supervisor on this host records them, instead of the jobs running again as
"worker lost" although they ended.

One JSON line per result, in `<data dir>/unrecorded/<store key>/<worker id>.jsonl`.  A
result is applied only while its job is still held by the run that produced it (same
registration, same attempt, still processing); otherwise the job has moved on (it was
rescued, cancelled or purged) and the kept result is dropped with a log line.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, Mapping, Optional

from queuectl.errors import StoreError
from queuectl.paths import data_dir, make_private_dir, open_private, store_key
from queuectl.states import JobState

if TYPE_CHECKING:
    from queuectl.backends.base import Backend
    from queuectl.models import Job

log = logging.getLogger("queuectl.worker.supervisor")


def folder(url: str) -> str:
    return os.path.join(data_dir(), "unrecorded", store_key(url))


def finished(job: "Job", state: JobState, run_at: Optional[float],
             fields: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "finish", "id": job.id, "worker_id": job.worker_id,
            "attempt": job.attempts, "state": state.value, "run_at": run_at,
            "fields": dict(fields)}


def given_back(job: "Job", entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "requeue", "id": job.id, "worker_id": job.worker_id,
            "attempt": job.attempts, "entry": dict(entry)}


def save(url: str, worker_id: str, records: list[dict[str, Any]]) -> Optional[str]:
    """Append `records` to this worker's file; returns its path, or None when it cannot
    be written either (then every record is logged whole, the last place left)."""
    if not records:
        return None
    path = os.path.join(folder(url), f"{worker_id}.jsonl")
    text = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    try:
        make_private_dir(folder(url))
        fd = open_private(path)
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        return path
    except OSError as exc:
        log.error("cannot keep %d unrecorded result(s) in %s (%s); they are: %s",
                  len(records), path, exc, text.strip())
        return None


def replay(backend: "Backend", url: str, now: float) -> int:
    """Record every kept result of this store that still applies; returns how many were
    recorded.  A file is removed once each of its results is recorded or dropped; a
    store error leaves it for the next try."""
    try:
        names = sorted(os.listdir(folder(url)))
    except OSError:
        return 0  # nothing kept (the usual case: one failed listdir per rescue tick)
    applied = 0
    for name in names:
        path = os.path.join(folder(url), name)
        if not name.endswith(".jsonl"):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as exc:
            log.warning("cannot read kept results %s: %s", path, exc)
            continue
        try:
            applied += sum(_apply(backend, json.loads(line), now)
                           for line in lines if line.strip())
        except StoreError as exc:
            log.warning("kept results in %s not recorded yet: %s", path, exc)
            continue
        except (ValueError, KeyError, TypeError) as exc:
            log.error("kept results in %s are damaged (%s); moved aside", path, exc)
            os.replace(path, path + ".damaged")
            continue
        os.unlink(path)
    return applied


def _apply(backend: "Backend", record: dict[str, Any], now: float) -> bool:
    job = backend.get(record["id"])
    if (job is None or job.state is not JobState.PROCESSING
            or job.worker_id != record["worker_id"] or job.attempts != record["attempt"]):
        log.warning("a kept result of job %s no longer applies (the job moved on); "
                    "dropped", record["id"])
        return False
    if record["kind"] == "requeue":
        done = backend.requeue(job, now=now, count_attempt=False, rescued=False,
                               history_entry=record["entry"])
    else:
        fields = record["fields"]
        done = backend.finish(job, JobState(record["state"]), record["run_at"],
                              now=fields["now"], exit_code=fields["exit_code"],
                              error=fields["error"], output=fields["output"],
                              history_entry=fields["history_entry"])
    if done:
        log.warning("recorded the kept result of job %s (attempt %d)", job.id,
                    job.attempts)
    return done
