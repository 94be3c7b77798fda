"""Explicit state machines: a table of allowed transitions, enforced in one place."""

from collections.abc import Iterable, Mapping

from .errors import TransitionNotAllowed


class StateMachine:
    def __init__(self, name: str, transitions: Mapping[str, Iterable[str]]):
        self.name = name
        self.transitions = {state: frozenset(targets) for state, targets in transitions.items()}

    def allowed(self, current: str) -> frozenset[str]:
        return self.transitions.get(current, frozenset())

    def check(self, current: str, target: str) -> None:
        if target not in self.allowed(current):
            allowed = sorted(self.allowed(current))
            raise TransitionNotAllowed(
                f"{self.name}: cannot go from '{current}' to '{target}'"
                + (f"; allowed: {', '.join(allowed)}" if allowed else "; no further change is allowed"),
                details={"from": current, "to": target, "allowed": allowed},
            )
