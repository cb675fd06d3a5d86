-- queuectl schema, version 1 (SQLite).
-- Times are epoch seconds (REAL, UTC).  `seq` gives FIFO order and "newest first".

CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    command      TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    queue        TEXT    NOT NULL DEFAULT 'default',
    priority     INTEGER NOT NULL DEFAULT 5,
    run_at       REAL    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_retries  INTEGER,
    backoff_base REAL,
    timeout      REAL,
    cwd          TEXT,
    env          TEXT,
    depends_on   TEXT,
    unique_key   TEXT,
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    worker       TEXT,
    worker_id    TEXT,
    exit_code    INTEGER,
    error        TEXT,
    output       TEXT,
    history      TEXT,
    rescues      INTEGER NOT NULL DEFAULT 0
);

-- The claim walks this index in claim order and stops at the first due row: it stays
-- at ~0.1 ms whether the table holds a thousand or a million finished jobs.
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'scheduled', 'failed');
-- When does the next waiting job become due; the oldest due job (status).
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'scheduled', 'failed');
-- `list --state S` newest first.
CREATE INDEX jobs_state ON jobs (state, seq);
-- purge by age, throughput of the last minute, metrics.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- rescue of the jobs held by a dead worker.
CREATE INDEX jobs_worker ON jobs (worker_id) WHERE state = 'processing';
-- at most one live job per unique key.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'processing', 'failed');

-- Counts per state, so `status` costs the same at any depth.  Updates and deletes keep
-- them through triggers; inserts are counted by the enqueue transaction itself, once
-- per batch (a per-row insert trigger more than doubled the cost of a batch enqueue).
CREATE TABLE state_counts (
    state TEXT PRIMARY KEY,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO state_counts (state, n) VALUES
    ('scheduled', 0), ('pending', 0), ('processing', 0), ('completed', 0),
    ('failed', 0), ('dead', 0), ('cancelled', 0);

CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN
    UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs
    WHEN OLD.state <> NEW.state BEGIN
    UPDATE state_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE state_counts SET n = n + 1 WHERE state = NEW.state;
END;

CREATE TABLE workers (
    id             TEXT    PRIMARY KEY,
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    slots          INTEGER NOT NULL,
    queues         TEXT,
    started_at     REAL    NOT NULL,
    heartbeat_at   REAL    NOT NULL,
    busy           INTEGER NOT NULL DEFAULT 0,
    jobs_done      INTEGER NOT NULL DEFAULT 0,
    stop_requested TEXT
);

CREATE TABLE config (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
