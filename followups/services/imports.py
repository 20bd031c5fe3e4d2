"""A FHIR Questionnaire in: a new questionnaire, or the next version of the one with its code."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from followups.fhir import ImportProblem, fhir_location, questionnaire_from_fhir
from followups.models import Questionnaire, QuestionnaireVersion
from followups.selectors import manages_all_questionnaires
from followups.services.questionnaires import questionnaire_save, questionnaire_version_save


def questionnaire_import(*, actor, data: Any) -> QuestionnaireVersion:
    """Import a FHIR R4 Questionnaire; every problem is reported by FHIR element, nothing is half-written."""
    parsed = questionnaire_from_fhir(data)
    metadata, items = parsed["metadata"], parsed["items"]
    try:
        with transaction.atomic():
            existing = Questionnaire.objects.filter(code=metadata["code"]).first()
            head = isinstance(actor, get_user_model()) and not manages_all_questionnaires(actor)
            if existing is None and not metadata["departments"] and head:
                # A department head's import is meant for their departments unless it says otherwise.
                metadata["departments"] = sorted(actor.department_ids)
            if existing is not None:
                # The questionnaire keeps its own scope and status; the import brings its questions.
                metadata = {"title": metadata["title"]} | (
                    {"title_en": metadata["title_en"]} if metadata["title_en"] else {}
                )
            questionnaire = questionnaire_save(actor=actor, data=metadata, questionnaire=existing)
            return questionnaire_version_save(
                actor=actor, questionnaire=questionnaire, items=items, scoring=parsed["scoring"]
            )
    except ValidationError as error:
        problems: dict[str, list[str]] = {}
        for location, messages in error.message_dict.items():
            problems.setdefault(fhir_location(location, items), []).extend(messages)
        raise ImportProblem(problems) from None
