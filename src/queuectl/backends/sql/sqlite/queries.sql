-- Named queries of the SQLite store.  The PostgreSQL store has blocks of the same
-- names in sql/postgres/queries.sql.  Values are always parameters.

-- name: schema_version_create
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
)

-- name: schema_version_get
SELECT COALESCE(MAX(version), 0) FROM schema_version

-- name: schema_versions
-- The migrations applied: a number lower than the newest may be missing when its
-- migration was written in parallel and arrived later; it is applied then.
SELECT version FROM schema_version

-- name: schema_version_add
INSERT INTO schema_version (version, name, applied_at) VALUES (:version, :name, :now)

-- name: probe_edges
-- The cheap check at every open (sqlite_open.probe): the first and the last entry of
-- the jobs table, its id and state indexes, and the small tables, each found by one
-- descent of its b-tree: SQLite checks every page it reads on the way (0.02 ms at
-- 1,000,000 jobs; PRAGMA quick_check reads every page, ~1 s).
SELECT (SELECT min(seq) FROM jobs), (SELECT max(seq) FROM jobs),
       (SELECT min(id) FROM jobs), (SELECT max(id) FROM jobs),
       (SELECT min(state) FROM jobs), (SELECT max(state) FROM jobs),
       (SELECT count(*) FROM state_counts), (SELECT max(rowid) FROM workers),
       (SELECT max(rowid) FROM config)

-- name: insert_job
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, retry_policy,
                  created_at, updated_at, history)
VALUES (:id, :command, :state, :queue, :priority, :run_at, :max_retries, :backoff_base,
        :timeout, :cwd, :env, :depends_on, :unique_key, :retry_policy, :now, :now,
        '[]')

-- name: insert_job_batch
-- A slice of a large enqueue as one JSON array of rows, unpacked by SQLite: binding
-- the rows one by one from Python cost more than the insert itself.  The column list
-- and the array positions each column is read from are both made from
-- base.INSERT_FIELDS (sqlite.py).  json_each keeps the array's order, so seq stays
-- FIFO.
INSERT INTO jobs ({batch_columns}, created_at, updated_at, history)
SELECT {batch_values}, :now, :now, '[]'
FROM json_each(:rows)

-- name: insert_command
-- The quick enqueue lane (cli/quick.py): a plain command with every default, the
-- queue and priority coming from the column defaults ('default', 5).
INSERT INTO jobs (id, command, state, run_at, created_at, updated_at, history)
VALUES (:id, :command, 'pending', :now, :now, :now, '[]')

-- name: count_inserted
-- Enqueue adds its batch to the per-state counts in the same transaction.
UPDATE state_counts SET n = n + :n WHERE state = :state

-- name: store_tables
-- What a file holds before it is taken as a store (a foreign database is refused).
SELECT name FROM sqlite_master WHERE type = 'table'

-- name: cache_size_get
PRAGMA cache_size

-- name: cache_size_batch
-- A big batch touches every page of five indexes: a 64 MiB page cache (the default is
-- 2 MiB) keeps them in memory until the commit (1.70 -> 1.53 s for 100,000 jobs).
PRAGMA cache_size = -65536

-- name: live_job_by_unique_key
SELECT id FROM jobs
WHERE unique_key = :unique_key
  AND state IN ({LIVE})

-- name: _paused
-- Paused queues (`queue pause`): no claim takes their jobs; a worker's sleep and a
-- burst's end do not wait for them.  A small table, read once per statement.
SELECT name FROM queues WHERE paused = 1

-- name: _closed
-- What a claim steps over: paused queues, and limited queues (`queue limit`) whose
-- running jobs reach the limit.  The claim runs in the store's write transaction
-- (BEGIN IMMEDIATE, finish_and_claim), so this count includes every claim before it,
-- those of the same step included: no interleaving of workers exceeds a limit.
SELECT name FROM queues
WHERE paused = 1 OR (concurrency_limit IS NOT NULL
                     AND concurrency_limit <= (SELECT COUNT(*) FROM jobs AS running
                                               INDEXED BY jobs_worker
                                               WHERE running.state = {PROCESSING}
                                                 AND running.queue = queues.name))

