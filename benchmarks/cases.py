"""B1-B7 of the performance suite.  Each case takes the run's `Scale` and returns rows; the
references (xargs, bare interpreter start, the 1k-job store) are measured here too."""

from __future__ import annotations

import json
import os
import select
import shutil
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from benchmarks.harness import (
    PYTHON,
    Row,
    Workspace,
    median,
    percentile,
    proc_cpu_seconds,
    proc_rss_mb,
    queuectl_argv,
    store_counts,
    timed,
    wait_registered,
    wait_until,
    xargs_rate,
)


@dataclass
class Scale:
    b1_jobs: int = 5000
    b1_rounds: int = 5  # xargs and queuectl alternate; the medians are compared
    b2_samples: int = 200
    b3_runs: int = 30
    b4_jobs: int = 100_000
    b4_rounds: int = 3  # enqueue --file and the bare executemany alternate
    b5_jobs: int = 1_000_000
    b6_seconds: float = 10.0
    b7_jobs: int = 20_000
    b9_jobs: int = 40_000  # B9: per round, for each number of supervisors
    b9_rounds: int = 3
    b10_per_hour: int = 36_000  # B5's million finished over ~a day
    b10_samples: int = 40
    b11_groups: int = 100  # B11: groups of 100 jobs (fan-out then fan-in), in sequence
    b11_rounds: int = 3

    @classmethod
    def quick(cls) -> "Scale":
        return cls(b1_jobs=2000, b1_rounds=1, b2_samples=50, b3_runs=8, b4_jobs=100_000,
                   b4_rounds=1, b5_jobs=100_000, b6_seconds=3.0, b7_jobs=2000,
                   b9_jobs=10_000, b9_rounds=1, b10_per_hour=3_600,
                   b10_samples=10, b11_groups=20, b11_rounds=1)


@dataclass
class Context:
    scale: Scale
    db_url: Optional[str] = None  # a PostgreSQL URL for B8; SQLite stores are temporary


def _enqueue_true(db: str, count: int, command: str = "true") -> None:
    from queuectl.models import NewJob
    from queuectl.queue import Queue

    with Queue(db) as queue:
        for start in range(0, count, 10_000):
            queue.enqueue([NewJob(command=command)
                           for _ in range(min(10_000, count - start))])


def _drain_rate(ws: Workspace, db: str, count: int, procs: int, slots: int,
                completed: Optional[int] = None) -> float:
    """Jobs per second of `procs` burst workers draining `count` jobs (`completed`: how
    many the store must hold completed afterwards, when earlier rounds left some)."""
    start = time.perf_counter()
    workers = [ws.worker(db, "--count", str(slots), "--burst", log=f"w{i}.log")
               for i in range(procs)]
    for proc in workers:
        proc.wait(timeout=600)
    elapsed = time.perf_counter() - start
    done = store_counts(db)["completed"]
    if done != (completed or count):
        raise RuntimeError(f"{done} of {completed or count} jobs completed")
    return count / elapsed


def b1_throughput(ctx: Context, db: Optional[str] = None, store: str = "sqlite") -> list[Row]:
    count, rounds = ctx.scale.b1_jobs, ctx.scale.b1_rounds
    references, rates = [], []
    with Workspace("b1") as ws:
        target_db = db or ws.path("queue.db")
        for round_ in range(1, rounds + 1):  # alternating, so both see the same noise
            references.append(xargs_rate(count, 4, ws.root))
            _enqueue_true(target_db, count)
            rates.append(_drain_rate(ws, target_db, count, 1, 4, completed=count * round_))
    reference, rate = median(references), median(rates)
    ratio = rate / reference
    need = 0.7 if store == "sqlite" else 0.5
    return [Row("B1" if store == "sqlite" else "B8", f"throughput, {count} tiny jobs, "
                f"1 worker x 4 slots, median of {rounds}", round(rate), "jobs/s",
                f">= {need} x xargs -P 4", ratio >= need, f"xargs -P 4: {reference:.0f}/s",
                round(ratio, 2), store)]


