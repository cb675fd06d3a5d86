"""Turning user input into a NewJob: every problem is an InvalidInput naming the field."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from queuectl.errors import InvalidInput
from queuectl.jobcore import looks_like_json_object, new_job_id
from queuectl.jobspec import FIELDS, build, parse_json_object

NOW = 1_700_000_000.0
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_minimal_job_gets_defaults_and_a_uuid() -> None:
    job = build({"command": "echo hi"}, NOW)
    assert job.command == "echo hi" and job.priority == 5 and job.queue == "default"
    assert UUID4.match(job.id or "") and job.run_at is None
    # left unset so that they follow the config at run time
    assert job.max_retries is None and job.timeout is None and job.backoff_base is None
    assert job.cwd is None and job.env is None and job.unique_key is None
    assert job.depends_on == []


def test_generated_ids_are_random_version_4_uuids() -> None:
    ids = {new_job_id() for _ in range(500)}
    assert len(ids) == 500 and all(UUID4.match(i) for i in ids)
    assert build({"command": "x"}, NOW).id != build({"command": "x"}, NOW).id


def test_every_field() -> None:
    job = build({"id": "job1", "command": "x", "priority": 8, "run_at": "+5m",
                 "timeout": "30s", "max-retries": 2, "backoff_base": 1.5, "queue": "mail",
                 "cwd": "/tmp", "env": {"A": "1", "B": 2}, "unique_key": "k"}, NOW)
    assert (job.id, job.priority, job.run_at, job.timeout) == ("job1", 8, NOW + 300, 30)
    assert (job.max_retries, job.backoff_base, job.queue) == (2, 1.5, "mail")
    assert job.cwd == "/tmp" and job.env == {"A": "1", "B": "2"} and job.unique_key == "k"


def test_the_input_mapping_is_not_changed() -> None:
    fields = {"command": "x", "created_at": "2025-11-04T10:30:00Z", "state": "pending"}
    before = dict(fields)
    build(fields, NOW)
    assert fields == before


def test_keys_accept_dash_or_underscore_and_surrounding_space() -> None:
    job = build({" command ": "x", "max-retries": 1, "backoff-base": 3, "unique-key": "u",
                 "depends-on": "dep1"}, NOW)
    assert (job.command, job.max_retries, job.backoff_base) == ("x", 1, 3)
    assert job.unique_key == "u" and job.depends_on == ["dep1"]


def test_the_same_field_spelled_twice_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="field 'max_retries' given twice"):
        build({"command": "x", "max-retries": 1, "max_retries": 2}, NOW)


def test_unknown_keys_that_strip_alike_are_reported_as_unknown() -> None:
    # found by the fuzz test: "\r" and "\x85" both strip to "", which is no field
    with pytest.raises(InvalidInput, match="unknown job field"):
        build({"command": "x", "\r": None, "\x85": None}, NOW)
    with pytest.raises(InvalidInput, match="unknown job field ' bogus '"):
        build({"command": "x", " bogus ": 1, "bogus": 2}, NOW)


@pytest.mark.parametrize("value,priority", [(1, 1), (10, 10), ("7", 7), (" 7 ", 7),
                                            (7.0, 7)])
def test_priority_range_and_forms(value: object, priority: int) -> None:
    assert build({"command": "x", "priority": value}, NOW).priority == priority


def test_delay_and_run_at() -> None:
    assert build({"command": "x", "delay": 60}, NOW).run_at == NOW + 60
    assert build({"command": "x", "delay": "5m"}, NOW).run_at == NOW + 300
    assert build({"command": "x", "delay": "0"}, NOW).run_at == NOW
    assert build({"command": "x", "run_at": "+1h"}, NOW).run_at == NOW + 3600
    assert build({"command": "x", "run_at": "2025-11-10T02:00:00Z"}, NOW).run_at == \
        datetime(2025, 11, 10, 2, tzinfo=timezone.utc).timestamp()
    # a time in the past is fine (the job is simply due)
    assert build({"command": "x", "run_at": "2020-01-01T00:00:00Z"}, NOW).run_at == \
        datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp()


def test_null_values_mean_not_given() -> None:
    job = build({"command": "x", "id": None, "priority": None, "delay": None,
                 "run_at": None, "timeout": None, "queue": None, "env": None}, NOW)
    assert UUID4.match(job.id or "") and job.priority == 5 and job.run_at is None
    assert job.timeout is None and job.queue == "default" and job.env is None


def test_numeric_values_are_normalised() -> None:
    job = build({"command": "x", "id": 42, "timeout": 0, "backoff_base": "2",
                 "max_retries": "0", "env": {"N": 1.5, "M": 3}}, NOW)
    assert job.id == "42" and job.timeout == 0 and job.backoff_base == 2.0
    assert job.max_retries == 0 and job.env == {"N": "1.5", "M": "3"}


def test_dependencies_from_after_and_depends_on() -> None:
    assert build({"command": "x", "after": "abcd"}, NOW).depends_on == ["abcd"]
    job = build({"command": "x", "depends_on": "c3", "after": ["a1", "b2"]}, NOW)
    assert sorted(job.depends_on) == ["a1", "b2", "c3"]


def test_s1_job_json_with_initial_state_is_accepted() -> None:
    job = build({"id": "a", "command": "x", "state": "pending", "attempts": 0,
                 "created_at": "2025-11-04T10:30:00Z", "updated_at": "whatever"}, NOW)
    assert job.id == "a" and job.command == "x"


def test_unknown_field_message_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        build({"command": "x", "zeta": 1, "colour": "red"}, NOW)
    message = str(caught.value)
    assert "unknown job field 'colour'" in message  # the first, sorted
    assert "valid fields: " + ", ".join(FIELDS) in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("fields,message", [
    ({}, "needs a command"),
    ({"command": None}, "needs a command"),
    ({"id": "a"}, "needs a command"),
    ({"command": ""}, "command is empty"),
    ({"command": "  \n "}, "command is empty"),
    ({"command": 5}, "command must be a string"),
    ({"command": ["echo", "hi"]}, "command must be a string"),
    ({"command": "a\x00b"}, "NUL"),
    ({"command": "x" * (128 * 1024)}, "longer than 128 KiB"),
    ({"command": "x", "priority": 11}, "priority must be between 1 and 10"),
    ({"command": "x", "priority": 0}, "priority must be between 1 and 10"),
    ({"command": "x", "priority": -3}, "priority must be between 1 and 10"),
    ({"command": "x", "priority": "high"}, "priority must be an integer"),
    ({"command": "x", "priority": 5.5}, "priority must be an integer"),
    ({"command": "x", "priority": "5.0"}, "priority must be an integer"),
    ({"command": "x", "priority": [5]}, "priority must be an integer"),
    ({"command": "x", "priority": True}, "not a boolean"),
    ({"command": "x", "colour": "red"}, "unknown job field 'colour'"),
    ({"command": "x", "state": "dead"}, "set by queuectl"),
    ({"command": "x", "state": "processing"}, "set by queuectl"),
    ({"command": "x", "attempts": 2}, "set by queuectl"),
    ({"command": "x", "attempts": False}, "set by queuectl"),
    ({"command": "x", "id": "has space"}, "invalid job id"),
    ({"command": "x", "id": ""}, "invalid job id"),
    ({"command": "x", "id": "a\tb"}, "invalid job id"),
    ({"command": "x", "id": "x" * 201}, "invalid job id"),
    ({"command": "x", "id": True}, "id must be a string"),
    ({"command": "x", "id": ["a"]}, "id must be a string"),
    ({"command": "x", "id": 1.5}, "id must be a string"),
    ({"command": "x", "delay": 5, "run_at": "+1m"}, "either delay or run_at"),
    ({"command": "x", "delay": "soon"}, "invalid delay"),
    ({"command": "x", "delay": -5}, "invalid delay"),
    ({"command": "x", "delay": [5]}, "delay must be seconds"),
    ({"command": "x", "timeout": "soon"}, "invalid timeout"),
    ({"command": "x", "timeout": -1}, "invalid timeout"),
    ({"command": "x", "timeout": {}}, "timeout must be seconds"),
    ({"command": "x", "timeout": True}, "invalid timeout"),
    ({"command": "x", "timeout": float("inf")}, "more than ten years"),
    ({"command": "x", "max_retries": -1}, "max_retries must be between 0 and 1000"),
    ({"command": "x", "max_retries": 1001}, "max_retries must be between 0 and 1000"),
    ({"command": "x", "max_retries": "three"}, "max_retries must be an integer"),
    ({"command": "x", "backoff_base": 0}, "backoff_base must be between"),
    ({"command": "x", "backoff_base": 0.5}, "backoff_base must be between"),
    ({"command": "x", "backoff_base": 1001}, "backoff_base must be between"),
    ({"command": "x", "backoff_base": float("nan")}, "backoff_base must be between"),
    ({"command": "x", "backoff_base": "two"}, "backoff_base must be a number"),
    ({"command": "x", "backoff_base": False}, "not a boolean"),
    ({"command": "x", "queue": "a b"}, "invalid queue name"),
    ({"command": "x", "queue": ""}, "invalid queue name"),
    ({"command": "x", "queue": "q" * 65}, "invalid queue name"),
    ({"command": "x", "queue": 5}, "invalid queue name"),
    ({"command": "x", "cwd": ""}, "cwd must be a non-empty string"),
    ({"command": "x", "cwd": 5}, "cwd must be a non-empty string"),
    ({"command": "x", "env": ["A=1"]}, "env must be an object"),
    ({"command": "x", "env": "A=1"}, "env must be an object"),
    ({"command": "x", "env": {"1X": "a"}}, "invalid environment variable"),
    ({"command": "x", "env": {"A-B": "a"}}, "invalid environment variable"),
    ({"command": "x", "env": {"A": None}}, "env value of A must be a string"),
    ({"command": "x", "env": {"A": True}}, "env value of A must be a string"),
    ({"command": "x", "env": {"A": {"b": 1}}}, "env value of A must be a string"),
    ({"command": "x", "unique_key": ""}, "unique_key must be a non-empty string"),
    ({"command": "x", "unique_key": 7}, "unique_key must be a non-empty string"),
    ({"command": "x", "after": "has space"}, "invalid job id"),
    ({"command": "x", "depends_on": [True]}, "id must be a string"),
    ({"command": "x", "run_at": "+99999999999d"}, "ten years"),
    ({"command": "x", "run_at": "+3651d"}, "ten years"),
    ({"command": "x", "delay": "3651d"}, "ten years"),
    ({"command": "x", "run_at": "1960-01-01T00:00:00Z"}, "before 1970"),
    ({"command": "x", "run_at": "tomorrow"}, "invalid time"),
    ({"command": "x", "run_at": True}, "invalid time"),
    ({"command": "x", "run_at": ["+5m"]}, "run_at must be a time"),
])
def test_rejections(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        build(fields, NOW)


def test_limits_are_inclusive() -> None:
    assert build({"command": "x", "id": "x" * 200}, NOW).id == "x" * 200
    assert build({"command": "x", "queue": "q" * 64}, NOW).queue == "q" * 64
    assert build({"command": "x", "max_retries": 1000}, NOW).max_retries == 1000
    assert build({"command": "x", "backoff_base": 1}, NOW).backoff_base == 1
    assert build({"command": "x", "run_at": "+3649d"}, NOW).run_at == NOW + 3649 * 86400
    assert build({"command": "x", "queue": "a_b.c:d-1"}, NOW).queue == "a_b.c:d-1"
    assert build({"command": "x", "id": "ünï-cödé/1"}, NOW).id == "ünï-cödé/1"


# -- parse_json_object ----------------------------------------------------------------

def test_json_objects_only() -> None:
    assert parse_json_object('{"command": "x"}') == {"command": "x"}
    assert parse_json_object(' {"a": {"b": [1, 2]}} \n') == {"a": {"b": [1, 2]}}


@pytest.mark.parametrize("text,message", [
    ('{"command": ', "invalid JSON: Expecting value (line 1 column 13)"),
    ('{"a":1} x', "invalid JSON: Extra data (line 1 column 9)"),
    ("", "invalid JSON: Expecting value (line 1 column 1)"),
    ("{'a': 1}", "invalid JSON"),
    ('{\n"a": 1,\n}', "(line 3 column 1)"),
    ('["x"]', "a job must be a JSON object, not list"),
    ("null", "a job must be a JSON object, not NoneType"),
    ('"echo hi"', "a job must be a JSON object, not str"),
    ("5", "a job must be a JSON object, not int"),
])
def test_bad_json(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_json_object(text)


@pytest.mark.parametrize("text,expected", [
    ('{"command": "x"}', True), ('  \n{"a":', True), ("echo {}", False),
    ('["x"]', False), ("", False),
])
def test_looks_like_json_object(text: str, expected: bool) -> None:
    assert looks_like_json_object(text) is expected


def test_json_text_to_job() -> None:
    job = build(parse_json_object('{"id":"job1","command":"sleep 2","priority":10,'
                                  '"run_at":"+5m"}'), NOW)
    assert (job.id, job.command, job.priority, job.run_at) == \
        ("job1", "sleep 2", 10, NOW + 300)


def test_a_forked_child_never_repeats_the_parents_next_ids() -> None:
    import os

    new_job_id()  # the pool now holds ids the parent will hand out next
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        os.write(write_end, " ".join(new_job_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_job_id() for _ in range(100)}
    assert len(child) == 100 and not child & parent
    assert all(UUID4.match(job_id) for job_id in child | parent)


def test_ids_from_many_threads_are_unique() -> None:
    import threading

    found: list[list[str]] = [[] for _ in range(4)]

    def draw(into: list[str]) -> None:
        into.extend(new_job_id() for _ in range(5000))

    threads = [threading.Thread(target=draw, args=(out,)) for out in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [job_id for out in found for job_id in out]
    assert len(set(everything)) == len(everything) == 20000