-- name: claim
-- One statement: pick the best due job and take it.  SQLite runs the whole UPDATE
-- under its single write lock, so two workers can never take the same row.  The
-- subquery walks jobs_ready in claim order and stops at the first due row (with
-- priority aging, jobs_ready_aged_<step>: see Backend.use_priority_aging).
UPDATE jobs
SET state = {PROCESSING}, attempts = attempts + 1, started_at = :now, updated_at = :now,
    finished_at = NULL, output = NULL, worker = :worker, worker_id = :worker_id
WHERE seq = (
    SELECT seq FROM jobs {claim_index}
    WHERE state IN ({CLAIMABLE}) AND run_at <= :now
      AND queue NOT IN ({_closed})
      {queue_filter}
    ORDER BY {claim_order}
    LIMIT 1)
RETURNING {job_columns}

-- name: finish
-- Guarded: only the worker that holds the job may finish it.
UPDATE jobs
SET state = :state, run_at = COALESCE(:run_at, run_at), updated_at = :now,
    finished_at = :now, exit_code = :exit_code, error = :error, output = :output,
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id AND state = {PROCESSING} AND worker_id = :worker_id

-- name: requeue
UPDATE jobs
SET state = :state, updated_at = :now, run_at = :now,
    attempts = MAX(0, attempts - :uncount), rescues = rescues + :rescued,
    finished_at = CASE WHEN :state = {DEAD} THEN :now ELSE NULL END,
    error = COALESCE(:error, error),
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id AND state = {PROCESSING} AND worker_id = :worker_id

-- name: transition
-- Back to pending (retry, dlq retry) starts afresh: the last run's result stays in
-- the history only.
UPDATE jobs
SET state = :state, updated_at = :now,
    run_at = CASE WHEN :state = {PENDING} THEN :now ELSE run_at END,
    attempts = CASE WHEN :reset THEN 0 ELSE attempts END,
    finished_at = CASE WHEN :state = {CANCELLED} THEN :now
                       WHEN :state = {PENDING} THEN NULL ELSE finished_at END,
    error = CASE WHEN :state = {CANCELLED} THEN COALESCE(:note, error)
                 WHEN :state = {PENDING} THEN NULL ELSE error END,
    exit_code = CASE WHEN :state = {PENDING} THEN NULL ELSE exit_code END,
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id AND state IN (SELECT value FROM json_each(:sources))
RETURNING {job_columns}

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = :id

-- name: find_prefix
SELECT id FROM jobs WHERE id >= :low AND id < :high ORDER BY id LIMIT :limit

-- name: list_jobs
SELECT {job_columns} FROM jobs ORDER BY seq DESC LIMIT :limit OFFSET :offset

-- name: list_jobs_in_states
SELECT {job_columns} FROM jobs
WHERE state IN (SELECT value FROM json_each(:states))
ORDER BY seq DESC LIMIT :limit OFFSET :offset

-- name: list_jobs_in_queue
SELECT {job_columns} FROM jobs
WHERE queue = :queue
ORDER BY seq DESC LIMIT :limit OFFSET :offset

-- name: list_jobs_in_states_and_queue
SELECT {job_columns} FROM jobs
WHERE state IN (SELECT value FROM json_each(:states)) AND queue = :queue
ORDER BY seq DESC LIMIT :limit OFFSET :offset

-- name: list_page
-- one page of a listing, newest first, after the last seq seen (keyset pagination:
-- each page resumes where the last ended, at any depth)
SELECT seq, {job_columns} FROM jobs
WHERE seq < :before AND state IN (SELECT value FROM json_each(:states))
  AND (:queue IS NULL OR queue = :queue)
