"""Named SQL blocks, procrastinate-style: `-- name: claim` starts a block.

Plain string handling, no `re`: the quick enqueue lane (cli/quick.py) reads these
files too, and importing `re` costs it several milliseconds."""

from __future__ import annotations

import os

SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sql")

_FIRST = set("abcdefghijklmnopqrstuvwxyz_")
_REST = _FIRST | set("0123456789")


def _is_name(text: str) -> bool:
    return bool(text) and text[0] in _FIRST and set(text) <= _REST


def _block_name(line: str) -> str | None:
    """`-- name: claim` -> "claim"; any other line -> None."""
    if not line.startswith("--"):
        return None
    rest = line[2:].strip()
    if not rest.startswith("name:"):
        return None
    name = rest[len("name:"):].strip()
    return name if _is_name(name) else None


def parse_blocks(text: str) -> dict[str, str]:
    blocks: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in text.splitlines() + ["-- name: _end"]:
        found = _block_name(line)
        if found is None:
            body.append(line)
            continue
        if name is not None:
            if name in blocks:
                raise ValueError(f"duplicate SQL block {name!r}")
            blocks[name] = "\n".join(body).strip()
        name, body = found, []
    return blocks


def load_queries(dialect: str) -> dict[str, str]:
    """The named blocks of `sql/<dialect>/queries.sql`, as written (placeholders left
    in: the quick enqueue lane reads its few plain blocks this way)."""
    # Plain file reads: importlib.resources cost CLI start-up several milliseconds.
    with open(os.path.join(SQL_DIR, dialect, "queries.sql"), encoding="utf-8") as handle:
        return parse_blocks(handle.read())


def render_queries(dialect: str, values: dict[str, str],
                   queue_filter: str) -> dict[str, str]:
    """The statements a backend runs.

    * `{NAME}` placeholders take `values` (state lists from states.py, column lists);
    * a block named `_name` is a fragment: `{_name}` elsewhere is replaced by its
      text, and it is not a statement itself;
    * a block that holds `{queue_filter}` gives two statements: `name` without a
      filter on queues and `name_in_queues` with `queue_filter` (a filter such as
      `(queues IS NULL OR queue = ANY(...))` in one statement made the planners sort
      every due job instead of walking the claim index).

    A fragment's own comment lines stay in the file: they would end inside the
    statement's line it is put into."""
    blocks = load_queries(dialect)
    fragments = {"{" + name + "}": _without_comments(text)
                 for name, text in blocks.items() if name.startswith("_")}
    for key in fragments:  # a fragment may use another (`_due` uses `_paused`)
        for other, text in fragments.items():
            if other != key:
                fragments[other] = text.replace(key, fragments[key])
    filled = {"{" + key + "}": text for key, text in values.items()}
    out: dict[str, str] = {}
    for name, text in blocks.items():
        if name.startswith("_"):
            continue
        for key, fragment in fragments.items():
            text = text.replace(key, fragment)
        for key, value in filled.items():
            text = text.replace(key, value)
        if "{queue_filter}" in text:
            out[name + "_in_queues"] = text.replace("{queue_filter}", queue_filter)
            text = text.replace("{queue_filter}", "")
        out[name] = text
    return out


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith("--")).strip()


def _migration_files(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, path) of `sql/<dialect>/migrations/NNNN_name.sql`, in order."""
    folder = os.path.join(SQL_DIR, dialect, "migrations")
    found = []
    for file in os.listdir(folder):
        stem = file[:-len(".sql")]
        if (file.endswith(".sql") and len(stem) > 5 and stem[:4].isdigit()
                and stem[4] == "_" and set(stem[5:]) <= _REST):
            found.append((int(stem[:4]), stem[5:], os.path.join(folder, file)))
    found.sort()
    return found


def latest_version(dialect: str) -> int:
    """The schema version the newest migration file brings (0 if there is none)."""
    files = _migration_files(dialect)
    return files[-1][0] if files else 0


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of `sql/<dialect>/migrations/NNNN_name.sql`, in order."""
    found = []
    for version, name, path in _migration_files(dialect):
        with open(path, encoding="utf-8") as handle:
            found.append((version, name, handle.read()))
    return found
