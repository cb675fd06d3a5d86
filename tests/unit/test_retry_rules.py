"""Retry rules by exit code and signal (queuectl.retryrules) and how decide() applies
them: parsing, matching, layer precedence, and the decision."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from queuectl.config import Settings
from queuectl.errors import InvalidInput
from queuectl.models import Job, Outcome
from queuectl.retry import decide
from queuectl.retryrules import (
    NO_POLICY,
    Failure,
    Policy,
    Rules,
    failure_of,
    parse_term,
    parse_terms,
    resolve,
    rules_from_input,
)
from queuectl.states import JobState

NOW = 1_700_000_000.0


def run(exit_code: int | None = 1, sig: int | None = None, timed_out: bool = False,
        spawn_error: str | None = None) -> Outcome:
    return Outcome(exit_code=exit_code, signal=sig, timed_out=timed_out,
                   spawn_error=spawn_error, output_tail="boom\n", started_at=NOW - 1,
                   finished_at=NOW)


def job(attempts: int = 1, **fields: object) -> Job:
    return Job(id="j", command="x", state=JobState.PROCESSING, attempts=attempts,
               **fields)  # type: ignore[arg-type]


def policy(job_rules: Rules | None = None, queue: Rules | None = None,
           config: Rules | None = None) -> Policy:
    return resolve(job_rules, queue, config)


SETTINGS = Settings(stored={}, env={})


# -- terms ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,canonical", [
    ("75", "75"), (" 2 ", "2"), ("64-78", "64-78"), ("5-5", "5"), ("SIGKILL", "SIGKILL"),
    ("KILL", "SIGKILL"), ("kill", "SIGKILL"), ("sigterm", "SIGTERM"), ("timeout", "timeout"),
    ("TIMEOUT", "timeout"), ("spawn-error", "spawn-error"), ("any", "any"), ("255", "255"),
    ("1", "1"), ("SIGINT", "SIGINT"),
])
def test_terms_parse_to_their_canonical_text(text: str, canonical: str) -> None:
    assert parse_term(text).text == canonical


@pytest.mark.parametrize("text", [
    "0", "256", "-1", "78-64", "1-", "-5", "1--2", "SIGNOPE", "NOPE", "", "7.5", "x-y",
    "1-2-3", "timeouts", "0-5",
])
def test_bad_terms_are_refused_with_one_line(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_term(text)
    assert "\n" not in str(info.value) and "retry term" in str(info.value)


def test_term_lists_from_strings_and_lists() -> None:
    assert parse_terms("75,SIGKILL,timeout") == ("75", "SIGKILL", "timeout")
    assert parse_terms([75, "KILL", "64-78"]) == ("75", "SIGKILL", "64-78")
    assert parse_terms("2,2,INT,SIGINT") == ("2", "SIGINT")  # duplicates go
    assert parse_terms(3) == ("3",)
    for bad in ("", "1,,2", "1,", [], [True], None, True, {"a": 1}, [1.5]):
        with pytest.raises(InvalidInput):
            parse_terms(bad)


def test_rules_round_trip_through_their_stored_shape() -> None:
    rules = rules_from_input("75,KILL", "2")
    assert rules.to_json() == {"retry_on": ["75", "SIGKILL"], "no_retry_on": ["2"]}
    assert Rules.from_json(rules.to_json()) == rules
    assert Rules().to_json() is None
    assert rules_from_input(no_retry_on="126,127").to_json() == {"no_retry_on": ["126",
                                                                                  "127"]}
    # a damaged stored value is no rule, never an error on a worker
    assert Rules.from_json({"retry_on": ["nope"]}) == Rules()
    assert Rules.from_json("garbage") == Rules()
    assert Rules.from_json(None) == Rules()


# -- failures -------------------------------------------------------------------------

def test_each_failure_has_exactly_one_kind() -> None:
    assert failure_of(run(3)) == Failure("exit", 3)
    assert failure_of(run(None, sig=signal.SIGKILL)) == Failure("signal", 9)
    # killed by its timeout: a timeout, whatever signal ended it
    assert failure_of(run(None, sig=signal.SIGTERM, timed_out=True)) == Failure("timeout")
    assert failure_of(run(None, spawn_error="no such dir")) == Failure("spawn-error")
    assert failure_of(run(None, timed_out=True, spawn_error="x")) == Failure("spawn-error")


@given(st.integers(1, 255), st.integers(1, 255), st.integers(1, 255))
def test_a_range_matches_exactly_its_codes(a: int, b: int, code: int) -> None:
    lo, hi = min(a, b), max(a, b)
    term = parse_term(f"{lo}-{hi}")
    assert term.matches(Failure("exit", code)) is (lo <= code <= hi)
    assert not term.matches(Failure("signal", code))
    assert not term.matches(Failure("timeout"))


def test_signal_terms_match_that_signal_only() -> None:
    kill = parse_term("KILL")
    assert kill.matches(Failure("signal", 9))
    assert not kill.matches(Failure("signal", 15))
    assert not kill.matches(Failure("exit", 9))
    assert not kill.matches(Failure("exit", 137))  # the shell's 128+9 is an exit code
    assert parse_term("any").matches(Failure("timeout"))


# -- layers ---------------------------------------------------------------------------

def test_no_rules_means_no_say() -> None:
    assert policy() is NO_POLICY
    assert NO_POLICY.verdict(Failure("exit", 1)) is None
    assert policy(Rules(), Rules(), Rules()).layers == ()


def test_no_retry_on_wins_over_retry_on_in_the_same_layer() -> None:
    p = policy(rules_from_input("64-78", "75"))
    assert p.verdict(Failure("exit", 75)) == (False, "no-retry-on 75 (job)", "job")
    assert p.verdict(Failure("exit", 70)) == (True, "retry-on 64-78 (job)", "job")
    assert p.verdict(Failure("exit", 1)) == (False, "not in retry-on 64-78 (job)", "job")


def test_the_most_specific_layer_with_a_say_decides() -> None:
    config = rules_from_input(no_retry_on="2")
    queue = rules_from_input(retry_on="2,SIGKILL")
    job_rules = rules_from_input(no_retry_on="SIGKILL")
    p = policy(job_rules, queue, config)
    assert [source for source, _ in p.layers] == ["job", "queue", "config"]
    assert p.verdict(Failure("signal", 9)).rule == "no-retry-on SIGKILL (job)"  # type: ignore[union-attr]
    # the job's no-retry-on has no say about exit 2: the queue's retry-on does
    assert p.verdict(Failure("exit", 2)).rule == "retry-on 2 (queue)"  # type: ignore[union-attr]
    # the queue's allow-list is decisive for what it does not name
    assert p.verdict(Failure("exit", 3)).rule == \
        "not in retry-on 2,SIGKILL (queue)"  # type: ignore[union-attr]
    # without the queue's rules, the config's say
    assert policy(job_rules, None, config).verdict(Failure("exit", 2)).rule == \
        "no-retry-on 2 (config)"  # type: ignore[union-attr]
    assert policy(job_rules, None, config).verdict(Failure("exit", 3)) is None


def test_a_job_can_widen_a_queue_allow_list_with_any() -> None:
    p = policy(rules_from_input("any"), rules_from_input("75"))
    assert p.verdict(Failure("timeout")) == (True, "retry-on any (job)", "job")


def test_resolve_reads_the_stored_json_of_a_job() -> None:
    p = resolve({"no_retry_on": ["2"]}, None, None)
    assert p.verdict(Failure("exit", 2)) == (False, "no-retry-on 2 (job)", "job")


# -- the decision ---------------------------------------------------------------------

def test_a_failure_the_rules_refuse_is_dead_on_its_first_attempt() -> None:
    d = decide(job(1), run(2), SETTINGS, NOW, policy=policy(rules_from_input(
        no_retry_on="2,126,127")))
    assert d.state is JobState.DEAD and d.run_at is None
    assert d.rule == "no-retry-on 2 (job)"
    assert d.error == "exit code 2: boom (not retried: no-retry-on 2 (job))"


def test_a_failure_the_rules_allow_retries_with_backoff_and_names_the_rule() -> None:
    d = decide(job(2), run(75), SETTINGS, NOW, policy=policy(queue=rules_from_input("75")))
    assert d.state is JobState.FAILED and d.run_at == NOW + 4
    assert d.rule == "retry-on 75 (queue)"
    assert d.error == "exit code 75: boom"


def test_retry_on_still_counts_against_max_retries() -> None:
    p = policy(rules_from_input("75"))
    d = decide(job(4), run(75), SETTINGS, NOW, policy=p)
    assert d.state is JobState.DEAD and d.rule == "retry-on 75 (job)"
    assert d.error == "exit code 75: boom"


def test_not_in_the_allow_list_is_dead() -> None:
    d = decide(job(1), run(None, sig=signal.SIGTERM), SETTINGS, NOW,
               policy=policy(config=rules_from_input("75,timeout")))
    assert d.state is JobState.DEAD
    assert d.rule == "not in retry-on 75,timeout (config)"


def test_timeouts_and_spawn_errors_have_their_terms() -> None:
    p = policy(rules_from_input(no_retry_on="timeout,spawn-error"))
    assert decide(job(1), run(None, timed_out=True), SETTINGS, NOW, policy=p).state \
        is JobState.DEAD
    assert decide(job(1), run(None, spawn_error="fork failed"), SETTINGS, NOW,
                  policy=p).state is JobState.DEAD
    assert decide(job(1), run(1), SETTINGS, NOW, policy=p).state is JobState.FAILED


def test_success_ignores_the_rules() -> None:
    p = policy(rules_from_input("75", "any"))
    assert decide(job(1), run(0), SETTINGS, NOW, policy=p).state is JobState.COMPLETED


def test_a_permanent_spawn_error_is_dead_even_when_the_rules_allow_it() -> None:
    outcome = Outcome(spawn_error="no such directory", spawn_permanent=True)
    d = decide(job(1), outcome, SETTINGS, NOW, policy=policy(rules_from_input("any")))
    assert d.state is JobState.DEAD and "a retry cannot succeed" in (d.error or "")


def test_config_keys_validate_and_feed_the_rules() -> None:
    s = Settings(stored={"retry-on": "75,SIGKILL", "no-retry-on": "2"}, env={})
    assert s.retry_rules == Rules(("75", "SIGKILL"), ("2",))
    assert Settings(stored={}, env={}).retry_rules == Rules()
    from queuectl.config import validate
    from queuectl.errors import ConfigError

    assert validate("retry-on", "kill,64-78") == "SIGKILL,64-78"
    with pytest.raises(ConfigError):
        validate("no-retry-on", "0")


OUTCOMES = st.one_of(
    st.builds(run, st.integers(0, 255)),
    st.builds(run, st.none(), st.sampled_from([int(s) for s in signal.Signals])),
    st.builds(run, st.none(), st.none(), st.just(True)),
    st.builds(run, st.none(), st.none(), st.just(False), st.just("fork failed")),
)
TERMS = st.lists(st.sampled_from(["1", "2", "64-78", "75", "126-127", "SIGKILL",
                                  "SIGTERM", "timeout", "spawn-error", "any"]),
                 min_size=1, max_size=4)
RULES = st.builds(lambda a, b: Rules(None if a is None else parse_terms(a),
                                     None if b is None else parse_terms(b)),
                  st.none() | TERMS, st.none() | TERMS)


@given(OUTCOMES, st.integers(1, 10), st.integers(0, 6), RULES, RULES, RULES)
def test_decisions_are_consistent_with_the_rules(outcome: Outcome, attempts: int,
                                                 max_retries: int, own: Rules,
                                                 queue: Rules, config: Rules) -> None:
    """For any outcome, attempt and rules: success completes; a rule that refuses makes
    it dead; otherwise it is retried exactly while attempts allow it."""
    p = resolve(own, queue, config)
    d = decide(job(attempts, max_retries=max_retries), outcome, SETTINGS, NOW, policy=p)
    if outcome.ok:
        assert d.state is JobState.COMPLETED and d.rule is None
        return
    verdict = p.verdict(failure_of(outcome))
    if verdict is not None and not verdict.retry:
        assert d.state is JobState.DEAD and d.rule == verdict.rule
        assert (d.error or "").endswith(f"(not retried: {verdict.rule})")
        return
    assert d.rule == (verdict.rule if verdict else None)
    if attempts >= 1 + max_retries:
        assert d.state is JobState.DEAD
    else:
        assert d.state is JobState.FAILED and d.run_at == NOW + 2.0 ** attempts
    # the rules only ever take retries away: without them the job is never deader
    plain = decide(job(attempts, max_retries=max_retries), outcome, SETTINGS, NOW)
    assert plain.state == d.state


# -- retry --explain (pure, with the clock passed in) -------------------------------------

def _failed(attempts: int, **fields: object) -> Job:
    entry = {"attempt": attempts, "result": "failed", "exit_code": 75, "error": "exit 75"}
    return Job(id="j", command="x", state=JobState.FAILED, attempts=attempts,
               run_at=NOW + 4, history=[entry], **fields)  # type: ignore[arg-type]


def test_explain_a_failed_job_next_runs_capped_with_sources() -> None:
    from queuectl.retry import explain

    s = Settings(stored={"backoff-max": "10", "max-retries": "5"}, env={})
    report = explain(_failed(2, retry_policy={"retry_on": ["75"]}), s,
                     {"no_retry_on": ["75"]}, NOW)
    assert report["max_retries"] == {"value": 5, "source": "config"}
    assert report["backoff_max"] == {"value": 10, "source": "config"}
    assert report["backoff_jitter"] == {"value": False, "source": "default"}
    # the job's retry-on wins over its queue's no-retry-on
    assert report["last_failure"]["decision"] == "retry"
    assert report["last_failure"]["rule"] == "retry-on 75 (job)"
    # runs 3..6: the due retry at run_at (after a 4 s wait), then 8, capped 10, 10
    runs = report["next_runs"]
    assert [(r["run"], r["wait_s"], r["at"]) for r in runs] == [
        (3, 4, NOW + 4), (4, 8, NOW + 12), (5, 10, NOW + 22), (6, 10, NOW + 32)]
    assert report["jitter"] == "exact: backoff-jitter is off"
    assert report["default"] is None


def test_explain_notes_jitter_the_env_and_the_default() -> None:
    from queuectl.retry import explain

    s = Settings(stored={}, env={"QUEUECTL_BACKOFF_JITTER": "1"})
    report = explain(Job(id="j", command="x", state=JobState.PENDING, run_at=NOW - 5),
                     s, None, NOW)
    assert report["backoff_jitter"] == {"value": True, "source": "env"}
    assert "up to 25% shorter" in report["jitter"]
    assert report["last_failure"] is None
    assert report["default"].startswith("every failure is retried")
    assert [(r["run"], r["at"]) for r in report["next_runs"]] == [
        (1, NOW), (2, NOW + 2), (3, NOW + 6), (4, NOW + 14)]


def test_explain_lists_a_bounded_number_of_runs() -> None:
    from queuectl.retry import EXPLAIN_RUNS, explain

    report = explain(Job(id="j", command="x", state=JobState.DEAD, attempts=1,
                         max_retries=1000), SETTINGS, None, NOW)
    assert len(report["next_runs"]) == EXPLAIN_RUNS
    assert report["more_runs"] == 1001 - EXPLAIN_RUNS