ORDER BY seq DESC LIMIT :limit

-- name: queue_counts
SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state

-- name: _page_window
seq < :before AND seq >= :floor AND instr(command, :text) > 0

-- name: page_jobs
SELECT seq, {job_columns} FROM jobs WHERE {_page_window}
ORDER BY seq DESC LIMIT :limit

-- name: page_jobs_in_state
SELECT seq, {job_columns} FROM jobs WHERE state = :state AND {_page_window}
ORDER BY seq DESC LIMIT :limit

-- name: page_jobs_in_queue
-- INDEXED BY: after ANALYZE of a store with one big queue the planner walked the
-- primary key for a small one and read every job (206 ms at 1M instead of 1 ms).
SELECT seq, {job_columns} FROM jobs INDEXED BY jobs_queue
WHERE queue = :queue AND {_page_window}
ORDER BY seq DESC LIMIT :limit

-- name: page_jobs_in_state_and_queue
SELECT seq, {job_columns} FROM jobs
WHERE state = :state AND queue = :queue AND {_page_window}
ORDER BY seq DESC LIMIT :limit

-- name: counts
SELECT state, n FROM state_counts

-- name: oldest_due
-- (a walk of jobs_due that stops at the first row of a queue not paused)
SELECT (SELECT run_at FROM jobs INDEXED BY jobs_due
        WHERE state IN ({CLAIMABLE}) AND run_at <= :now AND queue NOT IN ({_paused})
        ORDER BY run_at LIMIT 1)

-- name: due_waiting
-- scheduled/failed jobs whose time has come but that no supervisor has relabelled
-- pending yet (none runs): counted up to :cap rows through the state index
SELECT COUNT(*) FROM (SELECT 1 FROM jobs INDEXED BY jobs_state
                      WHERE state IN ({DELAYED}) AND run_at <= :now LIMIT :cap)

-- name: finished_since
SELECT COUNT(*) FROM jobs WHERE finished_at >= :since

-- name: next_run_at
SELECT (SELECT run_at FROM jobs INDEXED BY jobs_due
        WHERE state IN ({CLAIMABLE}) AND run_at > :after AND queue NOT IN ({_paused})
        ORDER BY run_at LIMIT 1)

-- name: next_run_at_in_queues
SELECT (SELECT run_at FROM jobs INDEXED BY jobs_due
        WHERE state IN ({CLAIMABLE}) AND run_at > :after
          AND queue IN (SELECT value FROM json_each(:queues)) AND queue NOT IN ({_paused})
        ORDER BY run_at LIMIT 1)

-- name: promote_due
UPDATE jobs SET state = {PENDING}, updated_at = :now
WHERE state IN ({DELAYED}) AND run_at <= :now

-- name: processing_jobs
SELECT {job_columns} FROM jobs
WHERE state = {PROCESSING} AND worker_id IN (SELECT value FROM json_each(:worker_ids))

-- name: metrics_rows
-- The jobs whose last run ended (or that were cancelled) at or after :since, through
-- jobs_finished, without reading their history: their row holds that run (`metrics`).
-- A failed job keeps its finish time when it is relabelled pending for its retry.
SELECT id, queue, state, attempts, finished_at - started_at,
       CASE WHEN state IN ({COMPLETED}, {DEAD}) THEN started_at - run_at END,
       finished_at, error = 'timeout'
FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= :since AND (:queue IS NULL OR queue = :queue)

-- name: change_marker
-- Moves when another connection commits to the store: a live page skips its read
-- while it stays.
PRAGMA data_version

-- name: metrics_window
-- The window's runs counted along jobs_finished alone (a covering index, migration
-- 0006): per queue, state, retry and timeout mark, with the duration's count, sum and
-- maximum (a negative duration, clocks of two hosts, counts as 0).
SELECT queue, state, attempts > 1, COALESCE(error = 'timeout', 0), COUNT(*),
       COUNT(started_at), TOTAL(MAX(finished_at - started_at, 0)),
       MAX(MAX(finished_at - started_at, 0))
FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= :start AND (:queue IS NULL OR queue = :queue)
GROUP BY 1, 2, 3, 4

-- name: metrics_buckets
-- metrics_window per bucket of :width seconds from :start as well: with 60
-- buckets of 15, 20, 30 or 60 s the spans (the last 1, 5, 15 minutes) and the
-- series are whole buckets, and one walk of the window gives all three.
SELECT queue, state, attempts > 1, COALESCE(error = 'timeout', 0),
       CAST((finished_at - :start) / :width AS INTEGER), COUNT(*), COUNT(started_at), TOTAL(MAX(finished_at - started_at, 0)),
       MAX(MAX(finished_at - started_at, 0))
FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= :start AND (:queue IS NULL OR queue = :queue)
GROUP BY 1, 2, 3, 4, 5

-- name: metrics_spans
-- Runs ended in the last 15 minutes per queue, marked within the last 1 and 5.
SELECT queue, finished_at >= :t1, finished_at >= :t5, COUNT(*)
FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= :t15 AND state <> {CANCELLED} AND (:queue IS NULL OR queue = :queue)
GROUP BY 1, 2, 3

-- name: metrics_sample
-- The window's latest :cap runs, newest first, for the percentiles: queue, duration,
-- and the queue wait of a completed or dead job.
SELECT queue, MAX(finished_at - started_at, 0),
       CASE WHEN state IN ({COMPLETED}, {DEAD}) THEN MAX(started_at - run_at, 0) END
FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= :start AND state <> {CANCELLED} AND (:queue IS NULL OR queue = :queue)
ORDER BY finished_at DESC LIMIT :cap

-- name: metrics_series
-- Runs (not cancellations) of the window per bucket of :width seconds from :start, and
-- how many of them completed (the dashboard's chart).
SELECT CAST((finished_at - :start) / :width AS INTEGER), COUNT(*),
       TOTAL(state = {COMPLETED})
FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= :start AND state <> {CANCELLED} AND (:queue IS NULL OR queue = :queue)
GROUP BY 1

-- name: metrics_earlier_runs
-- The runs before a job's last one that ended at or after :since: its worker's history
-- entries with a result, read only for the jobs run more than once (or cancelled
-- after a run), finished since then or running now.
SELECT j.id, j.queue, e.value ->> '$.result', COALESCE(e.value ->> '$.timed_out', 0),
       e.value ->> '$.attempt', e.value ->> '$.started_at', e.value ->> '$.finished_at'
FROM (SELECT id, queue, state, attempts, history FROM jobs INDEXED BY jobs_retried
      WHERE finished_at >= :since AND (:queue IS NULL OR queue = :queue)
        AND (attempts > 1 OR (state = {CANCELLED} AND attempts > 0))
      UNION ALL
      SELECT id, queue, state, attempts, history FROM jobs INDEXED BY jobs_worker
      WHERE state = {PROCESSING} AND attempts > 1
        AND (:queue IS NULL OR queue = :queue)) AS j,
     json_each(j.history) AS e
WHERE e.value ->> '$.result' IS NOT NULL AND e.value ->> '$.finished_at' >= :since
  AND (e.value ->> '$.attempt' < j.attempts OR j.state = {CANCELLED})

-- name: metrics_live
-- Live jobs per queue and state, with the oldest due one (`metrics`): the waiting jobs
-- oldest first along jobs_due, up to :cap of them, and the processing ones.
SELECT queue, state, COUNT(*), MIN(CASE WHEN run_at <= :now THEN run_at END)
FROM (SELECT queue, state, run_at FROM jobs INDEXED BY jobs_due
      WHERE state IN ({CLAIMABLE}) AND (:queue IS NULL OR queue = :queue)
      ORDER BY run_at LIMIT :cap)
GROUP BY queue, state
UNION ALL
SELECT queue, state, COUNT(*), NULL
FROM jobs INDEXED BY jobs_worker
WHERE state = {PROCESSING} AND (:queue IS NULL OR queue = :queue)
GROUP BY queue, state

-- name: running_by_worker
-- Busy slots as the store knows them now (status, workers, metrics), through the
-- partial index of processing jobs: as many rows as jobs run, at any depth.
SELECT worker_id, COUNT(*) FROM jobs INDEXED BY jobs_worker
WHERE state = {PROCESSING}
GROUP BY worker_id

-- name: orphaned_jobs
SELECT {job_columns} FROM jobs
WHERE state = {PROCESSING}
  AND (worker_id IS NULL OR worker_id NOT IN (SELECT id FROM workers))

-- name: _purged
jobs.state IN (SELECT value FROM json_each(:states))
  AND (:before IS NULL OR COALESCE(jobs.finished_at, jobs.updated_at) < :before)

-- name: purge_output
-- A purge deletes the jobs' output chunks and dependency edges first, in its
-- transaction (no foreign keys: DECISIONS 18); looked up from the (small) chunk and
-- edge tables, not from the jobs going.
DELETE FROM job_output
WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_output.job_id AND {_purged})

