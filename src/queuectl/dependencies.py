"""Dependencies between jobs: conditions, and the verdict for a held job.

A job enqueued `--after A` (condition `completed`), `--after-any A` (`any`) or
`--after-failure A` (`failure`) is stored `waiting`.  The store re-decides it whenever a
dependency enters or leaves a final state, inside the same transaction (migration 0004's
trigger `jobs_release_dependants`, on both stores).  `verdict` below is the same rule in
Python: the enqueue uses it when a dependency has already ended, and a property test
checks that the trigger and this function agree.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple, Optional

from queuectl.states import FINISHED, JobState

COMPLETED, ANY, FAILURE = "completed", "any", "failure"
CONDITIONS = (COMPLETED, ANY, FAILURE)
#: what each condition is called on the command line
FLAGS = {COMPLETED: "--after", ANY: "--after-any", FAILURE: "--after-failure"}
_ALIASES = {"completed": COMPLETED, "complete": COMPLETED, "ok": COMPLETED,
            "success": COMPLETED, "afterok": COMPLETED, "any": ANY, "end": ANY,
            "afterany": ANY, "failure": FAILURE, "failed": FAILURE, "fail": FAILURE,
            "afternotok": FAILURE}
_FAILED_ENDS = frozenset({JobState.DEAD, JobState.CANCELLED})


def parse_condition(text: str) -> str:
    """`"on"` of a JSON dependency -> a condition name (InvalidInput otherwise)."""
    from queuectl.errors import InvalidInput

    found = _ALIASES.get(str(text).strip().lower())
    if found is None:
        raise InvalidInput(f"unknown dependency condition {text!r} "
                           f"(valid: {', '.join(CONDITIONS)})")
    return found


class Edge(NamedTuple):
    """One dependency of a job, as the store keeps it."""

    depends_on: str
    condition: str
    dep_state: Optional[JobState]  # the dependency's state (None: not known yet)


def met(condition: str, state: Optional[JobState]) -> bool:
    """Has a dependency in `state` ended as `condition` asks?"""
    if condition == COMPLETED:
        return state is JobState.COMPLETED
    if condition == ANY:
        return state in FINISHED
    return state in _FAILED_ENDS


def impossible(condition: str, state: Optional[JobState]) -> bool:
    """Can the condition no longer hold unless the dependency is retried?"""
    if condition == COMPLETED:
        return state in _FAILED_ENDS
    if condition == FAILURE:
        return state is JobState.COMPLETED
    return False


class Verdict(NamedTuple):
    state: JobState  # WAITING, BLOCKED, CANCELLED, or PENDING (SCHEDULED if run_at later)
    reason: Optional[str]  # why it is blocked or cancelled


def verdict(edges: Iterable[Edge]) -> Verdict:
    """What a held job should be, given its edges (the trigger's rule)."""
    edges = list(edges)
    cancel = sorted(e.depends_on for e in edges
                    if e.condition == FAILURE and e.dep_state is JobState.COMPLETED)
    if cancel:
        return Verdict(JobState.CANCELLED, f"dependency {cancel[-1]} completed; this job "
                                           "was to run only if it failed")
    block = sorted(f"{e.depends_on} is {e.dep_state}" for e in edges
                   if e.condition == COMPLETED and e.dep_state in _FAILED_ENDS)
    if block:
        return Verdict(JobState.BLOCKED, f"dependency {block[-1]}; retry it to unblock "
                                         "this job")
    if any(not met(e.condition, e.dep_state) for e in edges):
        return Verdict(JobState.WAITING, None)
    return Verdict(JobState.PENDING, None)


def describe(edge: Edge) -> str:
    """`build (completed, --after)`: one dependency for `show`."""
    state = edge.dep_state.value if edge.dep_state else "gone"
    return f"{edge.depends_on} ({state}; {FLAGS[edge.condition]})"


def edge_dict(edge: Edge) -> dict[str, object]:
    """A dependency (or dependant) as `show --json` and the API give it."""
    return {"id": edge.depends_on, "on": edge.condition,
            "state": edge.dep_state.value if edge.dep_state else None}


def graph_fields(deps: Iterable[Edge], dependants: Iterable[Edge]) -> dict[str, object]:
    """The `dependencies` and `dependants` fields of a job's JSON."""
    return {"dependencies": [edge_dict(e) for e in deps],
            "dependants": [edge_dict(e) for e in dependants]}