def b2_pickup(ctx: Context, db: Optional[str] = None, store: str = "sqlite") -> list[Row]:
    from queuectl.models import NewJob
    from queuectl.queue import Queue

    samples = ctx.scale.b2_samples
    latencies = []
    with Workspace("b2") as ws:
        target_db = db or ws.path("queue.db")
        fifo = ws.path("started.fifo")
        os.mkfifo(fifo)
        worker = ws.worker(target_db, "--count", "1")
        wait_registered(target_db, [worker.pid])
        with Queue(target_db) as queue:
            for index in range(samples + 5):
                reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                try:
                    job = NewJob(command=f"printf x > {fifo}", id=f"pickup-{index}")
                    queue.backend.enqueue([job], time.time())  # the commit
                    start = time.perf_counter()
                    queue.wake_workers()
                    ready, _, _ = select.select([reader], [], [], 10)
                    if not ready:
                        raise RuntimeError("the job did not start within 10 s")
                    elapsed = time.perf_counter() - start
                    os.read(reader, 16)
                finally:
                    os.close(reader)
                if index >= 5:  # the first few warm the worker's caches
                    latencies.append(elapsed * 1000)
                wait_until(lambda n=index + 1: queue.backend.counts()[_completed()] >= n, 10,
                           "the job to complete", 0.001)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    name = "B2" if store == "sqlite" else "B8"
    return [
        Row(name, f"pickup latency p50, idle 1-slot worker, {samples} samples",
            round(p50, 2), "ms", "<= 5 ms", p50 <= 5, "a 1 s poll: 1000 ms", None,
            store),
        Row(name, "pickup latency p99", round(p99, 2), "ms", "<= 25 ms", p99 <= 25, "", None,
            store),
    ]


def _completed():  # type: ignore[no-untyped-def]
    from queuectl.states import JobState

    return JobState.COMPLETED


def _compile_package() -> None:
    """Byte-compile queuectl as `pip install` does: an editable install run with
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on every start."""
    import compileall

    import queuectl

    compileall.compile_dir(os.path.dirname(queuectl.__file__), quiet=1)


def b3_cli_enqueue(ctx: Context) -> list[Row]:
    """SQLite, and PostgreSQL (B3b) when a server answers, each against
    `python -c "import sqlite3"` timed in the same run."""
    runs = ctx.scale.b3_runs
    _compile_package()
    with Workspace("b3") as ws:
        db = ws.path("queue.db")
        ws.run([*queuectl_argv(), "--db", db, "migrate"])  # create the store first
        bare = median(timed([PYTHON, "-c", "import sqlite3"], ws.env, runs))
        ours = median(timed([*queuectl_argv(), "--db", db, "enqueue", "true"], ws.env, runs))
        rows = [Row("B3", f"`queuectl enqueue true`, median of {runs}", round(ours * 1000, 1),
                    "ms", "<= 2.5 x python -c 'import sqlite3'", ours / bare <= 2.5,
                    f"import sqlite3: {bare * 1000:.1f} ms", round(ours / bare, 2))]
        rows += _b3_postgres(ctx, ws, runs)
    return rows


def _b3_postgres(ctx: Context, ws: Workspace, runs: int) -> list[Row]:
    from benchmarks.postgres import DEFAULT_PG, fresh_database, reachable

    server = ctx.db_url or DEFAULT_PG
    if reachable(server) is not None:
        return []  # B8 says why
    with fresh_database(server) as db:
        ws.run([*queuectl_argv(), "--db", db, "migrate"])  # the schema first
        bare = median(timed([PYTHON, "-c", "import sqlite3"], ws.env, runs))
        ours = median(timed([*queuectl_argv(), "--db", db, "enqueue", "true"], ws.env, runs))
    ratio = ours / bare
    return [Row("B3b", f"`queuectl --db postgresql://... enqueue true`, median of {runs}",
                round(ours * 1000, 1), "ms", "<= 3 x python -c 'import sqlite3'",
                ratio <= 3, f"import sqlite3: {bare * 1000:.1f} ms", round(ratio, 2),
                store="postgres")]