-- name: purge_edges
DELETE FROM job_dependencies
WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.id = job_dependencies.job_id AND {_purged})

-- name: purge
DELETE FROM jobs WHERE {_purged}

-- name: delete_job
-- `rm ID`: one job, never while it runs (its worker would have nowhere to record it)
DELETE FROM jobs WHERE id = :id AND state NOT IN ({PROCESSING})

-- name: delete_job_output
DELETE FROM job_output WHERE job_id = :id

-- name: delete_job_edges
DELETE FROM job_dependencies WHERE job_id = :id

-- name: clear_output
DELETE FROM job_output

-- name: clear_edges
DELETE FROM job_dependencies

-- name: clear
DELETE FROM jobs

-- name: append_output
-- A chunk of a running job's output; `seq` is its byte offset in the run's output.
-- The same chunk twice (a publish retried) is stored once.
INSERT INTO job_output (job_id, attempt, seq, data, created_at)
VALUES (:job_id, :attempt, :seq, :data, :now)
ON CONFLICT (job_id, attempt, seq) DO NOTHING

-- name: read_output
-- The chunks of one run that hold bytes at or after :from_offset, in order.
SELECT seq, data FROM job_output
WHERE job_id = :job_id AND attempt = :attempt AND seq + length(data) > :from_offset
ORDER BY seq LIMIT :limit

-- name: drop_output
-- A job's chunks: of one run or of all (:attempt NULL), all or only those that end
-- at or before :before.
DELETE FROM job_output
WHERE job_id = :job_id AND (:attempt IS NULL OR attempt = :attempt)
  AND (:before IS NULL OR seq + length(data) <= :before)

-- name: register_worker
INSERT INTO workers (id, host, pid, slots, queues, started_at, heartbeat_at, busy,
                     jobs_done, stop_requested)
VALUES (:id, :host, :pid, :slots, :queues, :started_at, :heartbeat_at, 0, 0, NULL)

-- name: heartbeat
UPDATE workers SET heartbeat_at = :now, busy = :busy, jobs_done = :jobs_done
WHERE id = :id
RETURNING COALESCE(stop_requested, '')

-- name: unregister_worker
DELETE FROM workers WHERE id = :id

-- name: list_workers
SELECT {worker_columns} FROM workers ORDER BY started_at

-- name: request_stop_all
UPDATE workers SET stop_requested = :mode
WHERE stop_requested IS NULL OR stop_requested <> 'now'

-- name: request_stop_one
UPDATE workers SET stop_requested = :mode WHERE id = :id

-- name: config_items
SELECT key, value FROM config

