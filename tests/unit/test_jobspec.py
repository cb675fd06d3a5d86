"""Turning user input into a NewJob: every problem is an InvalidInput naming the field."""

from __future__ import annotations

import pytest

from queuectl.errors import InvalidInput
from queuectl.jobspec import build, parse_json_object

NOW = 1_700_000_000.0


def test_minimal_job_gets_defaults_and_a_uuid() -> None:
    job = build({"command": "echo hi"}, NOW)
    assert job.command == "echo hi" and job.priority == 5 and job.queue == "default"
    assert job.id and len(job.id) == 36 and job.run_at is None
    assert job.max_retries is None and job.timeout is None  # follow the config


def test_every_field() -> None:
    job = build({"id": "job1", "command": "x", "priority": 8, "run_at": "+5m",
                 "timeout": "30s", "max-retries": 2, "backoff_base": 1.5, "queue": "mail",
                 "cwd": "/tmp", "env": {"A": "1", "B": 2}, "unique_key": "k"}, NOW)
    assert (job.id, job.priority, job.run_at, job.timeout) == ("job1", 8, NOW + 300, 30)
    assert (job.max_retries, job.backoff_base, job.queue) == (2, 1.5, "mail")
    assert job.env == {"A": "1", "B": "2"} and job.unique_key == "k"


def test_s1_job_json_with_initial_state_is_accepted() -> None:
    job = build({"id": "a", "command": "x", "state": "pending", "attempts": 0,
                 "created_at": "2025-11-04T10:30:00Z"}, NOW)
    assert job.id == "a"


@pytest.mark.parametrize("fields,message", [
    ({}, "needs a command"),
    ({"command": ""}, "command is empty"),
    ({"command": 5}, "command must be a string"),
    ({"command": "x", "priority": 11}, "priority must be between 1 and 10"),
    ({"command": "x", "priority": "high"}, "priority must be an integer"),
    ({"command": "x", "priority": True}, "not a boolean"),
    ({"command": "x", "colour": "red"}, "unknown job field 'colour'"),
    ({"command": "x", "state": "dead"}, "set by queuectl"),
    ({"command": "x", "id": "has space"}, "invalid job id"),
    ({"command": "x", "delay": 5, "run_at": "+1m"}, "either delay or run_at"),
    ({"command": "x", "timeout": "soon"}, "invalid timeout"),
    ({"command": "x", "max_retries": -1}, "max_retries must be between"),
    ({"command": "x", "backoff_base": 0}, "backoff_base must be between"),
    ({"command": "x", "queue": "a b"}, "invalid queue name"),
    ({"command": "x", "env": {"1X": "a"}}, "invalid environment variable"),
    ({"command": "x", "run_at": "+99999999999d"}, "ten years"),
    ({"command": "a\x00b"}, "NUL"),
])
def test_rejections(fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        build(fields, NOW)


def test_json_objects_only() -> None:
    assert parse_json_object('{"command": "x"}') == {"command": "x"}
    with pytest.raises(InvalidInput, match="invalid JSON"):
        parse_json_object('{"command": ')
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        parse_json_object('["x"]')
