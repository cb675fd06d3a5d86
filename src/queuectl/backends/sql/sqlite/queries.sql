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
                  timeout, cwd, env, depends_on, unique_key, created_at, updated_at, history)
VALUES (:id, :command, :state, :queue, :priority, :run_at, :max_retries, :backoff_base,
        :timeout, :cwd, :env, :depends_on, :unique_key, :now, :now, '[]')

-- name: insert_job_batch
-- A slice of a large enqueue as one JSON array of rows (values in INSERT_FIELDS order,
-- base.py), unpacked by SQLite: binding the rows one by one from Python cost more
-- than the insert itself.  json_each keeps the array's order, so seq stays FIFO.
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, created_at, updated_at, history)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
       value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11,
       value ->> 12, :now, :now, '[]'
FROM json_each(:rows)

-- name: insert_command
-- The quick enqueue lane (cli/quick.py): a plain command with every default, the
-- queue and priority coming from the column defaults ('default', 5).
INSERT INTO jobs (id, command, state, run_at, created_at, updated_at, history)
VALUES (:id, :command, 'pending', :now, :now, :now, '[]')

-- name: count_inserted
-- Enqueue adds its batch to the per-state counts in the same transaction.
UPDATE state_counts SET n = n + :n WHERE state = :state

-- name: recount_states
-- Recompute every per-state count from the table (after bulk loads or repairs).
UPDATE state_counts SET n = (SELECT COUNT(*) FROM jobs WHERE jobs.state = state_counts.state)

-- name: live_job_by_unique_key
SELECT id FROM jobs
WHERE unique_key = :unique_key
  AND state IN ('scheduled', 'pending', 'processing', 'failed')

-- name: claim
-- One statement: pick the best due job and take it.  SQLite runs the whole UPDATE
-- under its single write lock, so two workers can never take the same row.
UPDATE jobs
SET state = 'processing', attempts = attempts + 1, started_at = :now, updated_at = :now,
    finished_at = NULL, output = NULL, worker = :worker, worker_id = :worker_id
WHERE seq = (
    SELECT seq FROM jobs INDEXED BY jobs_ready
    WHERE state IN ('pending', 'scheduled', 'failed') AND run_at <= :now
    ORDER BY priority DESC, run_at, seq
    LIMIT 1)
RETURNING {job_columns}

-- name: claim_in_queues
UPDATE jobs
SET state = 'processing', attempts = attempts + 1, started_at = :now, updated_at = :now,
    finished_at = NULL, output = NULL, worker = :worker, worker_id = :worker_id
WHERE seq = (
    SELECT seq FROM jobs INDEXED BY jobs_ready
    WHERE state IN ('pending', 'scheduled', 'failed') AND run_at <= :now
      AND queue IN (SELECT value FROM json_each(:queues))
    ORDER BY priority DESC, run_at, seq
    LIMIT 1)
RETURNING {job_columns}

-- name: finish
-- Guarded: only the worker that holds the job may finish it.
UPDATE jobs
SET state = :state, run_at = COALESCE(:run_at, run_at), updated_at = :now,
    finished_at = :now, exit_code = :exit_code, error = :error, output = :output,
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id AND state = 'processing' AND worker_id = :worker_id

-- name: requeue
UPDATE jobs
SET state = :state, updated_at = :now, run_at = :now,
    attempts = MAX(0, attempts - :uncount), rescues = rescues + :rescued,
    finished_at = CASE WHEN :state = 'dead' THEN :now ELSE NULL END,
    error = COALESCE(:error, error),
    history = json_insert(COALESCE(history, '[]'), '$[#]', json(:entry))
WHERE id = :id AND state = 'processing' AND worker_id = :worker_id

-- name: transition
-- Back to pending (retry, dlq retry) starts afresh: the last run's result stays in
-- the history only.
UPDATE jobs
SET state = :state, updated_at = :now,
    run_at = CASE WHEN :state = 'pending' THEN :now ELSE run_at END,
    attempts = CASE WHEN :reset THEN 0 ELSE attempts END,
    finished_at = CASE WHEN :state = 'cancelled' THEN :now
                       WHEN :state = 'pending' THEN NULL ELSE finished_at END,
    error = CASE WHEN :state = 'cancelled' THEN COALESCE(:note, error)
                 WHEN :state = 'pending' THEN NULL ELSE error END,
    exit_code = CASE WHEN :state = 'pending' THEN NULL ELSE exit_code END,
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

-- name: counts
SELECT state, n FROM state_counts

-- name: oldest_due
SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due
WHERE state IN ('pending', 'scheduled', 'failed') AND run_at <= :now

-- name: finished_since
SELECT COUNT(*) FROM jobs WHERE finished_at >= :since

-- name: next_run_at
SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due
WHERE state IN ('pending', 'scheduled', 'failed') AND run_at > :after

-- name: next_run_at_in_queues
SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due
WHERE state IN ('pending', 'scheduled', 'failed') AND run_at > :after
  AND queue IN (SELECT value FROM json_each(:queues))

-- name: promote_due
UPDATE jobs SET state = 'pending', updated_at = :now
WHERE state IN ('scheduled', 'failed') AND run_at <= :now

-- name: processing_jobs
SELECT {job_columns} FROM jobs
WHERE state = 'processing' AND worker_id IN (SELECT value FROM json_each(:worker_ids))

-- name: orphaned_jobs
SELECT {job_columns} FROM jobs
WHERE state = 'processing'
  AND (worker_id IS NULL OR worker_id NOT IN (SELECT id FROM workers))

-- name: purge
DELETE FROM jobs
WHERE state IN (SELECT value FROM json_each(:states))
  AND (:before IS NULL OR COALESCE(finished_at, updated_at) < :before)

-- name: clear
DELETE FROM jobs

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
                    AND live.state IN ('scheduled', 'pending', 'processing', 'failed'))
        AND seq = (SELECT MAX(seq) FROM jobs AS same
                   WHERE same.unique_key = jobs.unique_key
                     AND same.state IN (SELECT value FROM json_each(:sources)))))
RETURNING {job_columns}

-- name: insert_job_unique
-- A job with a unique key: nothing is stored when a live job holds the key (the
-- caller then reads that job); the conflict target is the partial unique index.
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, created_at, updated_at, history)
VALUES (:id, :command, :state, :queue, :priority, :run_at, :max_retries, :backoff_base,
        :timeout, :cwd, :env, :depends_on, :unique_key, :now, :now, '[]')
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'processing', 'failed')
    DO NOTHING
RETURNING id
