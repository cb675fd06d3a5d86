"""B1b and B1c: a short burst with the worker's start-up included, what the supervisor
itself costs per tiny job, and how long a worker takes from exec to its first job.

B1b: 2,000 `true` jobs in a pre-filled store, `worker start --count 4 --burst`, from the
exec to its exit (every job done); `xargs -P 4` on the same commands and, when `tsp` is
installed, task-spooler with 4 slots draining 900 queued jobs, in the same rounds
(alternating).  B1c: the supervisor's own CPU (utime + stime from /proc, not its jobs')
over B1's 5,000 jobs, and exec -> the first job's process starting."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from typing import Optional

from benchmarks.cases import Context, _enqueue_true
from benchmarks.harness import (
    Row,
    Workspace,
    median,
    proc_cpu_seconds,
    queuectl_argv,
    store_counts,
    wait_until,
    xargs_rate,
)

BURST_JOBS = 2000
TSP_JOBS = 900  # task-spooler keeps a client process per queued job: ~1,000 at most
SLOTS = 4


def _burst_rate(ws: Workspace, db: str, count: int) -> float:
    start = time.perf_counter()
    worker = ws.worker(db, "--count", str(SLOTS), "--burst", log="burst.log")
    worker.wait(timeout=600)
    elapsed = time.perf_counter() - start
    done = store_counts(db)["completed"]
    if done != count:
        raise RuntimeError(f"{done} of {count} jobs completed")
    return count / elapsed


def _tsp_rate(ws: Workspace, tsp: str, round_: int) -> float:
    """Jobs per second of task-spooler (-S 4) draining TSP_JOBS queued `true` jobs: four
    blockers hold the slots while the jobs are queued, then are let go."""
    env = dict(ws.env, TS_SOCKET=ws.path(f"tsp{round_}.socket"),
               TMPDIR=ws.root, TS_SAVELIST="", TS_MAXFINISHED=str(TSP_JOBS + 16))
    go = ws.path(f"tsp-go{round_}")

    def tsp_call(*args: str) -> str:
        return subprocess.run([tsp, *args], env=env, capture_output=True, check=True,
                              timeout=60).stdout.decode().strip()

    try:
        tsp_call("-S", str(SLOTS))
        for _ in range(SLOTS):
            tsp_call("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.01; done")
        last = ""
        for _ in range(TSP_JOBS):
            last = tsp_call("true")
        start = time.perf_counter()
        open(go, "w").close()
        tsp_call("-w", last)
        return TSP_JOBS / (time.perf_counter() - start)
    finally:
        subprocess.run([tsp, "-K"], env=env, capture_output=True, timeout=30)


def b1b_burst(ctx: Context) -> list[Row]:
    rounds = ctx.scale.b1_rounds
    tsp = shutil.which("tsp")
    references, rates, tsp_rates = [], [], []
    with Workspace("b1b") as ws:
        for round_ in range(rounds):
            db = ws.path(f"burst{round_}.db")
            _enqueue_true(db, BURST_JOBS)
            ours_first = round_ % 2 == 1
            if ours_first:
                rates.append(_burst_rate(ws, db, BURST_JOBS))
            references.append(xargs_rate(BURST_JOBS, SLOTS, ws.root))
            if tsp is not None:
                tsp_rates.append(_tsp_rate(ws, tsp, round_))
            if not ours_first:
                rates.append(_burst_rate(ws, db, BURST_JOBS))
    reference, rate = median(references), median(rates)
    ratio = rate / reference
    rows = [Row("B1b", f"burst, {BURST_JOBS} jobs from exec, 1 worker x {SLOTS} slots, "
                f"median of {rounds}", round(rate), "jobs/s", ">= 0.8 x xargs -P 4",
                ratio >= 0.8, f"xargs -P 4: {reference:.0f}/s", round(ratio, 2))]
    if tsp is None:
        rows.append(Row("B1b", "task-spooler reference: `tsp` is not installed "
                        "(apt-get install task-spooler)", 0, "", "ahead of tsp", None))
    else:
        spooler = median(tsp_rates)
        rows.append(Row("B1b", f"burst vs task-spooler -S {SLOTS} draining {TSP_JOBS} "
                        "queued jobs", round(rate), "jobs/s", "ahead of tsp",
                        rate > spooler, f"tsp: {spooler:.0f}/s (xargs ratio "
                        f"{spooler / reference:.2f})", round(rate / spooler, 2)))
    return rows


def _supervisor_cpu(ws: Workspace, db: str, count: int) -> float:
    """Microseconds of the supervisor's own CPU per job over `count` tiny jobs, read
    from /proc while it still runs (its jobs' CPU is not in utime/stime)."""
    _enqueue_true(db, count)
    worker = ws.worker(db, "--count", str(SLOTS), log="cpu.log")
    from queuectl.queue import Queue
    from queuectl.states import JobState

    try:
        with Queue(db) as queue:
            wait_until(lambda: queue.backend.counts()[JobState.COMPLETED] >= 1, 60,
                       "the first job")
            cpu0, done0 = proc_cpu_seconds(worker.pid), queue.backend.counts()[
                JobState.COMPLETED]
            wait_until(lambda: queue.backend.counts()[JobState.COMPLETED] >= count, 600,
                       "every job", 0.005)
            cpu = proc_cpu_seconds(worker.pid) - cpu0
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return cpu / (count - done0) * 1e6


def _startup_ms(ws: Workspace, db: str, round_: int) -> float:
    """Exec of `worker start` -> its first job's process starting (a FIFO it opens)."""
    from queuectl.models import NewJob
    from queuectl.queue import Queue

    fifo = ws.path(f"start{round_}.fifo")
    os.mkfifo(fifo)
    with Queue(db) as queue:
        queue.enqueue([NewJob(command=f"printf x > {fifo}")])
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        start = time.perf_counter()
        worker = ws.worker(db, "--count", str(SLOTS), "--burst", log="start.log")
        ready, _, _ = select.select([reader], [], [], 30)
        elapsed = time.perf_counter() - start
        if not ready:
            raise RuntimeError("the first job did not start within 30 s")
        worker.wait(timeout=60)
    finally:
        os.close(reader)
    return elapsed * 1000


def b1c_supervisor(ctx: Context) -> list[Row]:
    from benchmarks.postgres import DEFAULT_PG, fresh_database, reachable

    count = ctx.scale.b1_jobs
    rounds = max(3, ctx.scale.b1_rounds)
    rows = []
    with Workspace("b1c") as ws:
        cpus = [_supervisor_cpu(ws, ws.path(f"cpu{r}.db"), count) for r in range(rounds)]
        cpu = median(cpus)
        rows.append(Row("B1c", f"supervisor CPU per tiny job ({count} jobs, 4 slots, "
                        f"/proc utime+stime, median of {rounds})", round(cpu), "us",
                        "<= 150 us", cpu <= 150, f"rounds: {', '.join(f'{c:.0f}' for c in cpus)}"))
        starts = []
        for round_ in range(5):
            db = ws.path(f"start{round_}.db")
            subprocess.run([*queuectl_argv(), "--db", db, "migrate"], env=ws.env,
                           capture_output=True, check=True)
            starts.append(_startup_ms(ws, db, round_))
        rows.append(Row("B1c", "worker start-up, exec -> first job's process, median of 5",
                        round(median(starts), 1), "ms", "<= 120 ms",
                        median(starts) <= 120))
        server: Optional[str] = ctx.db_url or DEFAULT_PG
        if server is not None and reachable(server) is None:
            starts = []
            for round_ in range(5):
                with fresh_database(server) as db:
                    subprocess.run([*queuectl_argv(), "--db", db, "migrate"], env=ws.env,
                                   capture_output=True, check=True)
                    starts.append(_startup_ms(ws, db, 100 + round_))
            rows.append(Row("B1c", "worker start-up, exec -> first job's process, median "
                            "of 5", round(median(starts), 1), "ms", "<= 250 ms",
                            median(starts) <= 250, store="postgres"))
    return rows
