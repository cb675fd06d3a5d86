"""The state lists in the SQL come from states.py: the queries take them as `{NAME}`
placeholders, and the literals a migration has to spell out (partial index predicates,
the counts table) are checked here against the named sets.  Worker-side transitions
refuse a target state the transition table does not have."""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

import pytest

from queuectl.backends import open_backend
from queuectl.backends.base import sql_values
from queuectl.backends.sqlfile import SQL_DIR, parse_blocks, render_queries
from queuectl.models import NewJob
from queuectl.states import (
    CLAIMABLE,
    CLAIMABLE_ORDER,
    FINISH_TARGETS,
    LIVE,
    LIVE_ORDER,
    REQUEUE_TARGETS,
    JobState,
)

DIALECTS = ("sqlite", "postgres")
NAMES = {state.value for state in JobState}
# `state IN ('a', 'b')`, `state = 'a'`, `:state = 'a'`, `state <> 'a'`
IN_LIST = re.compile(r"\bstate\s+IN\s*\(([^()]*)\)", re.IGNORECASE)
COMPARED = re.compile(r"\bstate\s*(?:=|<>|!=)\s*'([^']*)'", re.IGNORECASE)
LITERAL = re.compile(r"'([^']*)'")
#: The quick enqueue lane reads its block as written (rendering costs it start-up time).
LITERAL_BLOCKS = {"insert_command"}
#: Each partial index over states, and the states.py list it must spell (in order: SQLite
#: uses a partial index only when the query's IN list repeats it term for term).
PARTIAL_INDEXES = {"jobs_ready": CLAIMABLE_ORDER, "jobs_due": CLAIMABLE_ORDER,
                   "jobs_unique_key": LIVE_ORDER, "jobs_worker": (JobState.PROCESSING,),
                   "jobs_retried": (JobState.CANCELLED,)}


def _sql_files() -> Iterator[tuple[str, str]]:
    for dialect in DIALECTS:
        yield f"{dialect}/queries.sql", _read(dialect, "queries.sql")
        folder = os.path.join(SQL_DIR, dialect, "migrations")
        for name in sorted(os.listdir(folder)):
            yield f"{dialect}/migrations/{name}", _read(dialect, "migrations", name)


def _read(*parts: str) -> str:
    with open(os.path.join(SQL_DIR, *parts), encoding="utf-8") as handle:
        return handle.read()


def _code(sql: str) -> str:
    """The SQL without its comments."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


def _state_literals(sql: str) -> list[tuple[str, ...]]:
    """Every literal state list in a state comparison, as written."""
    code = _code(sql)
    found = [tuple(LITERAL.findall(group)) for group in IN_LIST.findall(code)]
    found += [(value,) for value in COMPARED.findall(code)]
    return [values for values in found if values]


def test_every_state_literal_in_the_sql_files_is_a_known_state() -> None:
    seen = 0
    for name, text in _sql_files():
        for values in _state_literals(text):
            seen += 1
            assert set(values) <= NAMES, (name, values)
    assert seen >= 8  # the check found the migrations' predicates


def test_the_counts_table_has_a_row_for_every_state() -> None:
    seeded: list[str] = []
    for name in sorted(os.listdir(os.path.join(SQL_DIR, "sqlite", "migrations"))):
        text = _code(_read("sqlite", "migrations", name))
        for rows in re.findall(r"INSERT INTO state_counts \(state, n\) VALUES(.*?);", text,
                               re.S):
            seeded += LITERAL.findall(rows)
    assert sorted(seeded) == sorted(NAMES)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_queries_take_their_state_lists_from_states_py(dialect: str) -> None:
    for name, text in parse_blocks(_read(dialect, "queries.sql")).items():
        if name not in LITERAL_BLOCKS:
            assert _state_literals(text) == [], name
        for values in _state_literals(text):
            assert set(values) <= NAMES, (name, values)
    rendered = render_queries(dialect, sql_values(), "")
    for name, text in rendered.items():
        assert not re.search(r"\{[A-Za-z_]+\}", _code(text)), (name, text)
    # the claim reads exactly the claimable states, in the index's order
    assert "state IN ('pending', 'scheduled', 'failed')" in rendered["claim"]
    assert set(CLAIMABLE_ORDER) == CLAIMABLE and set(LIVE_ORDER) == LIVE


@pytest.mark.parametrize("dialect", DIALECTS)
def test_partial_indexes_spell_the_states_py_lists(dialect: str) -> None:
    found: dict[str, tuple[str, ...]] = {}
    for version in sorted(os.listdir(os.path.join(SQL_DIR, dialect, "migrations"))):
        code = _code(_read(dialect, "migrations", version))
        for index, predicate in re.findall(
                r"CREATE (?:UNIQUE )?INDEX (\w+) ON [^;]*?\bWHERE\b([^;]*);", code):
            states = _state_literals(predicate)
            if states:
                assert len(states) == 1, (index, predicate)
                found[index] = states[0]
    assert found == {index: tuple(s.value for s in states)
                     for index, states in PARTIAL_INDEXES.items()}


# -- worker-side transitions follow the table ------------------------------------------
NOW = 1_700_000_000.0


@pytest.fixture
def held(store_url: str) -> Iterator[tuple[Any, Any]]:
    """A store with two pending jobs, one of them held by worker w1."""
    backend = open_backend(store_url)
    try:
        backend.enqueue([NewJob(command="true", id="a"), NewJob(command="true", id="b")],
                        NOW)
        job = backend.claim("w1", "h:1/1", None, NOW)
        assert job is not None and job.id == "a"
        yield backend, job
    finally:
        backend.close()


def _fields() -> dict[str, Any]:
    return dict(now=NOW + 1, exit_code=0, error=None, output=None, history_entry={})


@pytest.mark.parametrize("state", sorted(set(JobState) - FINISH_TARGETS))
def test_finish_refuses_a_target_the_table_does_not_have(held: tuple[Any, Any],
                                                        state: JobState) -> None:
    backend, job = held
    with pytest.raises(ValueError, match="transition table allows"):
        backend.finish(job, state, None, **_fields())
    with pytest.raises(ValueError, match="transition table allows"):
        backend.finish_and_claim([(job, JobState.COMPLETED, None, _fields()),
                                  (job, state, None, _fields())],
                                 worker_id="w1", workers=["h:1/1"], queues=None,
                                 now=NOW + 1)
    assert backend.get("a").state is JobState.PROCESSING  # nothing was written
    assert backend.get("b").state is JobState.PENDING  # nor claimed


@pytest.mark.parametrize("state", sorted(set(JobState) - REQUEUE_TARGETS))
def test_requeue_refuses_a_target_the_table_does_not_have(held: tuple[Any, Any],
                                                         state: JobState) -> None:
    backend, job = held
    with pytest.raises(ValueError, match="transition table allows"):
        backend.requeue(job, now=NOW + 1, count_attempt=True, rescued=False,
                        history_entry={}, to_state=state)
    assert backend.get("a").state is JobState.PROCESSING
    assert backend.requeue(job, now=NOW + 1, count_attempt=True, rescued=True,
                           history_entry={}, to_state=JobState.DEAD)
    assert backend.get("a").state is JobState.DEAD
