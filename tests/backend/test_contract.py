"""The backend contract: every store passes the same tests (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from queuectl.backends import open_backend
from queuectl.errors import DuplicateJob
from queuectl.models import Job, NewJob, WorkerInfo
from queuectl.states import JobState, Transition

NOW = 1_700_000_000.0


@pytest.fixture
def backend(store_url: str) -> Iterator[Any]:
    store = open_backend(store_url, durable=True)
    try:
        yield store
    finally:
        store.close()


def add(backend: Any, *jobs: NewJob, now: float = NOW) -> list[Job]:
    return backend.enqueue(list(jobs), now)


def new(job_id: str, **fields: Any) -> NewJob:
    return NewJob(command=fields.pop("command", "true"), id=job_id, **fields)


def claim(backend: Any, now: float = NOW + 1, worker_id: str = "w1",
          queues: list[str] | None = None) -> Job | None:
    return backend.claim(worker_id, f"host:1/{worker_id}", queues, now)


def finish(backend: Any, job: Job, state: JobState = JobState.COMPLETED,
           run_at: float | None = None, now: float = NOW + 2) -> bool:
    return backend.finish(job, state, run_at, now=now, exit_code=0, error=None,
                          output="out", history_entry={"attempt": job.attempts,
                                                       "result": state.value})


# -- enqueue ---------------------------------------------------------------------------
def test_enqueue_and_get(backend: Any) -> None:
    stored = add(backend, new("a", priority=7, queue="mail", max_retries=2, timeout=5,
                              env={"K": "v"}, cwd="/tmp"))
    assert stored[0].id == "a" and stored[0].state is JobState.PENDING
    job = backend.get("a")
    assert (job.command, job.priority, job.queue, job.max_retries, job.timeout) == \
        ("true", 7, "mail", 2, 5)
    assert job.env == {"K": "v"} and job.cwd == "/tmp" and job.attempts == 0
    assert job.created_at == NOW and job.run_at == NOW and job.history == []
    assert backend.get("missing") is None


def test_future_run_at_is_scheduled(backend: Any) -> None:
    add(backend, new("later", run_at=NOW + 60))
    assert backend.get("later").state is JobState.SCHEDULED


def test_batch_is_all_or_nothing(backend: Any) -> None:
    add(backend, new("taken"))
    with pytest.raises(DuplicateJob, match="'taken' already exists"):
        add(backend, new("x1"), new("taken"), new("x2"))
    with pytest.raises(DuplicateJob, match="twice in the batch"):
        add(backend, new("y"), new("y"))
    assert backend.get("x1") is None and backend.get("y") is None
    assert backend.counts()[JobState.PENDING] == 1


def test_unique_key_returns_the_live_job(backend: Any) -> None:
    first = add(backend, new("u1", unique_key="nightly"))[0]
    again = add(backend, new("u2", unique_key="nightly"))[0]
    assert again.id == first.id == "u1" and backend.get("u2") is None
    assert backend.counts()[JobState.PENDING] == 1


def test_enqueue_stream_stores_every_slice_in_order(backend: Any) -> None:
    from queuectl.backends.base import BATCH_ROWS

    total = 2 * BATCH_ROWS + 7
    jobs = (new(f"s{i:05d}", priority=1 + i % 10, env={"N": str(i)} if i == 3 else None,
                run_at=NOW + 60 if i == 5 else None) for i in range(total))
    ids = backend.enqueue_stream(jobs, NOW)
    assert ids == [f"s{i:05d}" for i in range(total)]
    counts = backend.counts()
    assert counts[JobState.PENDING] == total - 1 and counts[JobState.SCHEDULED] == 1
    job = backend.get("s00003")
    assert (job.command, job.priority, job.env, job.run_at, job.created_at, job.history) \
        == ("true", 4, {"N": "3"}, NOW, NOW, [])
    assert backend.get("s00005").state is JobState.SCHEDULED
    # FIFO within a priority follows the stream's order across slices
    order = []
    while (job := claim(backend)) is not None and job.priority == 10:
        order.append(job.id)
    assert order == sorted(order) and len(order) == total // 10


def test_enqueue_stream_is_all_or_nothing(backend: Any) -> None:
    from queuectl.backends.base import BATCH_ROWS
    from queuectl.errors import InvalidInput

    add(backend, new("taken"))

    def failing() -> Iterator[NewJob]:
        for i in range(BATCH_ROWS * 2 + 1):
            yield new(f"f{i}")
        raise InvalidInput("jobs.jsonl line 4002: bad")

    with pytest.raises(InvalidInput, match="line 4002"):
        backend.enqueue_stream(failing(), NOW)
    late_duplicate = [new(f"d{i}") for i in range(BATCH_ROWS + 3)] + [new("taken")]
    with pytest.raises(DuplicateJob, match="'taken' already exists"):
        backend.enqueue_stream(iter(late_duplicate), NOW)
    with pytest.raises(DuplicateJob, match="twice in the batch"):
        backend.enqueue_stream(iter([new("y"), new("z"), new("y")]), NOW)
    assert backend.counts()[JobState.PENDING] == 1
    assert [job.id for job in backend.list_jobs(None, None, 10, 0)] == ["taken"]
    # the store is still usable afterwards
    assert backend.enqueue_stream(iter([new("after")]), NOW) == ["after"]


def test_enqueue_stream_returns_the_live_job_of_a_unique_key(backend: Any) -> None:
    add(backend, new("u1", unique_key="nightly"))
    ids = backend.enqueue_stream(iter([new("a"), new("u2", unique_key="nightly"),
                                       new("b")]), NOW)
    assert ids == ["a", "u1", "b"] and backend.get("u2") is None
    assert backend.counts()[JobState.PENDING] == 3


# -- claim -----------------------------------------------------------------------------
def test_claim_order_priority_then_run_at_then_fifo(backend: Any) -> None:
    add(backend, new("low", priority=1), new("fifo1"), new("fifo2"),
        new("early", run_at=NOW - 10), new("high", priority=9))
    order = []
    while (job := claim(backend)) is not None:
        order.append(job.id)
    assert order == ["high", "early", "fifo1", "fifo2", "low"]


def test_claim_marks_processing_and_is_exclusive(backend: Any) -> None:
    add(backend, new("only"))
    job = claim(backend, worker_id="w1")
    assert job is not None and job.state is JobState.PROCESSING
    assert job.attempts == 1 and job.worker_id == "w1" and job.started_at == NOW + 1
    assert claim(backend, worker_id="w2") is None


def test_claim_skips_future_jobs_and_other_queues(backend: Any) -> None:
    add(backend, new("future", run_at=NOW + 100), new("mail", queue="mail"))
    assert claim(backend, queues=["default"]) is None
    assert claim(backend, queues=["mail", "sms"]).id == "mail"  # type: ignore[union-attr]
    assert claim(backend) is None
    assert claim(backend, now=NOW + 101).id == "future"  # type: ignore[union-attr]


# -- finish, requeue, transitions --------------------------------------------------------
def test_finish_is_guarded(backend: Any) -> None:
    add(backend, new("a"))
    job = claim(backend)
    assert finish(backend, job)  # type: ignore[arg-type]
    stored = backend.get("a")
    assert stored.state is JobState.COMPLETED and stored.output == "out"
    assert stored.finished_at == NOW + 2 and len(stored.history) == 1
    assert not finish(backend, job)  # type: ignore[arg-type]  # not processing any more


def test_finish_by_a_worker_that_lost_the_job_is_ignored(backend: Any) -> None:
    add(backend, new("a"))
    job = claim(backend, worker_id="w1")
    assert backend.requeue(job, now=NOW + 2, count_attempt=True, rescued=True,
                           history_entry={"event": "worker lost"})
    again = claim(backend, worker_id="w2", now=NOW + 3)
    assert again.attempts == 2  # type: ignore[union-attr]
    assert not finish(backend, job)  # type: ignore[arg-type]  # w1's result is dropped
    assert finish(backend, again)  # type: ignore[arg-type]
    assert backend.get("a").rescues == 1


def test_failed_job_waits_for_its_retry(backend: Any) -> None:
    add(backend, new("f"))
    job = claim(backend)
    assert finish(backend, job, JobState.FAILED, run_at=NOW + 50)  # type: ignore[arg-type]
    assert backend.get("f").state is JobState.FAILED
    assert claim(backend, now=NOW + 10) is None
    assert backend.next_run_at(None, NOW + 10) == NOW + 50
    assert claim(backend, now=NOW + 51).id == "f"  # type: ignore[union-attr]


def test_requeue_without_counting_the_attempt(backend: Any) -> None:
    add(backend, new("a"))
    job = claim(backend)
    assert backend.requeue(job, now=NOW + 2, count_attempt=False, rescued=False,
                           history_entry={"event": "requeued"})
    stored = backend.get("a")
    assert stored.state is JobState.PENDING and stored.attempts == 0
    assert stored.history[-1]["event"] == "requeued"


def test_transitions_follow_the_table(backend: Any) -> None:
    add(backend, new("a"), new("b"))
    cancelled = backend.transition("a", Transition.CANCEL, NOW + 1)
    assert cancelled.state is JobState.CANCELLED
    assert backend.transition("a", Transition.CANCEL, NOW + 2) is None  # already
    assert backend.transition("a", Transition.DLQ_RETRY, NOW + 2) is None  # not dead
    assert backend.transition("a", Transition.RETRY, NOW + 2).state is JobState.PENDING
    job = claim(backend, now=NOW + 3)
    finish(backend, job, JobState.DEAD)  # type: ignore[arg-type]
    revived = backend.transition(job.id, Transition.DLQ_RETRY, NOW + 4,  # type: ignore
                                 reset_attempts=True)
    assert revived.state is JobState.PENDING and revived.attempts == 0
    assert len(revived.history) >= 1  # the history is kept
    assert backend.transition("nope", Transition.CANCEL, NOW) is None


def test_finish_and_claim_records_all_then_claims_one_per_label(backend: Any) -> None:
    add(backend, new("a"), new("b"), new("c"), new("d"))
    first, second = claim(backend), claim(backend)
    backend.transition(second.id, Transition.CANCEL, NOW + 2)  # taken away meanwhile

    def fields(code: int) -> dict[str, Any]:
        return dict(now=NOW + 3, exit_code=code, error=None, output="out",
                    history_entry={"attempt": 1})

    done, claimed = backend.finish_and_claim(
        [(first, JobState.COMPLETED, None, fields(0)),
         (second, JobState.FAILED, NOW + 9, fields(1))],
        worker_id="w1", workers=["host:1/1", "host:1/2", "host:1/3"], queues=None,
        now=NOW + 3)
    assert done == [True, False]  # the cancelled job's result is dropped, not written
    assert [job.id for job in claimed] == ["c", "d"]  # the queue ran dry after two
    assert [job.worker for job in claimed] == ["host:1/1", "host:1/2"]
    assert all(job.state is JobState.PROCESSING for job in claimed)
    stored = backend.get(first.id)
    assert stored.state is JobState.COMPLETED and stored.output == "out"
    assert backend.get(second.id).state is JobState.CANCELLED
    counts = backend.counts()
    assert counts[JobState.PROCESSING] == 2 and counts[JobState.COMPLETED] == 1


def test_finish_and_claim_claims_from_the_given_queues_best_first(backend: Any) -> None:
    add(backend, new("low", queue="q2", priority=1), new("other", queue="q1", priority=9),
        new("high", queue="q2", priority=8), new("held", queue="q2"))
    held = claim(backend, queues=["q2"])  # "high": the best of q2
    done, claimed = backend.finish_and_claim(
        [(held, JobState.FAILED, NOW + 60,
          dict(now=NOW + 3, exit_code=3, error="exit code 3: a\x00b", output="a\x00b",
               history_entry={"attempt": 1, "result": "failed",
                              "error": "exit code 3: a\x00b"}))],
        worker_id="w2", workers=["host:2/1", "host:2/2", "host:2/3"], queues=["q2"],
        now=NOW + 3)
    assert done == [True]
    # q2 only, best first, one per label; the job just failed is not due again
    assert [job.id for job in claimed] == ["held", "low"]
    assert [job.worker for job in claimed] == ["host:2/1", "host:2/2"]
    assert all(job.worker_id == "w2" and job.attempts == 1 for job in claimed)
    failed = backend.get("high")
    assert failed.state is JobState.FAILED and failed.run_at == NOW + 60
    # PostgreSQL text and jsonb hold no NUL: it is replaced there, kept on SQLite
    nul = "\ufffd" if backend.url.startswith("postgres") else "\x00"
    assert failed.exit_code == 3 and failed.error == f"exit code 3: a{nul}b"
    assert failed.output == f"a{nul}b"
    assert failed.history[-1] == {"attempt": 1, "result": "failed",
                                  "error": f"exit code 3: a{nul}b"}
    assert backend.get("other").state is JobState.PENDING


def test_finish_and_claim_is_one_transaction(backend: Any) -> None:
    add(backend, new("a"), new("b"))
    job = claim(backend)
    with pytest.raises(TypeError):  # the second result is malformed
        backend.finish_and_claim(
            [(job, JobState.COMPLETED, None, dict(now=NOW + 3, exit_code=0, error=None,
                                                   output=None, history_entry={})),
             (job, JobState.COMPLETED, None, {"no_such_field": 1})],
            worker_id="w1", workers=["host:1/1"], queues=None, now=NOW + 3)
    assert backend.get("a").state is JobState.PROCESSING  # the first finish rolled back
    assert backend.get("b").state is JobState.PENDING


# -- reading -----------------------------------------------------------------------------
def test_counts_list_and_prefix(backend: Any) -> None:
    add(backend, new("08232c92-a"), new("08232c92-b"), new("ffff-1", queue="q2"),
        new("sched", run_at=NOW + 99))
    counts = backend.counts()
    assert counts[JobState.PENDING] == 3 and counts[JobState.SCHEDULED] == 1
    assert set(counts) == set(JobState)
    listed = backend.list_jobs(None, None, 10)
    assert [j.id for j in listed] == ["sched", "ffff-1", "08232c92-b", "08232c92-a"]
    assert [j.id for j in backend.list_jobs([JobState.SCHEDULED], None, 10)] == ["sched"]
    assert [j.id for j in backend.list_jobs(None, "q2", 10)] == ["ffff-1"]
    assert len(backend.list_jobs(None, None, 2)) == 2
    assert [j.id for j in backend.list_jobs(None, None, 2, 2)] == ["08232c92-b",
                                                                   "08232c92-a"]
    assert sorted(backend.find_prefix("0823", 5)) == ["08232c92-a", "08232c92-b"]
    assert backend.find_prefix("ffff", 5) == ["ffff-1"]
    assert backend.find_prefix("zzzz", 5) == []


def test_due_times_and_promotion(backend: Any) -> None:
    add(backend, new("now"), new("soon", run_at=NOW + 5), new("later", run_at=NOW + 50))
    assert backend.oldest_due(NOW + 1) == NOW
    assert backend.next_run_at(None, NOW + 1) == NOW + 5
    assert backend.promote_due(NOW + 6) == 1
    assert backend.get("soon").state is JobState.PENDING
    assert backend.get("later").state is JobState.SCHEDULED


def test_purge_and_clear(backend: Any) -> None:
    add(backend, new("old"), new("new"), new("live"))
    for _, when in (("old", NOW + 10), ("new", NOW + 1000)):
        job = backend.claim("w", "h:1/1", None, when)
        assert job.id in ("old", "new", "live")  # type: ignore[union-attr]
        finish(backend, job, now=when)  # type: ignore[arg-type]
    finished = {j.id for j in backend.list_jobs([JobState.COMPLETED], None, 10)}
    assert len(finished) == 2
    assert backend.purge([JobState.COMPLETED], NOW + 500) == 1
    assert backend.counts()[JobState.COMPLETED] == 1
    assert backend.finished_since(NOW + 500) == 1
    assert backend.clear() == 2
    assert sum(backend.counts().values()) == 0


# -- workers and config ------------------------------------------------------------------
def test_worker_registry_and_stop_requests(backend: Any) -> None:
    info = WorkerInfo(id="w1", host="h", pid=123, slots=4, queues=["a"], started_at=NOW,
                      heartbeat_at=NOW)
    backend.register_worker(info)
    assert backend.heartbeat("w1", busy=2, jobs_done=7, now=NOW + 5) is None
    [listed] = backend.list_workers()
    assert (listed.busy, listed.jobs_done, listed.heartbeat_at, listed.queues) == \
        (2, 7, NOW + 5, ["a"])
    assert backend.request_stop("graceful") == 1
    assert backend.heartbeat("w1", busy=0, jobs_done=7, now=NOW + 6) == "graceful"
    backend.unregister_worker("w1")
    assert backend.list_workers() == []
    assert backend.heartbeat("w1", busy=0, jobs_done=7, now=NOW + 7) == "gone"


def test_jobs_of_a_worker_are_found_for_rescue(backend: Any) -> None:
    add(backend, new("a"), new("b"))
    claim(backend, worker_id="dead")
    claim(backend, worker_id="alive")
    assert [j.id for j in backend.processing_jobs(["dead"])] == ["a"]
    orphans = {j.id for j in backend.orphaned_jobs()}  # no registration for either
    assert orphans == {"a", "b"}


def test_config_store(backend: Any) -> None:
    assert backend.config_items() == {}
    backend.config_set("max-retries", "5", NOW)
    backend.config_set("max-retries", "6", NOW)
    assert backend.config_items() == {"max-retries": "6"}
    assert backend.config_unset("max-retries") is True
    assert backend.config_unset("max-retries") is False


# -- output chunks -----------------------------------------------------------------------
def _raw(backend: Any, sql: str, *params: Any) -> list[Any]:
    """A statement written with `?` placeholders, on either store."""
    if backend.url.startswith("postgres"):
        sql = sql.replace("?", "%s")
    return backend.execute_raw(sql, params)


def test_output_chunks_are_kept_per_run_in_offset_order(backend: Any) -> None:
    add(backend, new("a"))
    binary = b"\x00\xff\xfe not utf-8 \x80"
    backend.append_output("a", 1, 6, b"world\n", NOW)  # out of order on purpose
    backend.append_output("a", 1, 0, b"hello ", NOW)
    backend.append_output("a", 1, 12, binary, NOW)
    backend.append_output("a", 1, 0, b"hello ", NOW + 1)  # a retried publish: once
    backend.append_output("a", 2, 0, b"second run", NOW)
    chunks = backend.read_output("a", 1, 0, 10)
    assert [(c.seq, c.data) for c in chunks] == [(0, b"hello "), (6, b"world\n"),
                                                 (12, binary)]
    assert all(isinstance(data, bytes) for _, data in chunks)
    # from an offset inside a chunk: that chunk and the later ones
    assert [seq for seq, _ in backend.read_output("a", 1, 8, 10)] == [6, 12]
    assert [seq for seq, _ in backend.read_output("a", 1, 12, 10)] == [12]
    assert backend.read_output("a", 1, 12 + len(binary), 10) == []
    assert [seq for seq, _ in backend.read_output("a", 1, 0, 2)] == [0, 6]  # the limit
    assert backend.read_output("a", 2, 0, 10) == [(0, b"second run")]
    assert backend.read_output("a", 3, 0, 10) == []
    assert backend.read_output("nope", 1, 0, 10) == []


def test_dropping_output_of_a_prefix_a_run_or_every_run(backend: Any) -> None:
    add(backend, new("a"), new("b"))
    for seq in (0, 4, 8):
        backend.append_output("a", 1, seq, b"abcd", NOW)
    backend.append_output("a", 2, 0, b"x", NOW)
    backend.append_output("b", 1, 0, b"y", NOW)
    assert backend.drop_output("a", 1, before=6) == 1  # only chunks that end by 6
    assert [seq for seq, _ in backend.read_output("a", 1, 0, 10)] == [4, 8]
    assert backend.drop_output("a", 1) == 2
    assert backend.read_output("a", 1, 0, 10) == [] and backend.read_output("a", 2, 0, 9)
    backend.publish_output([("a", 3, 0, b"z"), ("b", 1, 1, b"w")], [("a", 2, None)],
                           NOW)
    assert backend.read_output("a", 2, 0, 10) == []
    assert backend.read_output("a", 3, 0, 10) == [(0, b"z")]
    assert backend.drop_output("a") == 1  # every run of the job
    assert [seq for seq, _ in backend.read_output("b", 1, 0, 10)] == [0, 1]


def test_purge_and_clear_take_output_and_dependency_edges_with_the_jobs(
        backend: Any) -> None:
    add(backend, new("done"), new("live"))
    job = claim(backend)
    assert job is not None and job.id == "done" and finish(backend, job)
    for job_id in ("done", "live"):
        backend.append_output(job_id, 1, 0, b"out", NOW)
        _raw(backend, "INSERT INTO job_dependencies (job_id, depends_on, condition) "
                      "VALUES (?, 'x', 'completed')", job_id)
    assert backend.purge([JobState.COMPLETED], None) == 1
    assert backend.read_output("done", 1, 0, 10) == []
    assert backend.read_output("live", 1, 0, 10) == [(0, b"out")]
    assert _raw(backend, "SELECT job_id FROM job_dependencies") == [("live",)]
    assert backend.clear() == 1
    assert backend.read_output("live", 1, 0, 10) == []
    assert _raw(backend, "SELECT job_id FROM job_dependencies") == []


# -- keyset pages ----------------------------------------------------------------------
def test_search_page_walks_newest_first_by_keyset(backend: Any) -> None:
    add(backend, *[new(f"j{i}", queue="mail" if i % 2 else "default",
                       command=f"echo {'needle' if i % 3 == 0 else 'hay'} {i}")
                   for i in range(10)])
    job = claim(backend)
    assert job is not None
    first = backend.search_page(None, None, 2 ** 62, 0, "", 4)
    assert [j.id for _, j in first] == ["j9", "j8", "j7", "j6"]
    seqs = [seq for seq, _ in first]
    assert seqs == sorted(seqs, reverse=True)
    second = backend.search_page(None, None, seqs[-1], 0, "", 4)
    assert [j.id for _, j in second] == ["j5", "j4", "j3", "j2"]
    mail = backend.search_page(None, "mail", 2 ** 62, 0, "", 10)
    assert [j.id for _, j in mail] == ["j9", "j7", "j5", "j3", "j1"]
    needles = backend.search_page(None, None, 2 ** 62, 0, "needle", 10)
    assert [j.id for _, j in needles] == ["j9", "j6", "j3", "j0"]
    processing = backend.search_page(JobState.PROCESSING, None, 2 ** 62, 0, "", 10)
    assert [j.id for _, j in processing] == [job.id]
    assert backend.search_page(JobState.PROCESSING, "nowhere", 2 ** 62, 0, "", 10) == []
    # the floor bounds a page from below: only seqs >= floor
    floor = seqs[1]
    window = backend.search_page(None, None, 2 ** 62, floor, "", 10)
    assert [j.id for _, j in window] == ["j9", "j8"]
    # a text with LIKE wildcards matches literally
    assert backend.search_page(None, None, 2 ** 62, 0, "%", 10) == []
