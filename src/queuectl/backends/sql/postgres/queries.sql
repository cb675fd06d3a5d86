-- Named queries of the PostgreSQL store: the same block names as sql/sqlite/queries.sql.
-- Parameters are psycopg's %(name)s; values are never formatted into the text.

-- name: schema_version_create
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)

-- name: schema_version_get
SELECT COALESCE(MAX(version), 0) FROM schema_version

-- name: schema_versions
-- The migrations applied: a number lower than the newest may be missing when its
-- migration was written in parallel and arrived later; it is applied then.
SELECT version FROM schema_version

-- name: schema_version_add
INSERT INTO schema_version (version, name, applied_at) VALUES (%(version)s, %(name)s, %(now)s)

-- name: migrate_lock
SELECT pg_advisory_xact_lock(7243921001)

-- name: notify
SELECT pg_notify('queuectl_jobs', '')

-- name: insert_job
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, retry_policy,
                  created_at, updated_at)
VALUES (%(id)s, %(command)s, %(state)s, %(queue)s, %(priority)s, %(run_at)s,
        %(max_retries)s, %(backoff_base)s, %(timeout)s, %(cwd)s, %(env)s::jsonb,
        %(depends_on)s::jsonb, %(unique_key)s, %(retry_policy)s::jsonb,
        %(now)s, %(now)s)

-- name: listen
LISTEN queuectl_jobs

-- name: session_cheap_commits
-- A supervisor's connection, like SQLite's synchronous=NORMAL for worker transitions:
-- a transition lost to a server crash only means the job runs again.
SET synchronous_commit = off

-- name: session_generic_plans
-- A supervisor repeats a few short statements, all on indexes with any parameters
-- (checked with EXPLAIN): planning `finish_and_claim` afresh each time, as PostgreSQL
-- chose to, cost a third of its server time.
SET plan_cache_mode = force_generic_plan

-- name: first_existing_id
SELECT id FROM jobs WHERE id = ANY(%(ids)s) LIMIT 1

-- name: live_job_by_unique_key
SELECT id FROM jobs
WHERE unique_key = %(unique_key)s AND state IN ({LIVE})

