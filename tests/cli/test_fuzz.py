"""Property tests: malformed job specs, bad option values and bad config values thrown
at the CLI (in process, through `queuectl.cli.main`, the real error funnel).  Each
must exit 2 with one clear line on stderr, no traceback, and leave the SQLite store
exactly as it was (compared as an SQL dump, so WAL checkpoints do not matter)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from queuectl.cli import main
from queuectl.config import KEYS
from queuectl.jobspec import FIELDS

FUZZ = settings(max_examples=100, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


class Store:
    """One SQLite store holding one job, and an in-process CLI against it."""

    def __init__(self, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.path = path
        self.capsys = capsys
        code, _, err = self.run("enqueue", "echo seed", "--id", "seed", "--priority", "7")
        assert code == 0, err
        code, _, err = self.run("config", "set", "max-retries", "4")
        assert code == 0, err
        self.initial = self.dump()

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["--db", str(self.path), *args])
        out, err = self.capsys.readouterr()
        code = exc.value.code
        return (0 if code is None else int(code)), out, err

    def dump(self) -> list[str]:
        conn = sqlite3.connect(self.path)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()

    def rejects(self, *args: str) -> str:
        """The command exits 2 with one error line and writes nothing."""
        before = self.dump()
        code, out, err = self.run(*args)
        assert "Traceback" not in err, err
        assert code == 2, (args, code, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("queuectl: error: "), lines[0]
        assert "internal error" not in lines[0], lines[0]
        assert self.dump() == before, args
        return lines[0]


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Store:
    return Store(tmp_path / "queue.db", capsys)


# -- strategies ----------------------------------------------------------------------
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
# Always wrong for every job field: a boolean, or a non-empty list of things no field
# accepts inside a list.
always_wrong = st.one_of(st.booleans(), st.lists(
    st.one_of(st.booleans(), st.none(), st.dictionaries(st.text(max_size=4), json_scalars,
                                                         max_size=2)), min_size=1, max_size=3))
NOT_A_NUMBER = st.builds(lambda head, tail: head + tail,
                         st.sampled_from(["x", "abc", "?", "five", "1x2", "--", "+-", "5 m s"]),
                         st.text(max_size=12))
BAD_BY_FIELD: dict[str, Any] = {
    "id": st.one_of(always_wrong, st.dictionaries(st.text(max_size=3), json_scalars,
                                                  min_size=1, max_size=2),
                    st.just(""), st.text(min_size=1, max_size=5).map(lambda s: "a b" + s)),
    "command": st.one_of(always_wrong, st.integers(), st.just(""), st.just("   "),
                         st.floats(allow_nan=False)),
    "priority": st.one_of(always_wrong, st.integers().filter(lambda n: not 1 <= n <= 10),
                          NOT_A_NUMBER, st.floats(allow_nan=False).filter(
                              lambda f: not (f.is_integer() and 1 <= f <= 10))),
    "delay": st.one_of(always_wrong, NOT_A_NUMBER, st.integers(max_value=-1)),
    "run_at": st.one_of(always_wrong, NOT_A_NUMBER, st.just("0001-01-01"),
                        st.just("+99999999999999999999d"), st.just(1e308)),
    "timeout": st.one_of(always_wrong, NOT_A_NUMBER, st.integers(max_value=-1)),
    "max_retries": st.one_of(always_wrong, NOT_A_NUMBER,
                             st.integers().filter(lambda n: not 0 <= n <= 1000)),
    "backoff_base": st.one_of(always_wrong, NOT_A_NUMBER,
                              st.floats(allow_nan=False).filter(lambda f: not 1 <= f <= 1000)),
    "queue": st.one_of(always_wrong, st.integers(), st.just(""),
                       st.text(min_size=1, max_size=5).map(lambda s: "q/" + s)),
    "cwd": st.one_of(always_wrong, st.integers(), st.just("")),
    "env": st.one_of(always_wrong, st.integers(), st.text(max_size=5),
                     st.dictionaries(st.text(max_size=5).map(lambda s: "1" + s), json_scalars,
                                     min_size=1, max_size=2)),
    "depends_on": always_wrong,
    "unique_key": st.one_of(always_wrong, st.integers(), st.just("")),
    "retry_on": st.one_of(always_wrong, st.integers(max_value=0), st.just("SIGNOPE"),
                          st.just("0"), st.just("78-64")),
    "no_retry_on": st.one_of(always_wrong, st.integers(min_value=256), st.just("KILLED"),
                             st.just("1-")),
}
# "after" is an alias of depends_on
BAD_BY_FIELD["after"] = BAD_BY_FIELD["depends_on"]
assert set(BAD_BY_FIELD) == set(FIELDS)

KNOWN_KEYS = set(FIELDS) | {"state", "attempts", "created_at", "updated_at"}


def _unknown_key(name: str) -> bool:
    return name.strip().replace("-", "_") not in KNOWN_KEYS


# -- malformed job specs ---------------------------------------------------------------
@FUZZ
@given(extra=st.dictionaries(st.text(min_size=1, max_size=12).filter(_unknown_key),
                             json_values, min_size=1, max_size=3),
       with_command=st.booleans())
def test_unknown_job_fields_rejected(store: Store, extra: dict[str, Any],
                                     with_command: bool) -> None:
    spec = dict(extra)
    if with_command:
        spec["command"] = "echo hi"
    line = store.rejects("enqueue", json.dumps(spec))
    assert "unknown job field" in line


@FUZZ
@given(data=st.data(), field=st.sampled_from(sorted(BAD_BY_FIELD)))
def test_wrong_typed_job_fields_rejected(store: Store, data: st.DataObject,
                                         field: str) -> None:
    value = data.draw(BAD_BY_FIELD[field], label=field)
    spec: dict[str, Any] = {"command": "echo hi", "id": "fresh"}
    spec[field] = value
    store.rejects("enqueue", json.dumps(spec))
    store.rejects("add", json.dumps(spec))


@FUZZ
@given(tail=st.text(max_size=40))
def test_non_json_text_starting_with_brace(store: Store, tail: str) -> None:
    text = "{" + tail
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    # a valid object is covered elsewhere; here only text that is not a job
    assume(not (isinstance(value, dict) and "command" in value))
    store.rejects("enqueue", text)


@FUZZ
@given(value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_non_object_json_lines_in_a_batch(store: Store, tmp_path_factory: Any,
                                          value: Any) -> None:
    """A line that starts an object but never closes it rejects the whole file."""
    path = tmp_path_factory.mktemp("batch") / "jobs.jsonl"
    path.write_text('{"id":"ok1","command":"echo 1"}\n{"command": '
                    + json.dumps(value) + "\n")
    store.rejects("enqueue", "--file", str(path))


@FUZZ
@given(lines=st.lists(st.dictionaries(st.sampled_from(sorted(BAD_BY_FIELD)), json_values,
                                      min_size=1, max_size=3), min_size=1, max_size=4))
def test_batch_rejected_as_a_whole(store: Store, tmp_path_factory: Any,
                                   lines: list[dict[str, Any]]) -> None:
    """A file with a good line and any broken line adds nothing at all."""
    bad = {"command": True}
    body = [json.dumps({"id": "good1", "command": "echo ok"})]
    body += [json.dumps({**line, **bad}) for line in lines]
    path = tmp_path_factory.mktemp("batch") / "jobs.jsonl"
    path.write_text("\n".join(body) + "\n")
    store.rejects("enqueue", "--file", str(path))


# -- bad option values -----------------------------------------------------------------
BAD_OPTIONS = {
    "--priority": st.one_of(NOT_A_NUMBER, st.integers().filter(lambda n: not 1 <= n <= 10)
                            .map(str), st.sampled_from(["1.5", "", "ten", "5e0"])),
    "--delay": st.one_of(NOT_A_NUMBER, st.integers(max_value=-1).map(str),
                         st.sampled_from(["", "-5m", "5 parsecs", "1e3", "99999999d"])),
    "--run-at": st.one_of(NOT_A_NUMBER, st.sampled_from(
        ["", "0001-01-01", "+-5m", "2025-13-40", "yesterday", "+99999999999999999999999d",
         "9" * 400])),
    "--timeout": st.one_of(NOT_A_NUMBER, st.integers(max_value=-1).map(str),
                           st.sampled_from(["", "nan", "inf", "-0.5"])),
    "--max-retries": st.one_of(NOT_A_NUMBER, st.integers().filter(
        lambda n: not 0 <= n <= 1000).map(str), st.sampled_from(["", "2.5", "many"])),
    "--backoff-base": st.one_of(NOT_A_NUMBER, st.sampled_from(
        ["", "0", "0.5", "-2", "nan", "inf", "1001", "1e9"])),
}


@FUZZ
@given(data=st.data(), option=st.sampled_from(sorted(BAD_OPTIONS)),
       verb=st.sampled_from(["enqueue", "add"]))
def test_bad_option_values_rejected(store: Store, data: st.DataObject, option: str,
                                    verb: str) -> None:
    value = data.draw(BAD_OPTIONS[option], label=option)
    line = store.rejects(verb, "echo hi", f"{option}={value}")
    name = option.lstrip("-").replace("-", "_")
    assert name in line or "time" in line or "run_at" in line, line


@FUZZ
@given(option=st.sampled_from(sorted(BAD_OPTIONS)),
       value=st.text(max_size=16).filter(lambda s: "\x00" not in s))
def test_any_option_value_is_accepted_or_cleanly_rejected(
        store: Store, option: str, value: str) -> None:
    before = store.dump()
    code, out, err = store.run("--json", "enqueue", "echo hi", f"{option}={value}")
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 0:
        job = json.loads(out)
        assert job["command"] == "echo hi"
        for args in (("show", job["id"]), ("list",), ("cancel", job["id"])):
            code, _, err = store.run(*args)  # the stored job stays readable and usable
            assert code == 0, (args, err)
    else:
        assert code == 2, (option, value, err)
        assert len(err.strip().splitlines()) == 1, err
        assert store.dump() == before


@FUZZ
@given(when=st.one_of(NOT_A_NUMBER, st.sampled_from(["", "0001-01-01", "2025-02-30"])))
def test_schedule_bad_when(store: Store, when: str) -> None:
    store.rejects("schedule", "backup", when)


# -- bad config values -----------------------------------------------------------------
def _bad_config_value(key: str) -> Any:
    if key == "log-level":
        return st.text(max_size=10).filter(
            lambda s: s.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"))
    if key == "backoff-jitter":
        return st.text(max_size=10).filter(
            lambda s: s.strip().lower() not in ("1", "0", "true", "false", "yes", "no",
                                                "on", "off"))
    if key in ("on-dead", "on-complete"):  # any command line, up to 4096 characters
        return st.integers(4097, 5000).map(lambda n: "x" * n)
    if key in ("retry-on", "no-retry-on"):  # terms: codes 1-255, ranges, signals, words
        return st.sampled_from(["0", "256", "-1", "78-64", "1-", "SIGNOPE", "nan", "75,,x"])
    return st.one_of(NOT_A_NUMBER, st.sampled_from(["", "-1", "-0.5", "nan", "inf", "1e999"])
                     .filter(lambda s: not (key in ("job-timeout", "retention") and s == "")))


@FUZZ
@given(data=st.data(), key=st.sampled_from(sorted(KEYS)),
       form=st.sampled_from(["set", "set-options", "options"]),
       underscore=st.booleans())
def test_bad_config_values_rejected(store: Store, data: st.DataObject, key: str,
                                    form: str, underscore: bool) -> None:
    value = data.draw(_bad_config_value(key), label="value")
    name = key.replace("-", "_") if underscore else key
    if form == "set":
        args = ["config", "set", name, value]
    elif form == "set-options":
        args = ["config", "set", "--key", name, f"--value={value}"]
    else:
        args = ["config", "--key", name, f"--value={value}"]
    if value == "" and form == "set":
        args = ["config", "set", name, "--value="]
    line = store.rejects(*args)
    assert key in line, line


@FUZZ
@given(key=st.text(min_size=1, max_size=16).filter(
    lambda s: s.strip().lower().replace("_", "-") not in KEYS and not s.startswith("-")),
       value=st.sampled_from(["1", "true", "5m"]))
def test_unknown_config_keys_rejected(store: Store, key: str, value: str) -> None:
    line = store.rejects("config", "set", "--key", key, f"--value={value}")
    assert "valid keys" in line and "max-retries" in line
