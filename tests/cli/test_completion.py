"""`queuectl completion SHELL`: the scripts, and the dynamic values they complete, run
through a real bash with the script loaded (as a user's ~/.bashrc would) and through
click's completion protocol (what zsh and fish call)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

BIN = os.path.dirname(sys.executable)  # the venv's bin: where `queuectl` is


def bash_complete(db: str, *words: str) -> list[str]:
    """What Tab offers in bash after `queuectl --db DB WORDS` (the last one being typed)."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    line = ["queuectl", "--db", db, *words]
    script = ('eval "$(queuectl completion bash)"; COMP_WORDS=("$@"); '
              'COMP_CWORD=$(( $# - 1 )); _queuectl_completion queuectl; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run(["bash", "-c", script, "bash", *line], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture
def jobs_db(store_url: str) -> str:
    for job_id in ("alpha-one", "alpha-two", "beta-1"):
        assert run_cli("enqueue", "--id", job_id, "--queue", "nightly", "true",
                       db=store_url).returncode == 0
    return store_url


@pytest.mark.parametrize("shell, needle", [("bash", "complete -o"), ("zsh", "compdef"),
                                           ("fish", "complete --no-files")])
def test_scripts(shell: str, needle: str) -> None:
    done = run_cli("completion", shell)
    assert done.returncode == 0, done.stderr
    assert "_QUEUECTL_COMPLETE" in done.stdout and needle in done.stdout


def test_unknown_shell_is_a_usage_error() -> None:
    done = run_cli("completion", "tcsh")
    assert done.returncode == 2
    assert done.stderr.startswith("queuectl: error: ") and "tcsh" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_help_says_how_to_install() -> None:
    text = run_cli("completion", "--help").stdout
    assert 'eval "$(queuectl completion bash)"' in text


def test_bash_completes_ids_states_queues_keys(jobs_db: str) -> None:
    assert bash_complete(jobs_db, "show", "alp") == ["alpha-one", "alpha-two"]
    assert bash_complete(jobs_db, "dlq", "retry", "--job-id", "be") == ["beta-1"]
    assert bash_complete(jobs_db, "list", "--state", "p") == ["pending", "processing"]
    assert bash_complete(jobs_db, "list", "--queue", "n") == ["nightly"]
    assert bash_complete(jobs_db, "config", "get", "backoff-b") == ["backoff-base"]
    assert "status" in bash_complete(jobs_db, "st")
    assert bash_complete(jobs_db, "worker", "st") == ["start", "status", "stop"]


def test_completion_never_creates_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    assert bash_complete(str(missing), "show", "a") == []
    assert not missing.exists()


def test_zsh_protocol_gives_ids_with_their_type(jobs_db: str) -> None:
    env = {"_QUEUECTL_COMPLETE": "zsh_complete",
           "COMP_WORDS": f"queuectl --db {jobs_db} cancel alpha-t", "COMP_CWORD": "4"}
    done = run_cli(env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["plain", "alpha-two"]
