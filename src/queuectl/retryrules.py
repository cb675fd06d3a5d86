"""Retry rules by exit code and signal: which failures are worth a retry.

Pure: parsing and matching only, no I/O and no clock.  A rule set (`Rules`) has two
lists of terms, `retry_on` (only these failures are retried) and `no_retry_on` (these
are not); it is set per job, per queue and in the config.  A `Policy` is the three
layers, most specific first: the first layer that has a say about a failure decides.

Terms: an exit code (`75`) or a range (`64-78`), a signal by name (`SIGKILL`, also
`KILL`, any case), `timeout`, `spawn-error` (the command could not be started) and
`any`.  A failure is exactly one of: spawn-error, timeout, a signal, an exit code (a
run killed by its timeout is a `timeout`, not a SIGTERM/SIGKILL).
"""

from __future__ import annotations

import signal as _signal
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from queuectl.errors import InvalidInput
from queuectl.models import Outcome

TIMEOUT, SPAWN_ERROR, ANY = "timeout", "spawn-error", "any"
#: where a layer comes from, most specific first
SOURCES = ("job", "queue", "config")
#: the two lists, as JSON keys and as option names
KEYS = ("retry_on", "no_retry_on")

_SIGNALS = {s.name: int(s) for s in _signal.Signals if not s.name.startswith("SIG_")}
_SIGNAL_NAMES = {num: name for name, num in sorted(_SIGNALS.items(), reverse=True)}


class Term(NamedTuple):
    """One parsed term: kind is "exit" (lo..hi), "signal" (lo), "timeout",
    "spawn-error" or "any"."""

    kind: str
    lo: int = 0
    hi: int = 0

    @property
    def text(self) -> str:
        if self.kind == "exit":
            return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"
        if self.kind == "signal":
            return _SIGNAL_NAMES.get(self.lo, f"SIG{self.lo}")
        return self.kind

    def matches(self, failure: "Failure") -> bool:
        if self.kind == ANY:
            return True
        if self.kind != failure.kind:
            return False
        if self.kind == "exit":
            return self.lo <= failure.value <= self.hi
        if self.kind == "signal":
            return self.lo == failure.value
        return True


class Failure(NamedTuple):
    """What kind of failure a run was: exit (value = code), signal (value = number),
    timeout or spawn-error."""

    kind: str
    value: int = 0

    @property
    def text(self) -> str:
        if self.kind == "exit":
            return f"exit code {self.value}"
        if self.kind == "signal":
            return _SIGNAL_NAMES.get(self.value, f"signal {self.value}")
        return self.kind


def failure_of(outcome: Outcome) -> Failure:
    """The kind of a failed run (the outcome is not ok)."""
    if outcome.spawn_error is not None:
        return Failure(SPAWN_ERROR)
    if outcome.timed_out:
        return Failure(TIMEOUT)
    if outcome.signal is not None:
        return Failure("signal", int(outcome.signal))
    return Failure("exit", int(outcome.exit_code if outcome.exit_code is not None else 1))


@lru_cache(maxsize=512)
def parse_term(text: str) -> Term:
    """One term, or InvalidInput saying what a term may be."""
    word = str(text).strip()
    low = word.lower()
    if low in (TIMEOUT, SPAWN_ERROR, ANY):
        return Term(low)
    if low.replace("-", "").isdigit() and low.count("-") <= 1 and \
            not low.startswith("-") and not low.endswith("-"):
        lo_text, _, hi_text = low.partition("-")
        lo, hi = int(lo_text), int(hi_text or lo_text)
        if not 1 <= lo <= 255 or not 1 <= hi <= 255:
            raise InvalidInput(f"bad retry term {word!r}: exit codes are 1 to 255 "
                               "(0 is success)")
        if lo > hi:
            raise InvalidInput(f"bad retry term {word!r}: a range goes low-high")
        return Term("exit", lo, hi)
    name = word.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name in _SIGNALS:
        return Term("signal", _SIGNALS[name])
    raise InvalidInput(f"bad retry term {word!r}: expected an exit code (75), a range "
                       "(64-78), a signal name (SIGKILL or KILL), timeout, spawn-error "
                       "or any")


