"""Every write of the follow-ups app."""

from followups.services.builtin import builtin_questionnaires_load

__all__ = ["builtin_questionnaires_load"]