-- name: config_set
INSERT INTO config (key, value, updated_at) VALUES (:key, :value, :now)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at

-- name: config_unset
DELETE FROM config WHERE key = :key

-- name: transition_all
-- Every job in :sources at once (`dlq retry --all`) in one statement, so that a job
-- buried again meanwhile is not retried twice.  A job whose unique key a live job
-- holds stays where it is (of several with one key, the newest goes).
UPDATE jobs
SET state = :state, updated_at = :now, run_at = :now,
    attempts = CASE WHEN :reset THEN 0 ELSE attempts END,
    finished_at = NULL, error = NULL, exit_code = NULL,
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE state IN (SELECT value FROM json_each(:sources))
  AND (unique_key IS NULL OR (
        NOT EXISTS (SELECT 1 FROM jobs AS live WHERE live.unique_key = jobs.unique_key
                    AND live.state IN ({LIVE}))
        AND seq = (SELECT MAX(seq) FROM jobs AS same
                   WHERE same.unique_key = jobs.unique_key
                     AND same.state IN (SELECT value FROM json_each(:sources)))))
RETURNING {job_columns}

-- name: insert_job_unique
-- A job with a unique key: nothing is stored when a live job holds the key (the
-- caller then reads that job); the conflict target is the partial unique index.
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, retry_policy,
                  created_at, updated_at, history)
VALUES (:id, :command, :state, :queue, :priority, :run_at, :max_retries, :backoff_base,
        :timeout, :cwd, :env, :depends_on, :unique_key, :retry_policy, :now, :now,
        '[]')
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ({LIVE})
    DO NOTHING
RETURNING id

-- dependencies ------------------------------------------------------------------------
-- name: dependency_state
-- A new dependant's dependency: its state, and whether it has had dependants before.
SELECT state, has_dependants FROM jobs WHERE id = :id

-- name: mark_dependency
-- The first dependant of this job: edges left pointing at its id belong to an earlier
-- job of the same id (deleted since) and go (delete_stale_edges), then the flag is set.
UPDATE jobs SET has_dependants = 1 WHERE id = :id

-- name: delete_stale_edges
DELETE FROM job_dependencies WHERE depends_on = :id

-- name: insert_dependency
INSERT INTO job_dependencies (job_id, depends_on, condition, dep_state)
VALUES (:job_id, :depends_on, :condition, :dep_state)

-- name: set_verdict
-- A new dependant whose dependencies had already ended (queuectl.dependencies.verdict).
UPDATE jobs
SET state = :state, error = :error, updated_at = :now,
    finished_at = CASE WHEN :state = {CANCELLED} THEN :now END,
    run_at = MAX(run_at, :now)
WHERE id = :id

-- name: dependencies_of
-- A job's dependencies with their current state (NULL: deleted since).
SELECT d.depends_on, d.condition, j.state
FROM job_dependencies AS d LEFT JOIN jobs AS j ON j.id = d.depends_on
WHERE d.job_id = :id ORDER BY d.depends_on

-- name: dependants_of
SELECT d.job_id, d.condition, j.state
FROM job_dependencies AS d JOIN jobs AS j ON j.id = d.job_id
WHERE d.depends_on = :id ORDER BY d.job_id LIMIT :limit

-- name: live_dependants_tree
-- Every live job that depends on this one, directly or through others, newest first
-- (`cancel --with-dependants`): an edge always points at an older job, so the newest
-- come before what they depend on.  UNION keeps each id once, at any depth.
WITH RECURSIVE tree(id) AS (
    SELECT job_id FROM job_dependencies WHERE depends_on = :id
    UNION
    SELECT d.job_id FROM job_dependencies AS d JOIN tree ON d.depends_on = tree.id
)
SELECT jobs.id FROM tree JOIN jobs ON jobs.id = tree.id
WHERE jobs.state IN ({LIVE})
ORDER BY jobs.seq DESC

