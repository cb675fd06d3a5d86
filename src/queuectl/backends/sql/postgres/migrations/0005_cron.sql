-- queuectl schema, version 5 (PostgreSQL): cron schedules (`queuectl cron`).
-- Independent of version 4.  Each scheduled instant fires once: a supervisor moves
-- `next_fire_at` on with a compare-and-set (WHERE next_fire_at = the value it read)
-- and enqueues the run in the same transaction, so only the winner of an instant
-- enqueues (a concurrent loser waits on the row lock, then matches no row).
CREATE TABLE cron_schedules (
    name         TEXT    PRIMARY KEY,
    schedule     TEXT    NOT NULL,            -- 5 cron fields or @hourly/@daily/...
    tz           TEXT    NOT NULL,            -- an IANA zone name, e.g. Europe/Berlin
    job          JSONB   NOT NULL,            -- the job template
    paused       BOOLEAN NOT NULL DEFAULT FALSE,
    catch_up     TEXT    NOT NULL DEFAULT 'one'
                 CHECK (catch_up IN ('none', 'one', 'all')),
    no_overlap   BOOLEAN NOT NULL DEFAULT FALSE,
    next_fire_at DOUBLE PRECISION NOT NULL,   -- the next instant not yet fired
    last_fire_at DOUBLE PRECISION,            -- the instant of the last run enqueued
    last_job_id  TEXT,                        -- that run's job
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL
);
-- what a supervisor looks for at each tick: the unpaused schedules due by now
CREATE INDEX cron_schedules_due ON cron_schedules (next_fire_at) WHERE NOT paused;
