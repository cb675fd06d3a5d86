-- queuectl schema, version 8 (PostgreSQL): hooks, a command run when a job ends dead
-- (`on-dead`) or completed (`on-complete`).  Independent of version 7.
-- A queue's own hooks (NULL: the global `config` key applies; '': none for this queue).
ALTER TABLE queues ADD COLUMN on_dead TEXT, ADD COLUMN on_complete TEXT;

-- The outbox: one row per event, written by the trigger below in the same transaction
-- as the job's final transition, and only when a hook is configured for it, resolved
-- then (the queue's, else the global one).  A supervisor claims rows (claimed_at set,
-- FOR UPDATE SKIP LOCKED) before it runs their hooks, and records the outcome: each
-- event runs at most once, whichever host claims it (DECISIONS 49).
CREATE TABLE hook_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      TEXT    NOT NULL,
    event       TEXT    NOT NULL,             -- the state the job entered: dead, completed
    hook        TEXT    NOT NULL,             -- the command to run (sh -c)
    queue       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    exit_code   INTEGER,
    error       TEXT,
    command     TEXT    NOT NULL,             -- the job's command
    created_at  DOUBLE PRECISION NOT NULL,
    claimed_by  TEXT,                         -- the supervisor (worker id) running it
    claimed_at  DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    result      TEXT,                         -- ok, failed, timeout, error
    detail      TEXT                          -- exit status, or why it did not run
);
-- what a supervisor looks for every second: the events nobody has claimed
CREATE INDEX hook_events_unclaimed ON hook_events (id) WHERE claimed_at IS NULL;

CREATE FUNCTION queuectl_hook_event() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    found_hook text;
BEGIN
    SELECT CASE NEW.state WHEN 'dead' THEN on_dead ELSE on_complete END INTO found_hook
    FROM queues WHERE name = NEW.queue;
    IF found_hook IS NULL THEN
        SELECT value INTO found_hook FROM config
        WHERE key = CASE NEW.state WHEN 'dead' THEN 'on-dead' ELSE 'on-complete' END;
    END IF;
    IF found_hook <> '' THEN
        INSERT INTO hook_events (job_id, event, hook, queue, attempts, exit_code, error,
                                 command, created_at)
        VALUES (NEW.id, NEW.state, found_hook, NEW.queue, NEW.attempts, NEW.exit_code,
                NEW.error, NEW.command, NEW.updated_at);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_hook_event AFTER UPDATE OF state ON jobs
    FOR EACH ROW WHEN (OLD.state <> NEW.state AND NEW.state IN ('dead', 'completed'))
    EXECUTE FUNCTION queuectl_hook_event();
