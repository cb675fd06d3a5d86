-- queuectl schema, version 1 (PostgreSQL).
-- Times are epoch seconds (double precision, UTC), as in the SQLite store, so both
-- stores share one row mapping.  `seq` gives FIFO order and "newest first".

CREATE TABLE jobs (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    command      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    queue        TEXT    NOT NULL DEFAULT 'default',
    priority     INTEGER NOT NULL DEFAULT 5,
    run_at       DOUBLE PRECISION NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_retries  INTEGER,
    backoff_base DOUBLE PRECISION,
    timeout      DOUBLE PRECISION,
    cwd          TEXT,
    env          JSONB,
    depends_on   JSONB,
    unique_key   TEXT,
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    started_at   DOUBLE PRECISION,
    finished_at  DOUBLE PRECISION,
    worker       TEXT,
    worker_id    TEXT,
    exit_code    INTEGER,
    error        TEXT,
    output       TEXT,
    history      JSONB NOT NULL DEFAULT '[]',
    rescues      INTEGER NOT NULL DEFAULT 0
);

-- The claim walks this index in claim order and stops at the first due row.
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'scheduled', 'failed');
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'scheduled', 'failed');
CREATE INDEX jobs_state ON jobs (state, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_worker ON jobs (worker_id) WHERE state = 'processing';
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'processing', 'failed');

CREATE TABLE workers (
    id             TEXT    PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    slots          INTEGER NOT NULL,
    queues         JSONB,
    started_at     DOUBLE PRECISION NOT NULL,
    heartbeat_at   DOUBLE PRECISION NOT NULL,
    busy           INTEGER NOT NULL DEFAULT 0,
    jobs_done      INTEGER NOT NULL DEFAULT 0,
    stop_requested TEXT
);

CREATE TABLE config (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
