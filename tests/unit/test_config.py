"""Config keys, validation and precedence: flag > QUEUECTL_* env > stored > default
(SPEC 4)."""

from __future__ import annotations

import pytest

from queuectl.config import KEYS, Settings, canonical_key, check_together, to_text, validate
from queuectl.errors import ConfigError, InvalidInput

DEFAULTS = {
    "max-retries": 3, "backoff-base": 2, "backoff-max": 3600, "backoff-jitter": False,
    "job-timeout": 0, "worker-count": 1, "poll-interval": 2, "heartbeat-interval": 5,
    "lease-timeout": 30, "output-limit": 65536, "output-file-max": 0, "retention": 604800,
    "log-level": "INFO", "priority-aging": 0, "on-dead": "", "on-complete": "",
    "hook-timeout": 30,
    "retry-on": "", "no-retry-on": "",
}


# -- keys -----------------------------------------------------------------------------

def test_the_spec_keys_exist_with_their_defaults() -> None:
    assert set(KEYS) == set(DEFAULTS)
    for name, default in DEFAULTS.items():
        assert KEYS[name].default == default, name


def test_hooks_come_from_the_store_only() -> None:
    """The store's trigger picks the hook of an event: an environment variable or a
    flag of one process could not change it, so they do not pretend to."""
    settings = Settings({"on-dead": "notify"}, env={"QUEUECTL_ON_DEAD": "other",
                                                    "QUEUECTL_HOOK_TIMEOUT": "5"},
                        flags={"on-complete": "x"})
    assert (settings.on_dead, settings.source("on-dead")) == ("notify", "stored")
    assert (settings.on_complete, settings.source("on-complete")) == ("", "default")
    assert settings.hook_timeout == 5
    assert validate("on-dead", "  curl -d x url  ") == "curl -d x url"
    for bad in ("a\0b", "x" * 5000):
        with pytest.raises(ConfigError):
            validate("on-dead", bad)
    with pytest.raises(ConfigError):
        validate("hook-timeout", "0")


@pytest.mark.parametrize("text", ["max-retries", "max_retries", "MAX-RETRIES",
                                  "Max_Retries", " max-retries "])
def test_keys_accept_dash_underscore_and_case(text: str) -> None:
    assert canonical_key(text) == "max-retries"


def test_every_key_has_an_env_name() -> None:
    assert KEYS["max-retries"].env == "QUEUECTL_MAX_RETRIES"
    assert KEYS["backoff-jitter"].env == "QUEUECTL_BACKOFF_JITTER"
    assert len({key.env for key in KEYS.values()}) == len(KEYS)


