"""B4's reference: what a bare Python script pays to store the same JSONL jobs in the same
store with `sqlite3` and `executemany`, one transaction, without queuectl.

    python benchmarks/bare_insert.py STORE.db JOBS.jsonl

It reads and parses every line, gives each job a random id, and inserts the columns
`enqueue --file` writes (same table, same indexes and triggers: STORE.db is a migrated
queuectl store), so the ratio to it is what queuectl's validation and batching cost on
top of the floor.  It imports only the standard library and runs as its own process, as
the command it is compared with does (interpreter start-up included)."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import uuid

INSERT = ("INSERT INTO jobs (id, command, state, queue, priority, run_at, created_at, "
          "updated_at, history) VALUES (?, ?, 'pending', 'default', ?, ?, ?, ?, '[]')")


def main(db_path: str, jobs_path: str) -> int:
    now = time.time()
    with open(jobs_path, encoding="utf-8") as handle:
        rows = [(str(uuid.uuid4()), spec["command"], spec.get("priority", 0), now, now, now)
                for spec in map(json.loads, handle)]
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("BEGIN IMMEDIATE")
    db.executemany(INSERT, rows)
    db.execute("UPDATE state_counts SET n = n + ? WHERE state = 'pending'", (len(rows),))
    db.execute("COMMIT")
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
