-- queuectl schema, version 3: one queue's jobs newest first (the dashboard's jobs page
-- filtered by queue), a keyset walk from a seq at any depth; without it a page of a
-- small queue read every job of a big store.
CREATE INDEX jobs_queue ON jobs (queue, seq);
