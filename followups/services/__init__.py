"""Every write of the follow-ups app goes through a function here."""

from followups.services.imports import questionnaire_import
from followups.services.items import items_check
from followups.services.questionnaires import questionnaire_save, questionnaire_version_save
from followups.services.responses import answers_check, answers_for, response_save

__all__ = [
    "answers_check",
    "answers_for",
    "items_check",
    "questionnaire_import",
    "questionnaire_save",
    "questionnaire_version_save",
    "response_save",
]
