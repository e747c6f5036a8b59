"""Why the records refused something: the rule that refused it, by name, and what would satisfy it."""

from __future__ import annotations

from daq.errors import DaqError


class Refused(DaqError):
    """An action the rules do not allow: wrong role, wrong state, another's order, duties not segregated."""

    def __init__(self, rule: str, problem: str, fix: str = "") -> None:
        self.rule = rule
        self.problem = problem
        self.fix = fix
        text = f"refused by rule {rule}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)


class NotFound(DaqError):
    """An order, item, user or certificate that does not exist (or that this user may not see)."""