-- queues ------------------------------------------------------------------------------
-- name: queue_rows
SELECT name, paused, concurrency_limit FROM queues ORDER BY name

-- name: set_queue_paused
INSERT INTO queues (name, paused, created_at, updated_at) VALUES (:name, :paused, :now, :now)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: set_queue_limit
INSERT INTO queues (name, concurrency_limit, created_at, updated_at)
VALUES (:name, :limit, :now, :now)
ON CONFLICT (name) DO UPDATE SET concurrency_limit = excluded.concurrency_limit,
                                 updated_at = excluded.updated_at

-- name: limited_among
-- Whether any of these queues is at its limit (finishing one of its jobs then frees
-- a slot that idle workers may be waiting for; a limit that does not bind wakes no one).
SELECT 1 FROM queues
WHERE concurrency_limit IS NOT NULL AND name IN (SELECT value FROM json_each(:queues))
  AND concurrency_limit <= (SELECT COUNT(*) FROM jobs AS running INDEXED BY jobs_worker
                            WHERE running.state = {PROCESSING}
                              AND running.queue = queues.name)
LIMIT 1

-- name: edit_job
-- `retry ID --command ...`: change a job before it runs again (NULL: keep), guarded on
-- the states it may be retried from; the history says what changed.
UPDATE jobs
SET command = COALESCE(:command, command), timeout = COALESCE(:timeout, timeout),
    priority = COALESCE(:priority, priority), queue = COALESCE(:queue, queue),
    max_retries = COALESCE(:max_retries, max_retries), env = COALESCE(:env, env),
    updated_at = :now,
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id AND state IN (SELECT value FROM json_each(:sources))

-- name: _cron_columns
name, schedule, tz, job, paused, catch_up, no_overlap, next_fire_at, last_fire_at,
last_job_id, created_at, updated_at

-- name: cron_add
-- A new schedule; a name that exists inserts nothing (the caller reports it).
INSERT INTO cron_schedules ({_cron_columns})
VALUES (:name, :schedule, :tz, :job, :paused, :catch_up, :no_overlap, :next_fire_at,
        NULL, NULL, :now, :now)
ON CONFLICT (name) DO NOTHING

-- name: _cron_select
-- A schedule with the state of its last run (NULL when it never ran or the job is gone).
SELECT c.name, c.schedule, c.tz, c.job, c.paused, c.catch_up, c.no_overlap,
       c.next_fire_at, c.last_fire_at, c.last_job_id, c.created_at, c.updated_at, j.state
FROM cron_schedules AS c LEFT JOIN jobs AS j ON j.id = c.last_job_id

-- name: cron_get
{_cron_select}
WHERE c.name = :name

-- name: cron_list
{_cron_select}
ORDER BY c.name

-- name: cron_due
-- The unpaused schedules whose next instant has come, oldest first, along cron_schedules_due.
{_cron_select}
WHERE c.paused = 0 AND c.next_fire_at <= :now
ORDER BY c.next_fire_at LIMIT :limit

-- name: cron_next_fire_at
SELECT MIN(next_fire_at) FROM cron_schedules WHERE paused = 0

-- name: cron_remove
DELETE FROM cron_schedules WHERE name = :name

-- name: cron_set_paused
-- pause, or resume from :next_fire_at (the instants of the pause are not caught up)
UPDATE cron_schedules
SET paused = :paused, next_fire_at = COALESCE(:next_fire_at, next_fire_at), updated_at = :now
WHERE name = :name

-- name: cron_advance
-- The compare-and-set that makes an instant fire once: only the caller that read
-- next_fire_at = :expected moves it on; every other one matches no row.  The run is
-- enqueued in the same transaction (SqlVerbs.cron_fire).
UPDATE cron_schedules SET next_fire_at = :next_fire_at, updated_at = :now
WHERE name = :name AND next_fire_at = :expected AND paused = 0
RETURNING COALESCE(last_job_id, '')

