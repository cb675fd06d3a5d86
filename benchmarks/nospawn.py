"""B9's worker: the real `queuectl worker start` with job processes taken out.

    python -m benchmarks.nospawn --db URL worker start --count 4

Everything but the spawn is the real supervisor: its loop, its poll set, the claim and
the finish statements, batched as it batches them (one `finish_and_claim` for the slots
that ended together), its log line per job.  Only `Run` (worker/runner.py) is replaced,
in this process alone, by `InstantRun`: a run that has "exited" with status 0 as soon as
it starts, signalled through an eventfd that is already readable (where the real run
has a pidfd), so each job still costs the supervisor one descriptor, one poll wake-up
and one check.  A benchmark instrument, not a feature: nothing in queuectl knows of it.
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

from queuectl.models import Outcome


class InstantRun:
    """The part of `Run` the executor uses, for a command that ends at once."""

    def __init__(self, command: str, **options: Any) -> None:
        self.command = command
        self.pid: Optional[int] = None
        self._fd = -1
        self._started_at = 0.0
        self._outcome: Optional[Outcome] = None
        self._killed = False

    def start(self) -> None:
        self._started_at = time.time()
        self._fd = os.eventfd(1, os.EFD_CLOEXEC)  # readable now: "the child exited"

    @property
    def output_fd(self) -> int:
        return -1

    def fileno(self) -> int:
        return self._fd

    def next_wakeup(self) -> Optional[float]:
        return None

    def check(self) -> Optional[Outcome]:
        if self._outcome is None:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._outcome = Outcome(exit_code=0, started_at=self._started_at,
                                    finished_at=time.time())
        return self._outcome

    def enforce_deadlines(self) -> None:
        pass

    def kill(self) -> None:
        self._killed = True

    def kill_now(self) -> None:
        self._killed = True

    @property
    def killed(self) -> bool:
        return self._killed

    def trim_output(self) -> int:
        return 0


def main() -> None:
    from queuectl.worker import executor

    executor.Run = InstantRun  # type: ignore[misc,assignment]
    from queuectl.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
