"""B9: the store ceiling.  How many claim+finish cycles per second a store sustains
when process creation is taken out: real supervisors (benchmarks/nospawn.py: the real
`worker start` whose runs end as soon as they start), 1, 4 and 16 of them with 4 slots
each, batched as the worker batches (one finish_and_claim for the slots that ended
together).  The supervisors are started and registered first, idle; the jobs are
stored in one transaction and the clock runs from that commit to the last completion."""

from __future__ import annotations

import os
import signal
import time
from typing import Optional

from benchmarks.cases import Context
from benchmarks.harness import (
    PYTHON,
    Row,
    Workspace,
    median,
    proc_cpu_seconds,
    wait_registered,
    wait_until,
)

SUPERVISORS = (1, 4, 16)
SLOTS = 4
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _round(ws: Workspace, db: str, supervisors: int, count: int) -> tuple[float, float]:
    """(jobs per second, supervisor CPU in microseconds per job) of one round."""
    from queuectl.jobcore import new_job_id
    from queuectl.models import NewJob
    from queuectl.queue import Queue
    from queuectl.states import JobState

    env_path = ws.env.get("PYTHONPATH", "")
    if not env_path.startswith(ROOT):  # benchmarks.nospawn importable in the workers
        ws.env["PYTHONPATH"] = ROOT + (os.pathsep + env_path if env_path else "")
    procs = [ws.spawn([PYTHON, "-m", "benchmarks.nospawn", "--db", db, "worker", "start",
                       "--count", str(SLOTS)], log=f"b9-{supervisors}-{i}.log")
             for i in range(supervisors)]
    try:
        wait_registered(db, [p.pid for p in procs], timeout=120)
        cpu0 = sum(proc_cpu_seconds(p.pid) for p in procs)
        with Queue(db) as queue:
            jobs = [NewJob(command="true", id=new_job_id()) for _ in range(count)]
            queue.backend.enqueue(jobs, time.time())  # the commit
            start = time.perf_counter()
            queue.wake_workers()
            wait_until(lambda: queue.backend.counts()[JobState.COMPLETED] >= count, 600,
                       "every job to complete", 0.02)
            elapsed = time.perf_counter() - start
        cpu = sum(proc_cpu_seconds(p.pid) for p in procs) - cpu0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    return count / elapsed, cpu / count * 1e6


def _rows(ctx: Context, store: str, server: Optional[str]) -> list[Row]:
    count, rounds = ctx.scale.b9_jobs, ctx.scale.b9_rounds
    need = 20_000 if store == "sqlite" else 10_000
    rows = []
    with Workspace("b9") as ws:
        for supervisors in SUPERVISORS:
            rates, cpus = [], []
            for round_ in range(rounds):
                if server is None:
                    rate, cpu = _round(ws, ws.path(f"b9-{supervisors}-{round_}.db"),
                                       supervisors, count)
                else:
                    from benchmarks.postgres import fresh_database

                    with fresh_database(server) as db:
                        rate, cpu = _round(ws, db, supervisors, count)
                rates.append(rate)
                cpus.append(cpu)
            rate = median(rates)
            rows.append(Row("B9", f"store ceiling, {count} jobs, {supervisors} supervisor(s) "
                            f"x {SLOTS} slots, no spawn, median of {rounds}", round(rate),
                            "jobs/s", f">= {need} jobs/s", rate >= need,
                            f"supervisor CPU {median(cpus):.0f} us/job", None, store))
    return rows


def b9_ceiling(ctx: Context) -> list[Row]:
    from benchmarks.postgres import DEFAULT_PG, reachable

    rows = _rows(ctx, "sqlite", None)
    server = ctx.db_url or DEFAULT_PG
    why = reachable(server)
    if why is not None:
        return rows + [Row("B9", why, 0, "", "", None, store="postgres")]
    return rows + _rows(ctx, "postgres", server)
