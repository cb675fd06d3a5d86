-- queuectl schema, version 2 (SQLite): queues as objects, dependency edges, a per-job
-- retry policy, and running jobs' output published as chunks.
-- No declared foreign keys (connections run with foreign_keys=OFF, and a cascade would
-- fire per row of a big purge): the store's delete statements remove a job's output
-- chunks and its own dependency edges with the job, in the same transaction.

-- A queue's settings; a queue without a row has the defaults (not paused, no limit,
-- the global retry policy).
CREATE TABLE queues (
    name              TEXT    PRIMARY KEY,
    paused            INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    concurrency_limit INTEGER CHECK (concurrency_limit >= 0),
    retry_policy      TEXT,
    created_at        REAL    NOT NULL,
    updated_at        REAL    NOT NULL
);

-- `job_id` may run once `depends_on` has ended as `condition` asks.  `depends_on` may
-- name a job that has been purged since (finished long ago).
CREATE TABLE job_dependencies (
    job_id     TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    condition  TEXT NOT NULL DEFAULT 'completed'
               CHECK (condition IN ('completed', 'any', 'failure')),
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
-- the dependants of a job that just ended
CREATE INDEX job_dependencies_depends_on ON job_dependencies (depends_on);

-- JSON; NULL: the queue's policy, else the global one.
ALTER TABLE jobs ADD COLUMN retry_policy TEXT;

-- A running job's output for followers on other hosts: `seq` is the byte offset of
-- the chunk in that run's (`attempt`'s) output.
CREATE TABLE job_output (
    job_id     TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    created_at REAL    NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
) WITHOUT ROWID;
