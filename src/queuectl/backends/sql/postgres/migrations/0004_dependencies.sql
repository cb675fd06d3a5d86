-- queuectl schema, version 4 (PostgreSQL): jobs that wait for other jobs.
-- A job enqueued with dependencies is stored `waiting` (not in the claim index).  When
-- a job that has dependants enters or leaves a final state, the trigger below moves
-- them inside the same statement, hence in the same transaction as the change itself:
-- a crash between the two cannot strand a dependant, on any host.

-- TRUE once some job depends on this one: the trigger's WHEN reads only this row.
-- The enqueue of a dependant sets it with an UPDATE, which takes the dependency's row
-- lock: a concurrent finish of that dependency waits for the enqueue to commit (and
-- then sees the flag and the new edges) or the enqueue reads the finished state.
ALTER TABLE jobs ADD COLUMN has_dependants BOOLEAN NOT NULL DEFAULT FALSE;
-- The dependency's state as last seen by the edge: set at enqueue, and by the trigger
-- whenever the dependency enters or leaves a final state.
ALTER TABLE job_dependencies ADD COLUMN dep_state TEXT;

-- waiting and blocked jobs are live: they hold their unique key
DROP INDEX jobs_unique_key;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND state IN ('scheduled', 'pending', 'processing', 'failed', 'waiting', 'blocked');

-- The verdict for a held dependant, from its edges (queuectl.dependencies.verdict says
-- the same in Python):
--   an --after-failure dependency completed         -> cancelled (can never run)
--   an --after dependency is dead or cancelled      -> blocked (until it is retried)
--   some dependency has not ended as asked          -> waiting
--   otherwise                                       -> scheduled (run_at later) / pending
-- A dependant cancelled here fires the trigger in turn.  Released jobs wake the
-- listening supervisors when the transaction commits.
CREATE FUNCTION queuectl_release_dependants() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    moved integer;
BEGIN
    UPDATE job_dependencies SET dep_state = NEW.state WHERE depends_on = NEW.id;
    UPDATE jobs
    SET (state, error, finished_at, run_at, updated_at) = (
        SELECT CASE
                 WHEN bool_or(d.condition = 'failure' AND d.dep_state = 'completed')
                   THEN 'cancelled'
                 WHEN bool_or(d.condition = 'completed'
                              AND d.dep_state IN ('dead', 'cancelled')) THEN 'blocked'
                 WHEN bool_or(d.dep_state IS NULL OR NOT (
                        (d.condition = 'completed' AND d.dep_state = 'completed')
                     OR (d.condition = 'any'
                         AND d.dep_state IN ('completed', 'dead', 'cancelled'))
                     OR (d.condition = 'failure' AND d.dep_state IN ('dead', 'cancelled'))
                      )) THEN 'waiting'
                 WHEN jobs.run_at > NEW.updated_at THEN 'scheduled'
                 ELSE 'pending'
               END,
               CASE
                 WHEN bool_or(d.condition = 'failure' AND d.dep_state = 'completed')
                   THEN 'dependency ' || max(CASE WHEN d.condition = 'failure'
                                                   AND d.dep_state = 'completed'
                                                  THEN d.depends_on END)
                        || ' completed; this job was to run only if it failed'
                 WHEN bool_or(d.condition = 'completed'
                              AND d.dep_state IN ('dead', 'cancelled'))
                   THEN 'dependency ' || max(CASE WHEN d.condition = 'completed'
                                                   AND d.dep_state IN ('dead', 'cancelled')
                                                  THEN d.depends_on || ' is ' || d.dep_state
                                             END)
                        || '; retry it to unblock this job'
               END,
               CASE WHEN bool_or(d.condition = 'failure' AND d.dep_state = 'completed')
                    THEN NEW.updated_at END,
               GREATEST(jobs.run_at, NEW.updated_at),
               NEW.updated_at
        FROM job_dependencies AS d WHERE d.job_id = jobs.id)
    WHERE jobs.id IN (SELECT job_id FROM job_dependencies WHERE depends_on = NEW.id)
      AND jobs.state IN ('waiting', 'blocked');
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        PERFORM pg_notify('queuectl_jobs', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_release_dependants AFTER UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.has_dependants AND OLD.state <> NEW.state
          AND (NEW.state IN ('completed', 'dead', 'cancelled')
               OR OLD.state IN ('completed', 'dead', 'cancelled')))
    EXECUTE FUNCTION queuectl_release_dependants();
