-- queuectl schema, version 7: cluster-wide concurrency limits (`queue limit Q N`).
-- A claim calls queuectl_claim_room with the queues of its candidate jobs; for those
-- that have a limit it locks their queues rows (in name order, so two claims never
-- wait on each other in a cycle), then counts their running jobs in a query of its
-- own: a VOLATILE function's query takes a fresh snapshot, so it sees every claim
-- committed by the holder of the lock before it.  The lock is held until the claim
-- commits, so the next claim of that queue counts this one's jobs: no interleaving
-- of claims can run more than the limit.  Queues without a limit take no lock.
CREATE OR REPLACE FUNCTION queuectl_claim_room(candidates text[])
RETURNS TABLE (queue_name text, room bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM 1 FROM queues AS q
    WHERE q.name = ANY(candidates) AND q.concurrency_limit IS NOT NULL
    ORDER BY q.name
    FOR UPDATE;
    RETURN QUERY
    SELECT q.name, q.concurrency_limit - (SELECT COUNT(*) FROM jobs AS j
                                          WHERE j.state = 'processing'
                                            AND j.queue = q.name)
    FROM queues AS q
    WHERE q.name = ANY(candidates) AND q.concurrency_limit IS NOT NULL;
END
$$;
