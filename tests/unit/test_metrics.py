"""The pure parts of `metrics`: nearest-rank percentiles and the read horizon."""

from __future__ import annotations

import pytest

from queuectl.metrics import horizon, percentile


@pytest.mark.parametrize("values, p, expected", [
    ([], 50, None),
    ([7.0], 50, 7.0), ([7.0], 99, 7.0),
    ([float(n) for n in range(1, 11)], 50, 5.0),
    ([float(n) for n in range(1, 11)], 95, 10.0),
    ([float(n) for n in range(1, 11)], 90, 9.0),
    ([float(n) for n in range(1, 101)], 99, 99.0),
    ([float(n) for n in range(1, 101)], 1, 1.0),
    ([1.0, 2.0], 0, 1.0),
])
def test_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_the_horizon_covers_the_longest_span() -> None:
    assert horizon(10_000.0, 60.0) == 10_000.0 - 900.0  # the 15-minute throughput
    assert horizon(10_000.0, 3600.0) == 10_000.0 - 3600.0
