"""The follow-ups part of the demo hospital: the built-in questionnaires."""

from __future__ import annotations

from followups.services import builtin_questionnaires_load
from patients.demo.load import demo_extension


@demo_extension
def followups_demo_ensure(*, seed: int) -> str:
    """The built-in questionnaires, created or brought up to date."""
    outcomes = builtin_questionnaires_load()
    return f"{outcomes['created']} built-in questionnaires created ({sum(outcomes.values())} in all)"
