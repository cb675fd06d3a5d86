"""The command line.  `main()` is the console script: the most common command,
`queuectl enqueue "CMD"`, goes through the quick lane (quick.py); everything else,
and anything the lane declines, through the click application (app.py)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    from queuectl.cli.quick import quick_enqueue

    code = quick_enqueue(args)
    if code is None:
        from queuectl.cli.app import run

        code = run(args)
    sys.exit(code)
