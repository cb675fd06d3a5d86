-- queuectl schema, version 4 (SQLite): jobs that wait for other jobs.
-- A job enqueued with dependencies is stored `waiting` (not in the claim index).  When
-- a job that has dependants enters or leaves a final state, the trigger below moves
-- them in the same statement, hence in the same transaction as the change itself: a
-- crash between the two cannot strand a dependant.

-- 1 once some job depends on this one: the trigger's WHEN reads only this row, so a
-- job without dependants pays one integer test per state change.
ALTER TABLE jobs ADD COLUMN has_dependants INTEGER NOT NULL DEFAULT 0;
-- The dependency's state as last seen by the edge: set at enqueue, and by the trigger
-- whenever the dependency enters or leaves a final state.
ALTER TABLE job_dependencies ADD COLUMN dep_state TEXT;

INSERT INTO state_counts (state, n) VALUES ('waiting', 0), ('blocked', 0);

-- waiting and blocked jobs are live: they hold their unique key
DROP INDEX jobs_unique_key;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND state IN ('scheduled', 'pending', 'processing', 'failed', 'waiting', 'blocked');

-- The verdict for a held dependant, from its edges (queuectl.dependencies.verdict says
-- the same in Python; a property test checks they agree):
--   an --after-failure dependency completed         -> cancelled (can never run)
--   an --after dependency is dead or cancelled      -> blocked (until it is retried)
--   some dependency has not ended as asked          -> waiting
--   otherwise                                       -> scheduled (run_at later) / pending
-- A dependant cancelled here fires this trigger in turn (recursive_triggers is on for
-- every connection, sqlite_open.configure).
CREATE TRIGGER jobs_release_dependants AFTER UPDATE OF state ON jobs
    WHEN NEW.has_dependants = 1 AND OLD.state <> NEW.state
     AND (NEW.state IN ('completed', 'dead', 'cancelled')
          OR OLD.state IN ('completed', 'dead', 'cancelled')) BEGIN
    UPDATE job_dependencies SET dep_state = NEW.state WHERE depends_on = NEW.id;
    UPDATE jobs
    SET (state, error, finished_at, run_at) = (
        SELECT CASE
                 WHEN SUM(d.condition = 'failure' AND d.dep_state = 'completed') > 0
                   THEN 'cancelled'
                 WHEN SUM(d.condition = 'completed'
                          AND d.dep_state IN ('dead', 'cancelled')) > 0 THEN 'blocked'
                 WHEN SUM(NOT (
                        (d.condition = 'completed' AND d.dep_state = 'completed')
                     OR (d.condition = 'any'
                         AND d.dep_state IN ('completed', 'dead', 'cancelled'))
                     OR (d.condition = 'failure' AND d.dep_state IN ('dead', 'cancelled'))
                      ) OR d.dep_state IS NULL) > 0 THEN 'waiting'
                 WHEN jobs.run_at > NEW.updated_at THEN 'scheduled'
                 ELSE 'pending'
               END,
               CASE
                 WHEN SUM(d.condition = 'failure' AND d.dep_state = 'completed') > 0
                   THEN 'dependency ' || MAX(CASE WHEN d.condition = 'failure'
                                                   AND d.dep_state = 'completed'
                                                  THEN d.depends_on END)
                        || ' completed; this job was to run only if it failed'
                 WHEN SUM(d.condition = 'completed'
                          AND d.dep_state IN ('dead', 'cancelled')) > 0
                   THEN 'dependency ' || MAX(CASE WHEN d.condition = 'completed'
                                                   AND d.dep_state IN ('dead', 'cancelled')
                                                  THEN d.depends_on || ' is ' || d.dep_state
                                             END)
                        || '; retry it to unblock this job'
               END,
               CASE WHEN SUM(d.condition = 'failure' AND d.dep_state = 'completed') > 0
                    THEN NEW.updated_at END,
               MAX(jobs.run_at, NEW.updated_at)
        FROM job_dependencies AS d WHERE d.job_id = jobs.id),
        updated_at = NEW.updated_at
    WHERE id IN (SELECT job_id FROM job_dependencies WHERE depends_on = NEW.id)
      AND state IN ('waiting', 'blocked');
END;
