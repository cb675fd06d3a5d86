"""The CLI suite runs against both stores: `cli` is parametrised over SQLite and
PostgreSQL (tests that need a file, e.g. a corrupt one, use `sqlite_url`)."""

from __future__ import annotations

import subprocess
from typing import Any, Callable

import pytest

from tests.conftest import run_cli


@pytest.fixture
def cli(store_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def call(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, db=store_url, **kwargs)
    return call