-- name: cron_lock
-- `cron run`: the schedule's row (its last run), taken before a run is enqueued.
UPDATE cron_schedules SET updated_at = :now WHERE name = :name
RETURNING COALESCE(last_job_id, '')

-- name: cron_record_run
UPDATE cron_schedules SET last_fire_at = :fired_at, last_job_id = :job_id, updated_at = :now
WHERE name = :name

-- name: cron_live_job
SELECT id FROM jobs WHERE id = :id AND state IN ({LIVE})

-- name: cron_insert_job
-- A run of a schedule: nothing is stored when its id exists (a schedule added again
-- under an old name) or a live job holds its unique key (`--unique`).
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, retry_policy,
                  created_at, updated_at, history)
VALUES (:id, :command, :state, :queue, :priority, :run_at, :max_retries, :backoff_base,
        :timeout, :cwd, :env, :depends_on, :unique_key, :retry_policy, :now, :now,
        '[]')
ON CONFLICT DO NOTHING
RETURNING id

-- name: _hook_columns
id, job_id, event, hook, queue, attempts, exit_code, error, command, created_at, claimed_by,
claimed_at, finished_at, result, detail

-- name: hook_pending
-- Is there an event nobody has claimed?  (A read along hook_events_unclaimed: an idle
-- supervisor asks every second without taking the write lock.)
SELECT id FROM hook_events WHERE claimed_at IS NULL LIMIT 1

-- name: hook_claim
-- Take up to :limit unclaimed events, oldest first: one statement of the single writer,
-- so each event goes to one caller.
UPDATE hook_events SET claimed_by = :worker_id, claimed_at = :now
WHERE id IN (SELECT id FROM hook_events WHERE claimed_at IS NULL ORDER BY id LIMIT :limit)
RETURNING {_hook_columns}

-- name: hook_finish
UPDATE hook_events SET finished_at = :now, result = :result, detail = :detail
WHERE id = :id AND finished_at IS NULL

-- name: hook_note_job
-- The hook's outcome in its job's history (the job's state and times stay as they are).
UPDATE jobs SET history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id

-- name: hook_list
SELECT {_hook_columns} FROM hook_events ORDER BY id DESC LIMIT :limit

-- name: hook_list_job
SELECT {_hook_columns} FROM hook_events WHERE job_id = :job_id ORDER BY id DESC LIMIT :limit

-- name: hook_purge
DELETE FROM hook_events WHERE finished_at < :before

-- name: queue_hooks
SELECT name, on_dead, on_complete FROM queues
WHERE on_dead IS NOT NULL OR on_complete IS NOT NULL ORDER BY name

-- name: set_queue_hooks
-- `queue hook`: set one or both hooks of a queue (:keep_*: leave that one as it is).
INSERT INTO queues (name, on_dead, on_complete, created_at, updated_at)
VALUES (:name, :on_dead, :on_complete, :now, :now)
ON CONFLICT (name) DO UPDATE SET
    on_dead = CASE WHEN :keep_dead THEN queues.on_dead ELSE excluded.on_dead END,
    on_complete = CASE WHEN :keep_complete THEN queues.on_complete
                       ELSE excluded.on_complete END,
    updated_at = excluded.updated_at

-- retry rules ---------------------------------------------------------------------------

-- name: queue_policies
-- The queues that have their own retry rules (supervisors cache them, re-read at
-- each heartbeat).
SELECT name, retry_policy FROM queues WHERE retry_policy IS NOT NULL ORDER BY name

-- name: set_queue_policy
-- `queue policy Q ...` (NULL: --clear).
INSERT INTO queues (name, retry_policy, created_at, updated_at)
VALUES (:name, :policy, :now, :now)
ON CONFLICT (name) DO UPDATE SET retry_policy = excluded.retry_policy,
                                 updated_at = excluded.updated_at