def b4_batch_enqueue(ctx: Context) -> list[Row]:
    """`enqueue --file` against benchmarks/bare_insert.py (sqlite3 `executemany` of the
    same rows into the same migrated store, its own process too), alternating rounds,
    each in a fresh store; the medians are compared and the absolute rate kept."""
    count, rounds = ctx.scale.b4_jobs, ctx.scale.b4_rounds
    bare_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bare_insert.py")
    ours, bare = [], []
    with Workspace("b4") as ws:
        path = ws.path("jobs.jsonl")
        with open(path, "w") as handle:
            for index in range(count):
                handle.write(json.dumps({"command": f"echo {index}", "priority": 1 + index % 10})
                             + "\n")
        for round_ in range(rounds):
            for kind in ("bare", "ours") if round_ % 2 == 0 else ("ours", "bare"):
                db = ws.path(f"{kind}-{round_}.db")
                ws.run([*queuectl_argv(), "--db", db, "migrate"])
                argv = ([PYTHON, bare_script, db, path] if kind == "bare" else
                        [*queuectl_argv(), "--db", db, "enqueue", "--file", path])
                start = time.perf_counter()
                ws.run(argv)
                elapsed = time.perf_counter() - start
                stored = store_counts(db)["pending"]
                if stored != count:
                    raise RuntimeError(f"{kind}: {stored} of {count} jobs stored")
                (bare if kind == "bare" else ours).append(count / elapsed)
                os.unlink(db)
    rate, reference = median(ours), median(bare)
    ratio = rate / reference
    return [
        Row("B4", f"`enqueue --file` of {count} JSONL jobs vs bare sqlite3 executemany "
            f"(whole commands, median of {rounds})", round(rate), "jobs/s",
            ">= 0.5 x bare executemany", ratio >= 0.5, f"bare executemany: {reference:.0f}/s",
            round(ratio, 2)),
        Row("B4", f"`enqueue --file` of {count} JSONL jobs, absolute", round(rate), "jobs/s",
            "informational (50000 jobs/s on a quiet machine)", None, "", None),
    ]


def _seal_fixture(conn: Any) -> None:
    """A fixture written with plain SQL bypasses enqueue, which keeps the per-state
    counts: count them, commit, and leave the store as a worker would find it."""
    conn.execute("UPDATE state_counts SET n = "
                 "(SELECT COUNT(*) FROM jobs WHERE jobs.state = state_counts.state)")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")


def _fill(db: str, total: int) -> None:
    """A store with `total` jobs: 90% completed, 10% pending, written in bulk."""
    from queuectl.backends import open_backend

    backend = open_backend(db, durable=False)
    try:
        conn = backend._db  # the benchmark builds the fixture with plain SQL
        now = time.time()
        conn.execute("BEGIN")
        conn.execute(
            """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
            INSERT INTO jobs (id, command, state, priority, run_at, attempts, created_at,
                              updated_at, started_at, finished_at, exit_code, history)
            SELECT printf('fill-%08d', i), 'true',
                   CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'completed' END,
                   1 + i % 10, ? - 86400 + i * 0.001,
                   CASE WHEN i % 10 = 0 THEN 0 ELSE 1 END, ? - 86400, ? - 86400,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE ? - 86000 END,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE ? - 86000 END,
                   CASE WHEN i % 10 = 0 THEN NULL ELSE 0 END, '[]'
            FROM n""", (total, now, now, now, now, now))
        _seal_fixture(conn)
    finally:
        backend.close()