@pytest.mark.parametrize("text", ["backoff", "retries", "", "max--retries", "db"])
def test_unknown_keys_list_the_valid_ones(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        canonical_key(text)
    message = str(caught.value)
    assert f"unknown config key {text!r}" in message
    assert "valid keys: " + ", ".join(sorted(KEYS)) in message
    assert isinstance(caught.value, InvalidInput) and caught.value.exit_code == 2


def test_validate_rejects_unknown_keys_too() -> None:
    with pytest.raises(ConfigError, match="valid keys: backoff-base"):
        validate("colour", "red")


# -- validation ---------------------------------------------------------------------

@pytest.mark.parametrize("key,value,typed", [
    ("max-retries", "5", 5), ("max_retries", "0", 0), ("max-retries", 7, 7),
    ("max-retries", 2.0, 2), ("max-retries", " 4 ", 4), ("max-retries", "1000", 1000),
    ("backoff-base", "3", 3), ("backoff-base", "1.5", 1.5), ("backoff-base", "1", 1),
    ("backoff-max", "60", 60), ("backoff-max", "5m", 300), ("backoff-max", "0.5", 0.5),
    ("backoff-jitter", "yes", True), ("backoff-jitter", "TRUE", True),
    ("backoff-jitter", "on", True), ("backoff-jitter", "1", True),
    ("backoff-jitter", "no", False), ("backoff-jitter", "off", False),
    ("backoff-jitter", "0", False), ("backoff-jitter", False, False),
    ("job-timeout", "0", 0), ("job-timeout", "90s", 90), ("job-timeout", "1h", 3600),
    ("worker-count", "4", 4), ("worker-count", "512", 512),
    ("poll-interval", "0.5", 0.5), ("poll-interval", "0.01", 0.01),
    ("heartbeat-interval", "2", 2), ("lease-timeout", "1m", 60),
    ("output-limit", "0", 0), ("output-limit", "1048576", 1048576),
    ("output-file-max", "0", 0), ("output-file-max", "10M", 10 << 20),
    ("output-file-max", "64KiB", 65536), ("output-file-max", 4096, 4096),
    ("retention", "7d", 604800), ("retention", "0", 0),
    ("log-level", "debug", "DEBUG"), ("log-level", " Warning ", "WARNING"),
])
def test_typed_values(key: str, value: object, typed: object) -> None:
    result = validate(key, value)
    assert result == typed and type(result) is type(typed)


@pytest.mark.parametrize("key,value", [
    ("max-retries", "-1"), ("max-retries", "abc"), ("max-retries", "1.5"),
    ("max-retries", 1.5), ("max-retries", True), ("max-retries", "1001"),
    ("max-retries", ""), ("backoff-base", "0.5"), ("backoff-base", "0"),
    ("backoff-base", "1001"), ("backoff-base", "nan"), ("backoff-base", "inf"),
    ("backoff-base", True), ("backoff-base", "two"), ("backoff-max", "0"),
    ("backoff-max", "-5"), ("backoff-max", "soon"), ("backoff-jitter", "maybe"),
    ("backoff-jitter", "2"), ("job-timeout", "-1"), ("job-timeout", "forever"),
    ("worker-count", "0"), ("worker-count", "513"), ("worker-count", "two"),
    ("poll-interval", "0"), ("poll-interval", "0.001"), ("poll-interval", "2h"),
    ("heartbeat-interval", "0"), ("lease-timeout", "-3"), ("lease-timeout", "0"),
    ("output-limit", "-1"), ("output-limit", "64k"), ("retention", "-1d"),
    ("output-file-max", "-1"), ("output-file-max", "1.5M"), ("output-file-max", "2T"),
    ("output-file-max", True), ("output-file-max", ""),
    ("log-level", "LOUD"), ("log-level", ""),
])
def test_bad_values(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(key, value)
    assert str(caught.value).startswith(f"invalid value {value!r} for {key}: ")
    assert caught.value.exit_code == 2


def test_bad_value_messages_say_what_is_expected() -> None:
    with pytest.raises(ConfigError, match="must be between 1 and 512"):
        validate("worker-count", "0")
    with pytest.raises(ConfigError, match="expected an integer"):
        validate("max-retries", "x")
    with pytest.raises(ConfigError, match="expected true or false"):
        validate("backoff-jitter", "maybe")
    with pytest.raises(ConfigError, match="must be > 0"):
        validate("backoff-max", "0")


@pytest.mark.parametrize("value,text", [
    (True, "true"), (False, "false"), (3, "3"), (1.5, "1.5"), ("INFO", "INFO"),
])
def test_to_text(value: object, text: str) -> None:
    assert to_text(value) == text


def test_every_default_survives_a_store_round_trip() -> None:
    for name, key in KEYS.items():
        assert validate(name, to_text(key.default)) == key.default, name


# -- precedence and sources -------------------------------------------------------

def test_all_defaults_with_nothing_set() -> None:
    s = Settings({}, {})
    for name, value, source in s.items():
        assert (value, source) == (DEFAULTS[name], "default"), name
    assert [name for name, _, _ in s.items()] == list(KEYS)


def test_precedence_flag_env_stored_default() -> None:
    stored = {"max-retries": "5", "backoff-base": "3", "job-timeout": "1"}
    env = {"QUEUECTL_BACKOFF_BASE": "4", "QUEUECTL_JOB_TIMEOUT": "9"}
    flags = {"job-timeout": 12}
    s = Settings(stored, env, flags)
    assert (s.max_retries, s.source("max-retries")) == (5, "stored")
    assert (s.backoff_base, s.source("backoff-base")) == (4, "env")
    assert (s.job_timeout, s.source("job-timeout")) == (12, "flag")
    assert (s.lease_timeout, s.source("lease-timeout")) == (30, "default")


@pytest.mark.parametrize("layers,expected", [
    ({}, (3, "default")),
    ({"stored": "5"}, (5, "stored")),
    ({"env": "6"}, (6, "env")),
    ({"flag": 7}, (7, "flag")),
    ({"stored": "5", "env": "6"}, (6, "env")),
    ({"stored": "5", "flag": 7}, (7, "flag")),
    ({"env": "6", "flag": 7}, (7, "flag")),
    ({"stored": "5", "env": "6", "flag": 7}, (7, "flag")),
])
def test_each_layer_wins_over_the_ones_below(layers: dict, expected: tuple) -> None:
    s = Settings({"max-retries": layers["stored"]} if "stored" in layers else {},
                 {"QUEUECTL_MAX_RETRIES": layers["env"]} if "env" in layers else {},
                 {"max-retries": layers["flag"]} if "flag" in layers else {})
    assert (s.max_retries, s.source("max-retries")) == expected
    assert (s["max_retries"], s.source("MAX_RETRIES")) == expected


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    monkeypatch.setenv("QUEUECTL_WORKER_COUNT", "6")
    s = Settings({"worker-count": "2"})
    assert (s.worker_count, s.source("worker-count")) == (6, "env")


def test_empty_env_values_and_none_flags_are_not_set() -> None:
    s = Settings({"max-retries": "5"}, {"QUEUECTL_MAX_RETRIES": ""},
                 {"max-retries": None})
    assert (s.max_retries, s.source("max-retries")) == (5, "stored")


def test_values_are_typed_whatever_the_layer() -> None:
    s = Settings({"backoff-jitter": "true", "retention": "1d"},
                 {"QUEUECTL_LOG_LEVEL": "debug", "QUEUECTL_JOB_TIMEOUT": "2m"},
                 {"backoff-max": "10m"})
    assert s.backoff_jitter is True and s.retention == 86400
    assert s.log_level == "DEBUG" and s.job_timeout == 120 and s.backoff_max == 600


def test_typed_accessors_match_items() -> None:
    s = Settings({}, {})
    accessors = {name: getattr(s, name.replace("-", "_")) for name in KEYS}
    assert accessors == {name: value for name, value, _ in s.items()}


def test_bad_stored_value_falls_back_to_the_default_and_says_so() -> None:
    s = Settings({"max-retries": "lots", "backoff-base": "3"}, {})
    assert s.max_retries == 3
    assert s.source("max-retries") == "default"
    assert (s.backoff_base, s.source("backoff-base")) == (3, "stored")


def test_bad_env_or_flag_value_is_an_error() -> None:
    with pytest.raises(ConfigError, match="for max-retries"):
        Settings({}, {"QUEUECTL_MAX_RETRIES": "x"})
    with pytest.raises(ConfigError, match="for worker-count"):
        Settings({}, {}, {"worker-count": 0})


def test_unknown_queuectl_env_variables_are_ignored() -> None:
    s = Settings({}, {"QUEUECTL_DB": "/tmp/x.db", "QUEUECTL_NOPE": "1"})
    assert all(source == "default" for _, _, source in s.items())


def test_lookup_of_an_unknown_key_is_a_config_error() -> None:
    s = Settings({}, {})
    with pytest.raises(ConfigError):
        s["nope"]
    with pytest.raises(ConfigError):
        s.source("nope")


def test_lease_timeout_is_checked_against_the_heartbeat() -> None:
    values = dict(DEFAULTS)
    check_together(values)
    check_together(dict(values, **{"lease-timeout": 10}))  # exactly twice is enough
    with pytest.raises(ConfigError, match="at least twice heartbeat-interval"):
        check_together(dict(values, **{"lease-timeout": 9.9}))
    with pytest.raises(ConfigError, match="lease-timeout"):
        check_together(dict(values, **{"heartbeat-interval": 16}))