-- name: _paused
-- Paused queues (`queue pause`): no claim takes their jobs; a worker's sleep and a
-- burst's end do not wait for them.  Used as `NOT EXISTS ({_paused} AND queues.name =
-- jobs.queue)`: an anti-join on a small table (`queue <> ALL (ARRAY(...))` made the
-- planner expect one due row and sort them all rather than walk the claim index).
SELECT 1 FROM queues WHERE paused

-- name: _closed
-- What the claim's walk steps over: paused queues, and limited queues whose running
-- jobs (in this statement's snapshot) already reach the limit, so a worker serving
-- several queues claims from the others (no head-of-line blocking).  The snapshot
-- may be a claim behind: `_room` decides, under the queue's lock.  The jobs this
-- statement finishes (:ids) do not count: their slots take the queue's next job.
-- The full queues are one array computed once per statement (an InitPlan): counted
-- per probe of the anti-join, the planner priced the walk of jobs_ready out and
-- sorted every due job instead.
SELECT 1 FROM queues
WHERE (paused OR name = ANY(ARRAY(
    SELECT limited.name FROM queues AS limited
    WHERE limited.concurrency_limit IS NOT NULL
      AND limited.concurrency_limit <= (SELECT COUNT(*) FROM jobs AS running
                                        WHERE running.state = {PROCESSING}
                                          AND running.queue = limited.name
                                          AND running.id <> ALL(%(ids)s::text[])))))

-- name: _room
-- How many more jobs each limited queue among the candidates may start: the queues
-- rows locked and the running jobs counted afresh by queuectl_claim_room (migration
-- 0007), held until the claim commits.  Without any limit in the store the function
-- is not called (a one-time filter): unlimited queues take no lock.
SELECT queue_name, room FROM queuectl_claim_room(ARRAY(SELECT DISTINCT queue FROM due))
WHERE EXISTS (SELECT 1 FROM queues WHERE concurrency_limit IS NOT NULL)

-- name: _due
-- The claim's walk, for every claiming statement: due jobs in claim order along
-- jobs_ready, each locked, skipping those another claimer holds (SKIP LOCKED lets
-- concurrent claimers pass each other's candidate rows).  `{queue_filter}` makes
-- two statements, with and without a filter on queues: `(queues IS NULL OR queue =
-- ANY(queues))` made the generic plan sort every due job instead of walking the
-- claim index.
FROM jobs
WHERE state IN ({CLAIMABLE}) AND run_at <= %(now)s
  AND NOT EXISTS ({_closed} AND queues.name = jobs.queue)
  {queue_filter}
ORDER BY {claim_order}

-- name: _take
-- What a claim sets, but for `worker` (the slot's label).
state = {PROCESSING}, attempts = attempts + 1, started_at = %(now)s,
    updated_at = %(now)s, finished_at = NULL, output = NULL, worker_id = %(worker_id)s

-- name: claim
-- A claim commits durably (synchronous_commit on for this transaction) although the
-- worker's connection has it off: a claim lost to a server crash would make the job
-- pending again while its run goes on, and another slot would run it too.  The best
-- due job is taken unless its queue's limit leaves no room (`_room`).
WITH durable AS (SELECT set_config('synchronous_commit', 'on', true)
), due AS (
    SELECT seq, queue {_due} LIMIT 1 FOR UPDATE SKIP LOCKED
), room AS (
    {_room}
)
UPDATE jobs
SET {_take}, worker = %(worker)s
WHERE seq = (SELECT seq FROM due
             WHERE NOT EXISTS (SELECT 1 FROM room
                               WHERE room.queue_name = due.queue AND room.room < 1))
  AND EXISTS (SELECT 1 FROM durable)
RETURNING {job_columns}

-- name: finish
-- Guarded: only the worker that holds the job may finish it.
UPDATE jobs
SET state = %(state)s, run_at = COALESCE(%(run_at)s, run_at), updated_at = %(now)s,
    finished_at = %(now)s, exit_code = %(exit_code)s, error = %(error)s,
    output = %(output)s, history = history || jsonb_build_array(%(entry)s::jsonb)
WHERE id = %(id)s AND state = {PROCESSING} AND worker_id = %(worker_id)s

-- name: requeue
UPDATE jobs
SET state = %(state)s, updated_at = %(now)s, run_at = %(now)s,
    attempts = GREATEST(0, attempts - %(uncount)s), rescues = rescues + %(rescued)s,
    finished_at = CASE WHEN %(state)s = {DEAD} THEN %(now)s ELSE NULL END,
    error = COALESCE(%(error)s, error),
    history = history || jsonb_build_array(%(entry)s::jsonb)
WHERE id = %(id)s AND state = {PROCESSING} AND worker_id = %(worker_id)s

-- name: transition
-- Back to pending (retry, dlq retry) starts afresh: the last run's result stays in
-- the history only.
UPDATE jobs
SET state = %(state)s, updated_at = %(now)s,
    run_at = CASE WHEN %(state)s = {PENDING} THEN %(now)s ELSE run_at END,
    attempts = CASE WHEN %(reset)s THEN 0 ELSE attempts END,
    finished_at = CASE WHEN %(state)s = {CANCELLED} THEN %(now)s
                       WHEN %(state)s = {PENDING} THEN NULL ELSE finished_at END,
    error = CASE WHEN %(state)s = {CANCELLED} THEN COALESCE(%(note)s, error)
                 WHEN %(state)s = {PENDING} THEN NULL ELSE error END,
    exit_code = CASE WHEN %(state)s = {PENDING} THEN NULL ELSE exit_code END,
    history = history || jsonb_build_array(%(entry)s::jsonb)
WHERE id = %(id)s AND state = ANY(%(sources)s)
RETURNING {job_columns}

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = %(id)s

-- name: find_prefix
SELECT id FROM jobs WHERE id >= %(low)s AND id < %(high)s ORDER BY id LIMIT %(limit)s

-- name: list_jobs
SELECT {job_columns} FROM jobs ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s

-- name: list_jobs_in_states
SELECT {job_columns} FROM jobs
WHERE state = ANY(%(states)s)
ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s

-- name: list_jobs_in_queue
SELECT {job_columns} FROM jobs
WHERE queue = %(queue)s
ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s

-- name: list_jobs_in_states_and_queue
SELECT {job_columns} FROM jobs
WHERE state = ANY(%(states)s) AND queue = %(queue)s
ORDER BY seq DESC LIMIT %(limit)s OFFSET %(offset)s

-- name: list_page
-- one page of a listing, newest first, after the last seq seen (keyset pagination)
SELECT seq, {job_columns} FROM jobs
WHERE seq < %(before)s AND state = ANY(%(states)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
ORDER BY seq DESC LIMIT %(limit)s

-- name: queue_counts
-- (job_counts, kept by the triggers of migration 0009: a row per queue, state and
-- writing connection)
SELECT queue, state, SUM(n)::bigint FROM job_counts GROUP BY queue, state HAVING SUM(n) <> 0

-- name: _page_window
seq < %(before)s AND seq >= %(floor)s AND strpos(command, %(text)s) > 0

-- name: page_jobs
SELECT seq, {job_columns} FROM jobs WHERE {_page_window}
ORDER BY seq DESC LIMIT %(limit)s

-- name: page_jobs_in_state
SELECT seq, {job_columns} FROM jobs WHERE state = %(state)s AND {_page_window}
ORDER BY seq DESC LIMIT %(limit)s

-- name: page_jobs_in_queue
SELECT seq, {job_columns} FROM jobs WHERE queue = %(queue)s AND {_page_window}
ORDER BY seq DESC LIMIT %(limit)s

-- name: page_jobs_in_state_and_queue
SELECT seq, {job_columns} FROM jobs
WHERE state = %(state)s AND queue = %(queue)s AND {_page_window}
ORDER BY seq DESC LIMIT %(limit)s

-- name: counts
-- Jobs per state, summed over job_counts (migration 0009), with how many rows were
-- summed (folded when they pile up).
SELECT state, SUM(n)::bigint, COUNT(*) FROM job_counts GROUP BY state

-- name: fold_counts
-- The counts rows of connections that are gone, added into shard 0 and deleted, in one
-- statement (the sums do not change; a connection writing meanwhile waits on the row
-- and then writes a new one).
WITH gone AS (
    DELETE FROM job_counts
    WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
    RETURNING queue, state, n)
INSERT INTO job_counts AS c (queue, state, shard, n)
SELECT queue, state, 0, SUM(n) FROM gone GROUP BY queue, state ORDER BY queue, state
ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n

-- name: oldest_due
-- (a walk of jobs_due that stops at the first row of a queue not paused)
SELECT (SELECT run_at FROM jobs
        WHERE state IN ({CLAIMABLE}) AND run_at <= %(now)s
          AND NOT EXISTS ({_paused} AND queues.name = jobs.queue)
        ORDER BY run_at LIMIT 1)

-- name: due_waiting
-- scheduled/failed jobs whose time has come but that no supervisor has relabelled
-- pending yet (none runs): counted up to :cap rows
SELECT COUNT(*) FROM (SELECT 1 FROM jobs
                      WHERE state IN ({DELAYED}) AND run_at <= %(now)s LIMIT %(cap)s) AS due

-- name: finished_since
SELECT COUNT(*) FROM jobs WHERE finished_at >= %(since)s

-- name: next_run_at
SELECT (SELECT run_at FROM jobs
        WHERE state IN ({CLAIMABLE}) AND run_at > %(after)s
          AND NOT EXISTS ({_paused} AND queues.name = jobs.queue)
        ORDER BY run_at LIMIT 1)

-- name: next_run_at_in_queues
SELECT (SELECT run_at FROM jobs
        WHERE state IN ({CLAIMABLE}) AND run_at > %(after)s
          AND queue = ANY(%(queues)s) AND NOT EXISTS ({_paused} AND queues.name = jobs.queue)
        ORDER BY run_at LIMIT 1)

-- name: promote_due
UPDATE jobs SET state = {PENDING}, updated_at = %(now)s
WHERE state IN ({DELAYED}) AND run_at <= %(now)s

-- name: processing_jobs
SELECT {job_columns} FROM jobs
WHERE state = {PROCESSING} AND worker_id = ANY(%(worker_ids)s)

-- name: metrics_rows
-- The jobs whose last run ended (or that were cancelled) at or after :since, through
-- jobs_finished, without reading their history: their row holds that run (`metrics`).
-- A failed job keeps its finish time when it is relabelled pending for its retry.
SELECT id, queue, state, attempts, finished_at - started_at,
       CASE WHEN state IN ({COMPLETED}, {DEAD}) THEN started_at - run_at END,
       finished_at, error IS NOT DISTINCT FROM 'timeout'
FROM jobs
WHERE finished_at >= %(since)s AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)

-- name: change_marker
-- Moves when something the overview shows changes in this store: any job's insert,
-- transition or delete rewrites a job_counts row (a new xmin, even when the sums come
-- back to the same figures), a worker registers, leaves, finishes a job or is asked to
-- stop, a queue is paused or resumed.  Not a heartbeat, and not other databases'
-- writes (the server's WAL position, the marker before, moved with every commit of
-- any database on the server: a shared server kept the live page reading).  A live
-- page skips its read while it stays.
SELECT (SELECT string_agg(xmin::text, ',' ORDER BY queue, state, shard) FROM job_counts),
       (SELECT string_agg(concat_ws(':', id, busy, jobs_done, stop_requested), ','
                          ORDER BY id) FROM workers),
       (SELECT string_agg(concat_ws(':', name, paused), ',' ORDER BY name) FROM queues)

-- name: metrics_window
-- The window's runs counted along jobs_finished (its INCLUDE columns, migration 0006):
-- per queue, state, retry and timeout mark, with the duration's count, sum and maximum
-- (a negative duration, clocks of two hosts, counts as 0).
SELECT queue, state, attempts > 1, COALESCE(error = 'timeout', false), COUNT(*),
       COUNT(started_at), COALESCE(SUM(GREATEST(finished_at - started_at, 0)), 0),
       MAX(GREATEST(finished_at - started_at, 0))
FROM jobs
WHERE finished_at >= %(start)s AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY 1, 2, 3, 4

-- name: metrics_buckets
-- metrics_window per bucket of :width seconds from :start as well: with 60
-- buckets of 15, 20, 30 or 60 s the spans (the last 1, 5, 15 minutes) and the
-- series are whole buckets, and one walk of the window gives all three.
SELECT queue, state, attempts > 1, COALESCE(error = 'timeout', false),
       floor((finished_at - %(start)s) / %(width)s)::int, COUNT(*), COUNT(started_at), COALESCE(SUM(GREATEST(finished_at - started_at, 0)), 0),
       MAX(GREATEST(finished_at - started_at, 0))
FROM jobs
WHERE finished_at >= %(start)s AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY 1, 2, 3, 4, 5

-- name: metrics_spans
-- Runs ended in the last 15 minutes per queue, marked within the last 1 and 5.
SELECT queue, finished_at >= %(t1)s, finished_at >= %(t5)s, COUNT(*)
FROM jobs
WHERE finished_at >= %(t15)s AND state <> {CANCELLED}
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY 1, 2, 3

-- name: metrics_sample
-- The window's latest :cap runs, newest first, for the percentiles: queue, duration,
-- and the queue wait of a completed or dead job.
SELECT queue, GREATEST(finished_at - started_at, 0),
       CASE WHEN state IN ({COMPLETED}, {DEAD}) THEN GREATEST(started_at - run_at, 0) END
FROM jobs
WHERE finished_at >= %(start)s AND state <> {CANCELLED}
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
ORDER BY finished_at DESC LIMIT %(cap)s

-- name: metrics_series
-- Runs (not cancellations) of the window per bucket of :width seconds from :start, and
-- how many of them completed (the dashboard's chart).
SELECT floor((finished_at - %(start)s) / %(width)s)::int, COUNT(*),
       COUNT(*) FILTER (WHERE state = {COMPLETED})
FROM jobs
WHERE finished_at >= %(start)s AND state <> {CANCELLED}
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY 1

-- name: metrics_earlier_runs
-- The runs before a job's last one that ended at or after :since: its worker's history
-- entries with a result, read only for the jobs run more than once (or cancelled
-- after a run), finished since then or running now.
SELECT j.id, j.queue, e.value ->> 'result',
       COALESCE((e.value ->> 'timed_out')::boolean, false), (e.value ->> 'attempt')::int,
       (e.value ->> 'started_at')::float8, (e.value ->> 'finished_at')::float8
FROM (SELECT id, queue, state, attempts, history FROM jobs
      WHERE finished_at >= %(since)s
        AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
        AND (attempts > 1 OR (state = {CANCELLED} AND attempts > 0))
      UNION ALL
      SELECT id, queue, state, attempts, history FROM jobs
      WHERE state = {PROCESSING} AND attempts > 1
        AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)) AS j
CROSS JOIN LATERAL jsonb_array_elements(j.history) AS e(value)
WHERE e.value ->> 'result' IS NOT NULL
  AND (e.value ->> 'finished_at')::float8 >= %(since)s
  AND ((e.value ->> 'attempt')::int < j.attempts OR j.state = {CANCELLED})

-- name: metrics_live
-- Live jobs per queue and state, with the oldest due one (`metrics`): the waiting jobs
-- oldest first along jobs_due, up to :cap of them, and the processing ones.
SELECT queue, state, COUNT(*), MIN(CASE WHEN run_at <= %(now)s THEN run_at END)
FROM (SELECT queue, state, run_at FROM jobs
      WHERE state IN ({CLAIMABLE}) AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      ORDER BY run_at LIMIT %(cap)s) AS waiting
GROUP BY queue, state
UNION ALL
SELECT queue, state, COUNT(*), NULL
FROM jobs
WHERE state = {PROCESSING} AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY queue, state

-- name: running_by_worker
-- Busy slots as the store knows them now (status, workers, metrics), through the
-- partial index of processing jobs: as many rows as jobs run, at any depth.
SELECT worker_id, COUNT(*) FROM jobs
WHERE state = {PROCESSING}
GROUP BY worker_id

-- name: orphaned_jobs
SELECT {job_columns} FROM jobs
WHERE state = {PROCESSING}
  AND (worker_id IS NULL OR worker_id NOT IN (SELECT id FROM workers))

-- name: _purged
jobs.state = ANY(%(states)s)
  AND (%(before)s::double precision IS NULL
       OR COALESCE(jobs.finished_at, jobs.updated_at) < %(before)s::double precision)

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
DELETE FROM jobs WHERE id = %(id)s AND state NOT IN ({PROCESSING})

-- name: delete_job_output
DELETE FROM job_output WHERE job_id = %(id)s

-- name: delete_job_edges
DELETE FROM job_dependencies WHERE job_id = %(id)s

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
VALUES (%(job_id)s, %(attempt)s, %(seq)s, %(data)s, %(now)s)
ON CONFLICT (job_id, attempt, seq) DO NOTHING

-- name: read_output
-- The chunks of one run that hold bytes at or after :from_offset, in order.
SELECT seq, data FROM job_output
WHERE job_id = %(job_id)s AND attempt = %(attempt)s
  AND seq + octet_length(data) > %(from_offset)s
ORDER BY seq LIMIT %(limit)s

-- name: drop_output
-- A job's chunks: of one run or of all (attempt NULL), all or only those that end at
-- or before `before`.
DELETE FROM job_output
WHERE job_id = %(job_id)s AND (%(attempt)s::integer IS NULL OR attempt = %(attempt)s)
  AND (%(before)s::bigint IS NULL OR seq + octet_length(data) <= %(before)s)

-- name: register_worker
INSERT INTO workers (id, host, pid, slots, queues, started_at, heartbeat_at, busy,
                     jobs_done, stop_requested)
VALUES (%(id)s, %(host)s, %(pid)s, %(slots)s, %(queues)s::jsonb, %(started_at)s,
        %(heartbeat_at)s, 0, 0, NULL)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at

-- name: heartbeat
UPDATE workers SET heartbeat_at = %(now)s, busy = %(busy)s, jobs_done = %(jobs_done)s
WHERE id = %(id)s
RETURNING COALESCE(stop_requested, '')

-- name: unregister_worker
DELETE FROM workers WHERE id = %(id)s

-- name: list_workers
SELECT {worker_columns} FROM workers ORDER BY started_at

-- name: request_stop_all
UPDATE workers SET stop_requested = %(mode)s
WHERE stop_requested IS NULL OR stop_requested <> 'now'

-- name: request_stop_one
UPDATE workers SET stop_requested = %(mode)s WHERE id = %(id)s

-- name: config_items
SELECT key, value FROM config

-- name: config_set
INSERT INTO config (key, value, updated_at) VALUES (%(key)s, %(value)s, %(now)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at

-- name: config_unset
DELETE FROM config WHERE key = %(key)s

-- name: finish_and_claim
-- A supervisor's step in one round trip: record the results of the runs that ended
-- together (each guarded like `finish`), then take up to one due job per free slot
-- label, best first (`_due`, as `claim`).  Every part sees the same snapshot: the
-- finished jobs are still 'processing' there, so the claim cannot pick them.  The
-- second column counts the candidates a queue's limit left (the caller claims again
-- for the labels left over: the limit's queue is then full and off the walk).
WITH finished AS (
    UPDATE jobs
    SET state = r.state, run_at = COALESCE(r.run_at, jobs.run_at), updated_at = %(now)s,
        finished_at = %(now)s, exit_code = r.exit_code, error = r.error,
        output = r.output, history = jobs.history || jsonb_build_array(r.entry::jsonb)
    FROM unnest(%(ids)s::text[], %(worker_ids)s::text[], %(states)s::text[],
                %(run_ats)s::float8[], %(exit_codes)s::int[], %(errors)s::text[],
                %(outputs)s::text[], %(entries)s::text[])
         AS r(id, worker_id, state, run_at, exit_code, error, output, entry)
    -- `= ANY` keeps a generic plan on the id index (joined with the results alone it
    -- scanned every row in 'processing'); the same for `seq` in `claimed` below
    WHERE jobs.id = ANY(%(ids)s::text[]) AND jobs.id = r.id
      AND jobs.state = {PROCESSING} AND jobs.worker_id = r.worker_id
    RETURNING jobs.id, jobs.queue
), freed AS (
    -- a slot of a queue at its limit freed (its finished jobs still run in this
    -- snapshot): idle workers on every host claim again.  A limit that does not bind
    -- sends nothing (a NOTIFY serialises commits).
    SELECT pg_notify('queuectl_jobs', '') FROM queues
    WHERE concurrency_limit IS NOT NULL AND name IN (SELECT queue FROM finished)
      AND concurrency_limit <= (SELECT COUNT(*) FROM jobs AS running
                                WHERE running.state = {PROCESSING}
                                  AND running.queue = queues.name)
    LIMIT 1
), due AS (
    SELECT seq, queue, priority, run_at {_due}
    LIMIT cardinality(%(workers)s::text[])
    FOR UPDATE SKIP LOCKED
), room AS (
    -- after `finished` (read to its end first): the holder of a queue's lock never
    -- waits for a row lock then (a claim that passed over this worker's finished
    -- jobs may hold them while it waits for the queue: a deadlock the other way round)
    {_room}
      AND (SELECT COUNT(*) FROM finished) >= 0
), ranked AS (
    SELECT seq, queue, priority, run_at,
           row_number() OVER (PARTITION BY queue ORDER BY {claim_order}) AS nth
    FROM due
), picked AS (
    -- a limited queue's candidates beyond its room stay where they are
    SELECT seq, row_number() OVER (ORDER BY {claim_order}) AS n FROM ranked
    WHERE NOT EXISTS (SELECT 1 FROM room
                      WHERE room.queue_name = ranked.queue AND ranked.nth > room.room)
), claimed AS (
    UPDATE jobs
    SET {_take}, worker = (%(workers)s::text[])[picked.n]
    FROM picked
    WHERE jobs.seq = ANY(ARRAY(SELECT seq FROM picked)) AND jobs.seq = picked.seq
    RETURNING picked.n, {job_columns}
), durable AS (
    -- a step that claimed commits durably (see `claim`); one that only finished keeps
    -- the worker's cheap setting: a lost finish leaves the job held by this worker,
    -- which gives it back with a history entry (a recorded re-run)
    SELECT set_config('synchronous_commit', 'on', true) FROM claimed LIMIT 1
)
SELECT (SELECT array_agg(id) FROM finished),
       (SELECT COUNT(*) FROM due) - (SELECT COUNT(*) FROM picked), claimed.*
FROM (SELECT 1) AS one LEFT JOIN claimed ON true LEFT JOIN durable ON true
     LEFT JOIN freed ON true
ORDER BY claimed.n

-- name: transition_all
-- Every job in :sources at once (`dlq retry --all`) in one statement, so that a job
-- buried again meanwhile is not retried twice.  A job whose unique key a live job
-- holds stays where it is (of several with one key, the newest goes).
UPDATE jobs
SET state = %(state)s, updated_at = %(now)s, run_at = %(now)s,
    attempts = CASE WHEN %(reset)s THEN 0 ELSE attempts END,
    finished_at = NULL, error = NULL, exit_code = NULL,
    history = history || jsonb_build_array(%(entry)s::jsonb)
WHERE state = ANY(%(sources)s)
  AND (unique_key IS NULL OR (
        NOT EXISTS (SELECT 1 FROM jobs AS live WHERE live.unique_key = jobs.unique_key
                    AND live.state IN ({LIVE}))
        AND seq = (SELECT MAX(seq) FROM jobs AS same
                   WHERE same.unique_key = jobs.unique_key
                     AND same.state = ANY(%(sources)s))))
RETURNING {job_columns}

-- name: insert_job_unique
-- A job with a unique key: nothing is stored when a live job holds the key, even one
-- a concurrent enqueue is committing (ON CONFLICT waits for it); the caller then
-- reads that job.  The conflict target is the partial unique index.
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, retry_policy,
                  created_at, updated_at)
VALUES (%(id)s, %(command)s, %(state)s, %(queue)s, %(priority)s, %(run_at)s,
        %(max_retries)s, %(backoff_base)s, %(timeout)s, %(cwd)s, %(env)s::jsonb,
        %(depends_on)s::jsonb, %(unique_key)s, %(retry_policy)s::jsonb,
        %(now)s, %(now)s)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ({LIVE})
    DO NOTHING
RETURNING id

-- dependencies ------------------------------------------------------------------------
-- name: dependency_state
-- A new dependant's dependency: its state, and whether it has had dependants before.
-- The row lock orders this enqueue against a concurrent change of the dependency: that
-- change waits for the enqueue to commit (its trigger then sees the new edges), or this
-- read waits for it and returns the changed state.
SELECT state, has_dependants FROM jobs WHERE id = %(id)s FOR UPDATE

-- name: mark_dependency
-- The first dependant of this job: edges left pointing at its id belong to an earlier
-- job of the same id (deleted since) and go (delete_stale_edges), then the flag is set.
UPDATE jobs SET has_dependants = TRUE WHERE id = %(id)s

-- name: delete_stale_edges
DELETE FROM job_dependencies WHERE depends_on = %(id)s

-- name: insert_dependency
INSERT INTO job_dependencies (job_id, depends_on, condition, dep_state)
VALUES (%(job_id)s, %(depends_on)s, %(condition)s, %(dep_state)s)

-- name: set_verdict
-- A new dependant whose dependencies had already ended (queuectl.dependencies.verdict).
UPDATE jobs
SET state = %(state)s, error = %(error)s, updated_at = %(now)s,
    finished_at = CASE WHEN %(state)s = {CANCELLED} THEN %(now)s::double precision END,
    run_at = GREATEST(run_at, %(now)s)
WHERE id = %(id)s

-- name: dependencies_of
-- A job's dependencies with their current state (NULL: deleted since).
SELECT d.depends_on, d.condition, j.state
FROM job_dependencies AS d LEFT JOIN jobs AS j ON j.id = d.depends_on
WHERE d.job_id = %(id)s ORDER BY d.depends_on

-- name: dependants_of
SELECT d.job_id, d.condition, j.state
FROM job_dependencies AS d JOIN jobs AS j ON j.id = d.job_id
WHERE d.depends_on = %(id)s ORDER BY d.job_id LIMIT %(limit)s

-- name: live_dependants_tree
-- Every live job that depends on this one, directly or through others, newest first
-- (`cancel --with-dependants`): an edge always points at an older job, so the newest
-- come before what they depend on.  UNION keeps each id once, at any depth.
WITH RECURSIVE tree(id) AS (
    SELECT job_id FROM job_dependencies WHERE depends_on = %(id)s
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
INSERT INTO queues (name, paused, created_at, updated_at)
VALUES (%(name)s, %(paused)s, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at

-- name: set_queue_limit
INSERT INTO queues (name, concurrency_limit, created_at, updated_at)
VALUES (%(name)s, %(limit)s, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET concurrency_limit = excluded.concurrency_limit,
                                 updated_at = excluded.updated_at

-- name: edit_job
-- `retry ID --command ...`: change a job before it runs again (NULL: keep), guarded on
-- the states it may be retried from; the history says what changed.
UPDATE jobs
SET command = COALESCE(%(command)s, command), timeout = COALESCE(%(timeout)s, timeout),
    priority = COALESCE(%(priority)s, priority), queue = COALESCE(%(queue)s, queue),
    max_retries = COALESCE(%(max_retries)s, max_retries),
    env = COALESCE(%(env)s::jsonb, env), updated_at = %(now)s,
    history = history || jsonb_build_array(%(entry)s::jsonb)
WHERE id = %(id)s AND state = ANY(%(sources)s)

-- name: _cron_columns
name, schedule, tz, job, paused, catch_up, no_overlap, next_fire_at, last_fire_at,
last_job_id, created_at, updated_at

-- name: cron_add
-- A new schedule; a name that exists inserts nothing (the caller reports it).
INSERT INTO cron_schedules ({_cron_columns})
VALUES (%(name)s, %(schedule)s, %(tz)s, %(job)s::jsonb, %(paused)s, %(catch_up)s,
        %(no_overlap)s, %(next_fire_at)s, NULL, NULL, %(now)s, %(now)s)
ON CONFLICT (name) DO NOTHING

-- name: _cron_select
-- A schedule with the state of its last run (NULL when it never ran or the job is gone).
SELECT c.name, c.schedule, c.tz, c.job, c.paused, c.catch_up, c.no_overlap,
       c.next_fire_at, c.last_fire_at, c.last_job_id, c.created_at, c.updated_at, j.state
FROM cron_schedules AS c LEFT JOIN jobs AS j ON j.id = c.last_job_id

-- name: cron_get
{_cron_select}
WHERE c.name = %(name)s

-- name: cron_list
{_cron_select}
ORDER BY c.name

-- name: cron_due
-- The unpaused schedules whose next instant has come, oldest first, along cron_schedules_due.
{_cron_select}
WHERE NOT c.paused AND c.next_fire_at <= %(now)s
ORDER BY c.next_fire_at LIMIT %(limit)s

-- name: cron_next_fire_at
SELECT MIN(next_fire_at) FROM cron_schedules WHERE NOT paused

-- name: cron_remove
DELETE FROM cron_schedules WHERE name = %(name)s

-- name: cron_set_paused
-- pause, or resume from next_fire_at (the instants of the pause are not caught up)
UPDATE cron_schedules
SET paused = %(paused)s, next_fire_at = COALESCE(%(next_fire_at)s, next_fire_at),
    updated_at = %(now)s
WHERE name = %(name)s

-- name: cron_advance
-- The compare-and-set that makes an instant fire once: only the caller that read
-- next_fire_at = expected moves it on.  A concurrent caller waits on the row lock,
-- re-reads the row once the winner commits and matches nothing.  The run is
-- enqueued in the same transaction (SqlVerbs.cron_fire).
UPDATE cron_schedules SET next_fire_at = %(next_fire_at)s, updated_at = %(now)s
WHERE name = %(name)s AND next_fire_at = %(expected)s AND NOT paused
RETURNING COALESCE(last_job_id, '')

-- name: cron_lock
-- `cron run`: the schedule's row (its last run), locked before a run is enqueued.
UPDATE cron_schedules SET updated_at = %(now)s WHERE name = %(name)s
RETURNING COALESCE(last_job_id, '')

-- name: cron_record_run
UPDATE cron_schedules
SET last_fire_at = %(fired_at)s, last_job_id = %(job_id)s, updated_at = %(now)s
WHERE name = %(name)s

-- name: cron_live_job
SELECT id FROM jobs WHERE id = %(id)s AND state IN ({LIVE})

-- name: cron_insert_job
-- A run of a schedule: nothing is stored when its id exists (a schedule added again
-- under an old name) or a live job holds its unique key (`--unique`).
INSERT INTO jobs (id, command, state, queue, priority, run_at, max_retries, backoff_base,
                  timeout, cwd, env, depends_on, unique_key, retry_policy,
                  created_at, updated_at)
VALUES (%(id)s, %(command)s, %(state)s, %(queue)s, %(priority)s, %(run_at)s,
        %(max_retries)s, %(backoff_base)s, %(timeout)s, %(cwd)s, %(env)s::jsonb,
        %(depends_on)s::jsonb, %(unique_key)s, %(retry_policy)s::jsonb,
        %(now)s, %(now)s)
ON CONFLICT DO NOTHING
RETURNING id

-- name: _hook_columns
id, job_id, event, hook, queue, attempts, exit_code, error, command, created_at, claimed_by,
claimed_at, finished_at, result, detail

-- name: hook_pending
-- Is there an event nobody has claimed?  (Along hook_events_unclaimed: idle supervisors
-- ask every second.)
SELECT id FROM hook_events WHERE claimed_at IS NULL LIMIT 1

-- name: hook_claim
-- Take up to %(limit)s unclaimed events, oldest first.  SKIP LOCKED: supervisors on other
-- hosts claiming at the same moment take other rows; a row claimed and committed since
-- this statement's snapshot is re-checked once locked (claimed_at IS NULL fails), so
-- each event goes to one caller.
UPDATE hook_events SET claimed_by = %(worker_id)s, claimed_at = %(now)s
WHERE id IN (SELECT id FROM hook_events WHERE claimed_at IS NULL ORDER BY id
             LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING {_hook_columns}

-- name: hook_finish
UPDATE hook_events SET finished_at = %(now)s, result = %(result)s, detail = %(detail)s
WHERE id = %(id)s AND finished_at IS NULL

-- name: hook_note_job
-- The hook's outcome in its job's history (the job's state and times stay as they are).
UPDATE jobs SET history = history || jsonb_build_array(%(entry)s::jsonb) WHERE id = %(id)s

-- name: hook_list
SELECT {_hook_columns} FROM hook_events ORDER BY id DESC LIMIT %(limit)s

-- name: hook_list_job
SELECT {_hook_columns} FROM hook_events WHERE job_id = %(job_id)s ORDER BY id DESC
LIMIT %(limit)s

-- name: hook_purge
DELETE FROM hook_events WHERE finished_at < %(before)s

-- name: queue_hooks
SELECT name, on_dead, on_complete FROM queues
WHERE on_dead IS NOT NULL OR on_complete IS NOT NULL ORDER BY name

-- name: set_queue_hooks
-- `queue hook`: set one or both hooks of a queue (keep_*: leave that one as it is).
INSERT INTO queues (name, on_dead, on_complete, created_at, updated_at)
VALUES (%(name)s, %(on_dead)s, %(on_complete)s, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET
    on_dead = CASE WHEN %(keep_dead)s THEN queues.on_dead ELSE excluded.on_dead END,
    on_complete = CASE WHEN %(keep_complete)s THEN queues.on_complete
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
VALUES (%(name)s, %(policy)s::jsonb, %(now)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET retry_policy = excluded.retry_policy,
                                 updated_at = excluded.updated_at