def _claim_finish_rates(dbs: list[str], rounds: int = 15, batch: int = 100,
                        aging: Optional[list[float]] = None) -> list[float]:
    """Claims + guarded finishes per second through the backend, like a worker slot, on
    each store: rounds alternate between the stores (so both see the same moments of a
    shared machine) after one untimed round each; the median round of each store.
    `aging`: per store, claim with priority aging of that step (0: strict priority; the
    index of a step is made by `config set`)."""
    from queuectl.backends import open_backend
    from queuectl.states import JobState

    backends = [open_backend(db, durable=False) for db in dbs]
    for backend, step in zip(backends, aging or [0.0] * len(dbs)):
        backend.use_priority_aging(step)
    rates: list[list[float]] = [[] for _ in dbs]
    try:
        for round_ in range(rounds + 1):
            for backend, store_rates in zip(backends, rates):
                claimed = []
                start = time.perf_counter()
                for _ in range(batch):
                    job = backend.claim("bench", "bench:0/1", None, time.time())
                    if job is None:
                        break
                    backend.finish(job, JobState.COMPLETED, None, now=time.time(),
                                   exit_code=0, error=None, output=None,
                                   history_entry={"attempt": 1})
                    claimed.append(job.id)
                elapsed = time.perf_counter() - start
                if round_:  # the first round warms the caches
                    store_rates.append(len(claimed) / elapsed)
                backend.execute_raw(  # put them back for the next round (not timed)
                    "UPDATE jobs SET state = 'pending', attempts = 0, finished_at = NULL "
                    "WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(claimed),))
    finally:
        for backend in backends:
            backend.close()
    return [median(store_rates) for store_rates in rates]


def b5_depth(ctx: Context) -> list[Row]:
    big_n = ctx.scale.b5_jobs
    with Workspace("b5") as ws:
        small, big = ws.path("small.db"), ws.path("big.db")
        ws.run([*queuectl_argv(), "--db", small, "migrate"])
        ws.run([*queuectl_argv(), "--db", big, "migrate"])
        _fill(small, 1000)
        started = time.perf_counter()
        _fill(big, big_n)
        fill_s = time.perf_counter() - started
        aged = [ws.path("small-aged.db"), ws.path("big-aged.db")]
        for source, copy in zip((small, big), aged):
            shutil.copyfile(source, copy)
            ws.run([*queuectl_argv(), "--db", copy, "config", "set", "priority-aging", "60"])
        small_rate, big_rate, aged_small, aged_big = _claim_finish_rates(
            [small, big, *aged], aging=[0, 0, 60, 60])
        startup = median(timed([*queuectl_argv(), "--version"], ws.env, 5))
        status_s = median(timed([*queuectl_argv(), "--db", big, "status"], ws.env, 5))
        list_s = median(timed([*queuectl_argv(), "--db", big, "list", "--state", "pending",
                               "--limit", "50"], ws.env, 5))
    ratio = big_rate / small_rate
    label = f"{big_n // 1000}k" if big_n < 1_000_000 else f"{big_n / 1e6:g}M"
    return [
        Row("B5", f"claim+finish at {label} jobs vs 1k (median of 15 alternating rounds)",
            round(big_rate), "jobs/s",
            ">= 0.8 x the 1k rate", ratio >= 0.8, f"1k store: {small_rate:.0f}/s",
            round(ratio, 2), extra={"fill_seconds": round(fill_s, 1)}),
        Row("B5", f"claim+finish at {label} jobs, priority-aging 60 (vs 1k, aging too)",
            round(aged_big), "jobs/s", ">= 0.8 x the 1k rate", aged_big / aged_small >= 0.8,
            f"1k store: {aged_small:.0f}/s", round(aged_big / aged_small, 2),
            extra={"vs_strict_at_depth": round(aged_big / big_rate, 2)}),
        Row("B5", f"`status` at {label} jobs, beyond CLI start-up",
            round((status_s - startup) * 1000, 1), "ms", "<= 100 ms",
            status_s - startup <= 0.1, f"start-up (--version): {startup * 1000:.0f} ms"),
        Row("B5", f"`list --state pending --limit 50` at {label}",
            round((list_s - startup) * 1000, 1), "ms", "<= 100 ms", list_s - startup <= 0.1,
            ""),
    ]


def _fill_runs(db: str, total: int, per_hour: int) -> None:
    """A store with `total` jobs in 4 queues: 10% pending, the others finished at an even
    pace of `per_hour` back from now (2% dead, every 10th of those finished a retry
    after a timeout), each with its worker's history entries: what `metrics` reads."""
    from queuectl.backends import open_backend

    backend = open_backend(db, durable=False)
    try:
        conn = backend._db  # the benchmark builds the fixture with plain SQL
        now = time.time()
        step = 3600.0 / per_hour
        conn.execute("BEGIN")
        conn.execute(
            """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :total),
            r AS (SELECT i, :now - i * :step AS f,
                         CASE WHEN i % 10 = 0 THEN 'pending' WHEN i % 50 = 1 THEN 'dead'
                              ELSE 'completed' END AS state FROM n)
            INSERT INTO jobs (id, command, state, queue, priority, run_at, attempts,
                              created_at, updated_at, started_at, finished_at, exit_code,
                              history)
            SELECT printf('fill-%08d', i), 'true', state, 'q' || (i % 4), 5,
                   CASE WHEN state = 'pending' THEN :now - 60 + i * 0.0001 ELSE f - 1.5 END,
                   CASE WHEN state = 'pending' THEN 0 WHEN i % 100 = 3 THEN 2 ELSE 1 END,
                   f - 2, f,
                   CASE WHEN state = 'pending' THEN NULL ELSE f - 1 END,
                   CASE WHEN state = 'pending' THEN NULL ELSE f END,
                   CASE WHEN state = 'pending' THEN NULL WHEN state = 'dead' THEN 1 ELSE 0 END,
                   CASE WHEN state = 'pending' THEN '[]'
                        WHEN i % 100 = 3 THEN json_array(
                            json_object('attempt', 1, 'started_at', f - 20, 'finished_at',
                                        f - 10, 'worker', 'bench:1/1', 'exit_code', NULL,
                                        'signal', 9, 'timed_out', json('true'),
                                        'error', 'timeout', 'result', 'failed'),
                            json_object('attempt', 2, 'started_at', f - 1, 'finished_at', f,
                                        'worker', 'bench:1/1', 'exit_code', 0,
                                        'signal', NULL, 'timed_out', json('false'),
                                        'error', NULL, 'result', state))
                        ELSE json_array(
                            json_object('attempt', 1, 'started_at', f - 1, 'finished_at', f,
                                        'worker', 'bench:1/1', 'exit_code',
                                        CASE WHEN state = 'dead' THEN 1 ELSE 0 END,
                                        'signal', NULL, 'timed_out', json('false'),
                                        'error', CASE WHEN state = 'dead'
                                                      THEN 'exit code 1' END,
                                        'result', state)) END
            FROM r""", {"total": total, "now": now, "step": step})
        _seal_fixture(conn)
    finally:
        backend.close()


def b10_metrics(ctx: Context) -> list[Row]:
    """`metrics` at B5's depth, on a store whose finished jobs ended at a steady pace
    (the window holds `b10_per_hour` runs), beyond the CLI's start-up."""
    total, per_hour = ctx.scale.b5_jobs, ctx.scale.b10_per_hour
    with Workspace("b10") as ws:
        db = ws.path("big.db")
        ws.run([*queuectl_argv(), "--db", db, "migrate"])
        _fill_runs(db, total, per_hour)
        startup = median(timed([*queuectl_argv(), "--version"], ws.env, 5))
        runs = {fmt: median(timed([*queuectl_argv(), "--db", db, "metrics", "--format", fmt],
                                  ws.env, 5))
                for fmt in ("text", "prometheus")}
    label = f"{total // 1000}k" if total < 1_000_000 else f"{total / 1e6:g}M"
    return [
        Row("B10", f"`metrics` at {label} jobs ({per_hour} runs in the hour), beyond "
            "CLI start-up", round((runs["text"] - startup) * 1000, 1), "ms", "<= 100 ms",
            runs["text"] - startup <= 0.1, f"start-up (--version): {startup * 1000:.0f} ms"),
        Row("B10", f"`metrics --format prometheus` at {label}, beyond start-up",
            round((runs["prometheus"] - startup) * 1000, 1), "ms", "<= 100 ms",
            runs["prometheus"] - startup <= 0.1, ""),
    ]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 30) -> tuple[float, bytes]:
    """(seconds, body) of a GET: the server's own time (its Server-Timing header)
    when it gives one, else the time seen here."""
    import urllib.request

    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        body = reply.read()
        timing = reply.headers.get("server-timing", "")
    spent = time.perf_counter() - started
    if "dur=" in timing:
        spent = float(timing.split("dur=", 1)[1].split(",")[0].split(";")[0]) / 1000
    return spent, body


