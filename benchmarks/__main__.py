"""queuectl's performance suite (B1-B8, documented in the README).

    python -m benchmarks                 # the full run (a few minutes)
    python -m benchmarks --quick         # a smaller run, under a minute
    python -m benchmarks --only B1,B2 --json results.json
    python -m benchmarks --only B10,B10D,B10PG  # metrics and the dashboard at 1M jobs
    python -m benchmarks --only B1b,B1c,B9      # burst, supervisor cost, store ceiling
    python -m benchmarks --db postgresql://postgres@127.0.0.1/test   # B8 on that server

Every store is a fresh temporary one; the user's data dir is never touched.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback

from benchmarks.cases import CASES, Context, Scale
from benchmarks.harness import Row
from benchmarks.postgres import DEFAULT_PG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="queuectl's performance suite")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under a minute")
    parser.add_argument("--only", help="comma-separated ids, e.g. B1,B2,B8")
    parser.add_argument("--json", dest="json_path", metavar="FILE",
                        help="also write the results as JSON")
    parser.add_argument("--db", metavar="URL",
                        help=f"PostgreSQL server for B8 (default {DEFAULT_PG} if reachable)")
    args = parser.parse_args(argv)
    scale = Scale.quick() if args.quick else Scale()
    ctx = Context(scale=scale, db_url=args.db)
    wanted = [name.strip().upper() for name in args.only.split(",")] if args.only else \
        [*CASES, "B1B", "B1C", "B8", "B9", "B10PG", "B11B"]
    rows: list[Row] = []
    failures: list[str] = []
    started = time.time()
    for name in wanted:
        case = CASES.get(name)
        if case is None and name == "B8":
            from benchmarks.postgres import b8_postgres

            case = b8_postgres
        if case is None and name in ("B1B", "B1C"):
            from benchmarks.burst import b1b_burst, b1c_supervisor

            case = b1b_burst if name == "B1B" else b1c_supervisor
        if case is None and name == "B9":
            from benchmarks.ceiling import b9_ceiling

            case = b9_ceiling
        if case is None and name == "B10PG":
            from benchmarks.postgres import b10_postgres

            case = b10_postgres
        if case is None and name == "B11B":
            from benchmarks.postgres import b11_postgres

            case = b11_postgres
        if case is None:
            parser.error(f"unknown benchmark {name}")
        print(f"running {name}...", file=sys.stderr, flush=True)
        try:
            rows.extend(case(ctx))
        except Exception as exc:  # a failing case is reported, the others still run
            traceback.print_exc()
            failures.append(f"{name}: {exc}")
    _print_table(rows, failures, time.time() - started, args.quick)
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": args.quick,
                       "machine": _machine(), "rows": [r.to_dict() for r in rows],
                       "errors": failures}, handle, indent=2)
    missed = [r for r in rows if r.passed is False]
    return 1 if missed or failures else 0


def _machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}"


def _print_table(rows: list[Row], failures: list[str], seconds: float, quick: bool) -> None:
    header = ["id", "store", "figure", "measured", "reference", "ratio", "target", "result"]
    body = []
    for row in rows:
        value = f"{row.value:g} {row.unit}"
        body.append([row.id, row.store, row.figure, value, row.reference,
                     "" if row.ratio is None else f"{row.ratio:g}", row.target,
                     "info" if row.passed is None else ("PASS" if row.passed else "MISS")])
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(header)]
    print()
    print(f"queuectl benchmarks, {time.strftime('%Y-%m-%d')}, {_machine()}"
          f"{' (quick)' if quick else ''}, {seconds:.0f} s")
    print("| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(header)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for line in body:
        print("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(line)) + " |")
    for failure in failures:
        print(f"ERROR {failure}")


if __name__ == "__main__":
    sys.exit(main())
