"""Every write of the follow-ups app."""

from followups.services.builtin import builtin_questionnaires_load
from followups.services.constitution import constitution_record

__all__ = ["builtin_questionnaires_load", "constitution_record"]
