"""The whole of src/ type-checks clean with mypy (the backend Protocol is the store
contract: a call the worker or the CLI makes that it does not declare fails here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean_over_src() -> None:
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed (it is in the test extras)")
    cache = ROOT / ".mypy_cache"
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
