-- queuectl schema, version 9 (PostgreSQL): jobs counted per queue and state, so
-- `status`, `metrics`, the dashboard's overview and /metrics cost the same at any
-- depth (a COUNT(*) per state read every job: ~250 ms at a million).
-- The triggers below keep the counts in the transaction of every insert, state or
-- queue change and delete, whichever statement makes it (the claim, a finish, the
-- dependency trigger, an edit, a purge, the quick enqueue lane): a reader's snapshot
-- sees counts and jobs as of the same commits.  Each server connection writes rows of
-- its own (`shard` = its backend pid): two workers never wait for one counts row, and
-- a multi-row statement cannot deadlock with another on them.  A reader sums the rows;
-- rows of connections gone are folded into shard 0 (`fold_counts`) when they pile up.
CREATE TABLE job_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    shard INTEGER NOT NULL,
    n     BIGINT  NOT NULL,
    PRIMARY KEY (queue, state, shard)
);

-- no writer may change jobs between the count below and the triggers taking over
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;

-- inserts and deletes per statement (a batch enqueue or a purge adds one row per
-- queue and state, not one per job), in key order
CREATE OR REPLACE FUNCTION queuectl_count_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts AS c (queue, state, shard, n)
    SELECT queue, state, pg_backend_pid(), COUNT(*) FROM added
    GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION queuectl_count_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts AS c (queue, state, shard, n)
    SELECT queue, state, pg_backend_pid(), -COUNT(*) FROM removed
    GROUP BY queue, state ORDER BY queue, state
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

-- a transition per row, and only when the state or queue really changes: a claim
-- that finds nothing, a heartbeat or an output write costs nothing here
CREATE OR REPLACE FUNCTION queuectl_count_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_counts AS c (queue, state, shard, n)
    VALUES (OLD.queue, OLD.state, pg_backend_pid(), -1),
           (NEW.queue, NEW.state, pg_backend_pid(), 1)
    ON CONFLICT (queue, state, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION queuectl_count_inserted();
CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION queuectl_count_deleted();
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state, queue ON jobs FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.queue IS DISTINCT FROM NEW.queue)
    EXECUTE FUNCTION queuectl_count_moved();

INSERT INTO job_counts (queue, state, shard, n)
SELECT queue, state, 0, COUNT(*) FROM jobs GROUP BY queue, state;
