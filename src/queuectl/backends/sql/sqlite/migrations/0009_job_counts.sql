-- queuectl schema, version 9 (SQLite): nothing to add.  The PostgreSQL store's
-- version 9 counts jobs per queue and state by triggers; this store has kept its
-- counts per state in state_counts since version 1 (one writer at a time, so one row
-- per state is never contended).
SELECT 1;
