"""Output truncation made visible: `total_output_bytes`/`output_truncated` in --json,
a note from `logs` on what was dropped and how to keep more, and the full output kept
on disk per job within `output-file-max`, read back by `logs`.  Both stores."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Callable

from tests.cli.test_commands import as_json, fails, ok, show

Cli = Callable[..., subprocess.CompletedProcess]
FULL = "".join(f"{i}\n" for i in range(1, 2001))  # `seq 1 2000`: 8893 bytes


def _run_one(cli: Cli, job_id: str, command: str) -> None:
    ok(cli("enqueue", "--id", job_id, command))
    ok(cli("worker", "start", "--burst", timeout=60))


def test_truncated_output_is_counted_noted_and_kept_on_disk(cli: Cli) -> None:
    ok(cli("config", "set", "output-limit", "1000"))
    ok(cli("enqueue", "--id", "small", "echo hi"))
    _run_one(cli, "big", "seq 1 2000")
    big = show(cli, "big")
    assert (big["total_output_bytes"], big["output_truncated"], big["output_file"]) == \
        (len(FULL), True, None)
    small = show(cli, "small")
    assert (small["total_output_bytes"], small["output_truncated"]) == (3, False)
    listed = {job["id"]: job for job in json.loads(ok(cli("list", "--json")))}
    assert listed["big"]["output_truncated"] and not listed["small"]["output_truncated"]
    logs = cli("logs", "big")
    assert FULL.endswith(ok(logs)) and ok(logs).startswith(("1", "2"))  # a whole line
    assert len(ok(logs)) <= 1000
    note = logs.stderr.strip().splitlines()
    assert len(note) == 1 and "of this job's 8.7 KiB of output are kept" in note[0]
    assert "output-limit" in note[0] and "output-file-max" in note[0]
    assert cli("logs", "small").stderr == ""
    assert cli("logs", "-n", "1", "big").stderr == ""  # what was asked for is all there
    assert as_json(cli("logs", "big", "--json"))["output_truncated"] is True
    assert "of 8,893 bytes)" in ok(cli("show", "big"))

    fails(cli("config", "set", "output-file-max", "lots"), 2, "output-file-max")
    ok(cli("config", "set", "output-file-max", "4K"))
    _run_one(cli, "capped", "seq 1 2000")
    capped = show(cli, "capped")
    assert capped["output_file"] and os.path.getsize(capped["output_file"]) == 4096
    logs = cli("logs", "capped")
    assert ok(logs).startswith("1\n2\n3\n") and ok(logs).endswith("1999\n2000\n")
    assert "dropped between the start kept on disk" in logs.stderr

    ok(cli("config", "set", "output-file-max", "1M"))
    _run_one(cli, "whole", "seq 1 2000")
    logs = cli("logs", "whole")
    assert ok(logs) == FULL and logs.stderr == ""
    assert ok(cli("logs", "-n", "2", "whole")) == "1999\n2000\n"
    assert show(cli, "whole")["output_truncated"] is True  # the store's tail is cut
    assert "the full output: queuectl logs whole" in ok(cli("show", "whole"))


def test_kept_files_go_with_their_jobs(cli: Cli) -> None:
    ok(cli("config", "set", "output-file-max", "1M"))
    ok(cli("enqueue", "--id", "one", "echo one"))
    ok(cli("enqueue", "--id", "two", "echo two"))
    ok(cli("worker", "start", "--burst", timeout=60))
    one, two = show(cli, "one")["output_file"], show(cli, "two")["output_file"]
    assert os.path.exists(one) and os.path.exists(two)
    ok(cli("rm", "one"))
    assert not os.path.exists(one) and os.path.exists(two)
    ok(cli("purge", "--older-than", "1h", "--yes"))  # too young: kept
    assert os.path.exists(two)
    ok(cli("clear", "--yes"))
    assert not os.path.exists(two)