def parse_terms(value: Any) -> tuple[str, ...]:
    """Canonical term texts of a comma-separated string or a list of terms (exit codes
    may be numbers); InvalidInput for a bad or empty one.  Duplicates go."""
    if isinstance(value, bool) or value is None:
        raise InvalidInput("retry terms must be a comma-separated string or a list")
    if isinstance(value, (str, int)):
        items: Sequence[Any] = str(value).split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise InvalidInput("retry terms must be a comma-separated string or a list")
    out: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise InvalidInput(f"bad retry term {item!r}")
        if isinstance(item, str) and item.strip() == "":
            raise InvalidInput("empty retry term (terms are separated by single commas)")
        text = parse_term(str(item)).text
        if text not in out:
            out.append(text)
    if not out:
        raise InvalidInput("no retry terms given")
    return tuple(out)


@dataclass(frozen=True)
class Rules:
    """One layer's lists of canonical terms; None = this layer does not set it."""

    retry_on: Optional[tuple[str, ...]] = None
    no_retry_on: Optional[tuple[str, ...]] = None

    @property
    def empty(self) -> bool:
        return self.retry_on is None and self.no_retry_on is None

    def to_json(self) -> Optional[dict[str, list[str]]]:
        """The stored shape (None when the layer sets nothing)."""
        if self.empty:
            return None
        out: dict[str, list[str]] = {}
        if self.retry_on is not None:
            out["retry_on"] = list(self.retry_on)
        if self.no_retry_on is not None:
            out["no_retry_on"] = list(self.no_retry_on)
        return out

    @classmethod
    def from_json(cls, data: Any) -> "Rules":
        """From the stored shape; anything unreadable is no rule (a worker must not
        stop over a bad stored value)."""
        if not isinstance(data, Mapping):
            return NO_RULES
        lists: dict[str, Optional[tuple[str, ...]]] = {}
        for key in KEYS:
            raw = data.get(key)
            try:
                lists[key] = None if raw is None else parse_terms(raw)
            except InvalidInput:
                lists[key] = None
        return cls(lists["retry_on"], lists["no_retry_on"])


NO_RULES = Rules()


def rules_from_input(retry_on: Any = None, no_retry_on: Any = None) -> Rules:
    """Validated rules from user input (InvalidInput on a bad term)."""
    return Rules(None if retry_on is None else parse_terms(retry_on),
                 None if no_retry_on is None else parse_terms(no_retry_on))


class Verdict(NamedTuple):
    """What the rules say about one failure."""

    retry: bool
    rule: str  # "no-retry-on 2 (job)", "retry-on 75 (queue)", "not in retry-on 75 (config)"
    source: str  # job, queue or config


def _first_match(terms: tuple[str, ...], failure: Failure) -> Optional[str]:
    for text in terms:
        if parse_term(text).matches(failure):
            return text
    return None


@dataclass(frozen=True)
class Policy:
    """The layers that apply to a job, most specific first: (source, rules)."""

    layers: tuple[tuple[str, Rules], ...] = ()

    @property
    def empty(self) -> bool:
        return all(rules.empty for _, rules in self.layers)

    def verdict(self, failure: Failure) -> Optional[Verdict]:
        """The first layer with a say decides: a matching no-retry-on term (it wins
        over retry-on in the same layer), a matching retry-on term, or a retry-on list
        the failure is not in.  None: no layer has a say (retried as usual)."""
        for source, rules in self.layers:
            if rules.no_retry_on is not None:
                hit = _first_match(rules.no_retry_on, failure)
                if hit is not None:
                    return Verdict(False, f"no-retry-on {hit} ({source})", source)
            if rules.retry_on is not None:
                hit = _first_match(rules.retry_on, failure)
                if hit is not None:
                    return Verdict(True, f"retry-on {hit} ({source})", source)
                return Verdict(False, f"not in retry-on {','.join(rules.retry_on)} "
                                      f"({source})", source)
        return None


NO_POLICY = Policy()


def resolve(job_rules: Any, queue_rules: Optional[Rules], config_rules: Optional[Rules]
            ) -> Policy:
    """The policy of a job: its own rules (the stored JSON, or Rules), its queue's, the
    config's; layers that set nothing are left out."""
    own = job_rules if isinstance(job_rules, Rules) else Rules.from_json(job_rules)
    layers = tuple((source, rules) for source, rules in
                   (("job", own), ("queue", queue_rules or NO_RULES),
                    ("config", config_rules or NO_RULES)) if not rules.empty)
    return Policy(layers) if layers else NO_POLICY
