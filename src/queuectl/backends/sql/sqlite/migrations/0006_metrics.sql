-- queuectl schema, version 6: `metrics` reads the window from the indexes alone.
-- jobs_finished carries what a run's figures need (queue, state, attempts, times, the
-- timeout mark), so that counting the window's runs touches no table row; jobs_due
-- carries the queue and state of each waiting job for the per-queue depth.
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at, queue, state, attempts, started_at, run_at,
                                    error) WHERE finished_at IS NOT NULL;
DROP INDEX jobs_due;
CREATE INDEX jobs_due ON jobs (run_at, queue, state) WHERE state IN ('pending', 'scheduled', 'failed');
-- The jobs run more than once (or cancelled after a run), whose history holds earlier
-- runs: about 1% of the finished ones, found without walking the window.
CREATE INDEX jobs_retried ON jobs (finished_at)
    WHERE attempts > 1 OR (state = 'cancelled' AND attempts > 0);
