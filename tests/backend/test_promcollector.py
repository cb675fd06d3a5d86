"""QueueCollector: the Prometheus text exposition of a store, parsed back with
prometheus_client's own parser, matches the store built with known runs (the store
of test_metrics, both stores, an injected clock); its counters only grow, each run
counted once, late-recorded runs included."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from queuectl.promcollector import QueueCollector, exposition
from queuectl.states import JobState
from tests.backend.test_metrics import NOW, Store, build, store  # noqa: F401 - fixture

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def scrape(registry: CollectorRegistry) -> Samples:
    return samples(generate_latest(registry).decode())


def test_exposition_matches_the_store(store: Store) -> None:  # noqa: F811
    build(store)
    text = exposition(store.q).decode()
    found = samples(text)
    runs = "queuectl_runs_total"
    for queue, outcome, n in (("default", "completed", 6), ("default", "failed", 3),
                              ("default", "dead", 1), ("default", "cancelled", 1),
                              ("default", "timeout", 1), ("mail", "completed", 1),
                              ("mail", "failed", 0), ("mail", "dead", 0)):
        assert value(found, runs, queue=queue, outcome=outcome) == n, (queue, outcome)
    duration = "queuectl_run_duration_seconds"
    assert value(found, duration, queue="default", quantile="0.5") == 4.0
    assert value(found, duration, queue="default", quantile="0.95") == 170.0
    assert value(found, duration, queue="default", quantile="0.99") == 170.0
    assert value(found, f"{duration}_count", queue="default") == 10
    assert value(found, f"{duration}_sum", queue="default") == \
        1 + 2 + 3 + 4 + 10 + 5 + 0.5 + 7 + 6 + 170
    assert value(found, f"{duration}_count", queue="mail") == 1
    counts = store.q.backend.counts()
    for state in JobState:
        assert value(found, "queuectl_jobs", state=state.value) == counts[state]
    assert value(found, "queuectl_queue_jobs", queue="mail", state="pending") == 1
    assert value(found, "queuectl_queue_jobs", queue="mail", state="scheduled") == 1
    assert value(found, "queuectl_queue_jobs", queue="default", state="processing") == 1
    assert value(found, "queuectl_oldest_waiting_age_seconds", queue="mail") == 50.0
    assert ("queuectl_oldest_waiting_age_seconds", (("queue", "default"),)) not in found
    assert (value(found, "queuectl_workers"), value(found, "queuectl_slots"),
            value(found, "queuectl_busy_slots")) == (2, 6, 1)
    one = samples(exposition(store.q, queue_name="mail").decode())
    assert value(one, runs, queue="mail", outcome="completed") == 1
    assert not any(name == "queuectl_jobs" or dict(labels).get("queue") == "default"
                   for name, labels in one)


def test_counters_grow_by_each_run_once(store: Store) -> None:  # noqa: F811
    build(store)
    registry = CollectorRegistry(auto_describe=False)
    collector = QueueCollector(store.q)
    registry.register(collector)
    completed = ("queuectl_runs_total", (("outcome", "completed"), ("queue", "default")))
    count = ("queuectl_run_duration_seconds_count", (("queue", "default"),))
    first = scrape(registry)
    assert (first[completed], first[count]) == (6, 10)
    store.add("late", NOW + 3)
    job = store.claim("late", NOW + 3)
    store.time = NOW + 10
    assert scrape(registry)[completed] == 6  # nothing new: nothing counted twice
    # a run that ended before that scrape but was recorded after it counts, once
    store.finish(job, NOW + 15, ended=NOW + 5)
    store.time = NOW + 20
    store.run("next", NOW + 20, NOW + 20, NOW + 22)
    later = scrape(registry)
    assert (later[completed], later[count]) == (8, 12)
    store.time = NOW + 7200  # the first runs left the window: a counter does not fall
    assert scrape(registry)[completed] == 8
    # the window's quantiles are gauges of the window: none left now
    assert ("queuectl_run_duration_seconds",
            (("quantile", "0.5"), ("queue", "default"))) not in scrape(registry)


def test_registering_reads_nothing(tmp_path: Any) -> None:
    from queuectl.queue import Queue

    url = str(tmp_path / "never-opened.db")
    registry = CollectorRegistry()  # auto_describe on: describe() is called
    registry.register(QueueCollector(Queue(url)))
    assert not (tmp_path / "never-opened.db").exists()


def test_the_one_scrape_text_is_what_prometheus_client_writes(store: Store) -> None:  # noqa: F811
    build(store)
    store.run("big", NOW - 100, NOW - 90, NOW - 89.5)  # more values to format
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(store.q, once=True))
    assert exposition(store.q) == generate_latest(registry)
    assert exposition(store.q, queue_name="mail") == generate_latest(
        _one_queue_registry(store, "mail"))


def _one_queue_registry(store: Store, name: str) -> CollectorRegistry:  # noqa: F811
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(store.q, queue_name=name, once=True))
    return registry


def test_sample_values_are_formatted_as_prometheus_client_does() -> None:
    from prometheus_client.utils import floatToGoString

    from queuectl.promcollector import _number

    for value in (0, 1, 0.5, 3.14159, 123456.0, 1234567.0, 1e21, 2.5e-7, float("inf"),
                  float("-inf"), -1234567.0, 10 ** 9):
        assert _number(value) == floatToGoString(value), value