def dashboard_rows(ws: Workspace, db: str, label: str, store: str = "sqlite",
                   samples: int = 20, idle_s: float = 10.0) -> list[Row]:
    """The real `queuectl dashboard` on `db`: server times (Server-Timing) of the
    overview API served from the shared snapshot
    and read from the store, of one jobs page, the live overview's update latency
    after an enqueue, and the server's CPU with one live overview open."""
    import threading
    import urllib.request

    from queuectl.models import NewJob
    from queuectl.queue import Queue

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = ws.spawn([*queuectl_argv(), "--db", db, "dashboard", "--port", str(port)],
                      log=f"dashboard-{store}.log")
    try:
        wait_until(lambda: _try_get(base + "/healthz"), 60, "the dashboard to serve")
        _get(base + "/api/overview")  # warm: templates, first reads
        served = [_get(base + "/api/overview")[0] for _ in range(samples)]
        read = []  # what the feed's read of the store costs (in process, same store)
        from queuectl.web.live import overview_data

        with Queue(db) as queue:
            for _ in range(max(5, samples // 2)):
                started = time.perf_counter()
                overview_data(queue)
                read.append(time.perf_counter() - started)
        page = [_get(base + "/api/jobs?limit=50")[0] for _ in range(samples)]
        # the live overview: time from an enqueue's commit to the event that shows it
        events: list[tuple[float, int]] = []
        stop = threading.Event()

        def listen() -> None:
            with urllib.request.urlopen(base + "/events/overview", timeout=60) as stream:
                for line in stream:
                    if line.startswith(b"data: "):
                        counts = json.loads(line[6:])["status"]["counts"]
                        events.append((time.perf_counter(), counts["pending"]))
                    if stop.is_set():
                        return

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        wait_until(lambda: events, 30, "the first overview event")
        latencies = []
        with Queue(db) as queue:
            for _ in range(5):
                before = events[-1][1]
                queue.enqueue([NewJob(command="true")])
                enqueued = time.perf_counter()
                wait_until(lambda before=before: events[-1][1] > before, 10,  # type: ignore[misc]
                           "the event of an enqueue")
                latencies.append(events[-1][0] - enqueued)
            cpu0, t0 = proc_cpu_seconds(server.pid), time.monotonic()
            time.sleep(idle_s)
            cpu_pct = (proc_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0) * 100
        stop.set()
    finally:
        server.terminate()
        server.wait(timeout=30)
    p95 = {name: percentile(values, 95) * 1000
           for name, values in (("served", served), ("read", read), ("page", page))}
    return [
        Row("B10", f"dashboard /api/overview at {label}, p95 (shared snapshot)",
            round(p95["served"], 1), "ms", "<= 50 ms", p95["served"] <= 50,
            f"median {median(served) * 1000:.1f} ms", None, store),
        Row("B10", f"dashboard overview's store read at {label}, p95 (once per poll)",
            round(p95["read"], 1), "ms", "<= 100 ms", p95["read"] <= 100,
            f"median {median(read) * 1000:.1f} ms", None, store),
        Row("B10", f"dashboard /api/jobs page of 50 at {label}, p95", round(p95["page"], 1),
            "ms", "<= 50 ms", p95["page"] <= 50, f"median {median(page) * 1000:.1f} ms",
            None, store),
        Row("B10", f"live overview: enqueue to event at {label}, max of 5",
            round(max(latencies) * 1000), "ms", "<= 1000 ms", max(latencies) <= 1.0,
            f"median {median(latencies) * 1000:.0f} ms", None, store),
        Row("B10", f"idle dashboard CPU, one live overview, {label}, {idle_s:g} s",
            round(cpu_pct, 2), "%", "<= 1 %", cpu_pct <= 1, "", None, store),
    ]


def _try_get(url: str) -> bool:
    try:
        _get(url, timeout=2)
        return True
    except OSError:
        return False


def b10_dashboard(ctx: Context) -> list[Row]:
    """The dashboard on B10's store (1M jobs, an hour of runs)."""
    total, per_hour = ctx.scale.b5_jobs, ctx.scale.b10_per_hour
    label = f"{total // 1000}k" if total < 1_000_000 else f"{total / 1e6:g}M"
    with Workspace("b10d") as ws:
        db = ws.path("big.db")
        ws.run([*queuectl_argv(), "--db", db, "migrate"])
        _fill_runs(db, total, per_hour)
        return dashboard_rows(ws, db, label, samples=ctx.scale.b10_samples,
                              idle_s=ctx.scale.b6_seconds)


def b6_footprint(ctx: Context) -> list[Row]:
    seconds = ctx.scale.b6_seconds
    with Workspace("b6") as ws:
        db = ws.path("queue.db")
        worker = ws.worker(db, "--count", "4")
        wait_registered(db, [worker.pid])
        time.sleep(0.5)  # let start-up settle before measuring the idle cost
        cpu0, t0 = proc_cpu_seconds(worker.pid), time.monotonic()
        rss = 0.0
        while time.monotonic() - t0 < seconds:
            rss = max(rss, proc_rss_mb(worker.pid))
            time.sleep(0.5)
        cpu_pct = (proc_cpu_seconds(worker.pid) - cpu0) / (time.monotonic() - t0) * 100
        size_db = ws.path("size.db")
        count = 10_000
        _enqueue_true(size_db, count, command="echo hello")
        from queuectl.backends import open_backend

        backend = open_backend(size_db)
        backend.execute_raw("PRAGMA wal_checkpoint(TRUNCATE)")
        backend.close()
        per_job = os.path.getsize(size_db) / count
    return [
        Row("B6", f"idle 4-slot supervisor CPU over {seconds:g} s", round(cpu_pct, 2), "%",
            "<= 1 %", cpu_pct <= 1),
        Row("B6", "idle supervisor RSS", round(rss, 1), "MB", "<= 60 MB", rss <= 60),
        Row("B6", f"store size per pending job ({count} jobs)", round(per_job), "bytes",
            "<= 500 bytes", per_job <= 500),
    ]


def b7_contention(ctx: Context, db: Optional[str] = None, store: str = "sqlite") -> list[Row]:
    """4 processes x 2 slots on one store: no job may run twice (each job appends its id
    to a file).  On SQLite the rate is compared with B1's set-up (1 worker x 4 slots)
    running the same commands just before each round, so both see the same moment of a
    shared machine and the same work per job (B1's `true` is lighter)."""
    count = ctx.scale.b7_jobs
    rounds = ctx.scale.b1_rounds if store == "sqlite" else 1
    rates, references, ids = [], [], []
    with Workspace("b7") as ws:
        for round_ in range(rounds):
            if store == "sqlite":
                reference_db = ws.path(f"reference{round_}.db")
                _enqueue_true(reference_db, ctx.scale.b1_jobs,
                              command=f'echo "$QUEUECTL_JOB_ID" >> {ws.path("reference.txt")}')
                references.append(_drain_rate(ws, reference_db, ctx.scale.b1_jobs, 1, 4))
            target_db = db or ws.path(f"queue{round_}.db")
            ran = ws.path(f"ran{round_}.txt")
            _enqueue_true(target_db, count, command=f'echo "$QUEUECTL_JOB_ID" >> {ran}')
            rates.append(_drain_rate(ws, target_db, count, 4, 2))
            with open(ran) as handle:
                ids.append(handle.read().split())
    twice = sum(len(run) - len(set(run)) for run in ids)
    missing = sum(count - len(set(run)) for run in ids)
    name = "B7" if store == "sqlite" else "B8"
    runs = f"{count} jobs x {rounds} rounds" if rounds > 1 else f"{count} jobs"
    rows = [Row(name, f"contention: jobs run twice ({runs}, 4 procs x 2 slots)", twice,
                "jobs", "0", twice == 0 and missing == 0, f"missing: {missing}", None, store)]
    if store == "sqlite":
        rate, reference = median(rates), median(references)
        ratio = rate / reference
        rows.append(Row(name, f"contention throughput, median of {rounds}", round(rate),
                        "jobs/s", ">= 0.9 x B1", ratio >= 0.9,
                        f"1 x 4 alongside: {reference:.0f}/s", round(ratio, 2), store))
    return rows


GROUP = 100  # B11: a head, 98 middle jobs after it, a join after all of them


def _graph_jobs(prefix: str, groups: int) -> Any:
    """`groups` x 100 jobs: group g's head runs after group g-1's join; its 98 middle
    jobs after the head (fan-out); its join after all 98 (fan-in)."""
    from queuectl.models import NewJob

    for g in range(groups):
        head, join = f"{prefix}{g}h", f"{prefix}{g}j"
        yield NewJob(command="true", id=head,
                     depends_on=[f"{prefix}{g - 1}j"] if g else [])
        middle = [f"{prefix}{g}m{i}" for i in range(GROUP - 2)]
        for job_id in middle:
            yield NewJob(command="true", id=job_id, depends_on=[head])
        yield NewJob(command="true", id=join, depends_on=middle)


def _graph_violations(db: str, prefix: str) -> tuple[int, int]:
    """(jobs not run exactly once, edges whose dependant started before its dependency
    finished) of one round's graph."""
    from queuectl.queue import Queue

    with Queue(db) as queue:
        jobs = {job.id: job for job in queue.iter_jobs() if job.id.startswith(prefix)}
        not_once = sum(1 for job in jobs.values()
                       if job.attempts != 1 or job.state.value != "completed")
        early = 0
        for job in jobs.values():
            for dep in job.depends_on:
                if (job.started_at or 0) < (jobs[dep].finished_at or float("inf")):
                    early += 1
    return not_once, early


def b11_graph(ctx: Context, db: Optional[str] = None, store: str = "sqlite") -> list[Row]:
    """A dependency graph of groups x 100 jobs against as many independent jobs, one
    worker x 4 slots, alternating rounds; every job must run once, after its
    dependencies."""
    from queuectl.queue import Queue

    groups, rounds = ctx.scale.b11_groups, ctx.scale.b11_rounds
    count = groups * GROUP
    graph_rates, plain_rates, bad = [], [], [0, 0]
    with Workspace("b11") as ws:
        target_db = db or ws.path("queue.db")
        for round_ in range(rounds):
            _enqueue_true(target_db, count)
            plain_rates.append(_drain_rate(ws, target_db, count, 1, 4,
                                           completed=count * (2 * round_ + 1)))
            prefix = f"r{round_}g"
            with Queue(target_db) as queue:
                queue.enqueue_stream(_graph_jobs(prefix, groups))
            graph_rates.append(_drain_rate(ws, target_db, count, 1, 4,
                                           completed=count * (2 * round_ + 2)))
            not_once, early = _graph_violations(target_db, prefix)
            bad[0] += not_once
            bad[1] += early
    graph, plain = median(graph_rates), median(plain_rates)
    ratio = graph / plain
    name = "B11" if store == "sqlite" else "B11b"
    label = "PostgreSQL " if store == "postgres" else ""
    return [
        Row(name, f"{label}dependency graph, {groups} x {GROUP} jobs (fan-out, fan-in), "
            f"1 x 4 slots, median of {rounds}", round(graph), "jobs/s",
            ">= 0.8 x independent jobs", ratio >= 0.8,
            f"independent: {plain:.0f}/s", round(ratio, 2), store),
        Row(name, f"{label}graph jobs not run exactly once / run before a dependency",
            bad[0] + bad[1], "jobs", "0", bad == [0, 0],
            f"not once: {bad[0]}, early: {bad[1]}", None, store),
    ]


CASES: dict[str, Callable[[Context], list[Row]]] = {
    "B1": b1_throughput, "B2": b2_pickup, "B3": b3_cli_enqueue, "B4": b4_batch_enqueue,
    "B5": b5_depth, "B6": b6_footprint, "B7": b7_contention, "B10": b10_metrics,
    "B10D": b10_dashboard,
    "B11": b11_graph,
}
