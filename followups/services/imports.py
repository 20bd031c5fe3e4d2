"""A FHIR Questionnaire in: a new questionnaire, or the next version of the one with its code."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from followups.fhir import ImportProblem, fhir_location, questionnaire_from_fhir
from followups.models import Questionnaire, QuestionnaireVersion
from followups.services.questionnaires import questionnaire_save, questionnaire_version_save


def questionnaire_import(*, actor, data: Any) -> QuestionnaireVersion:
    """Import a FHIR R4 Questionnaire; every problem is reported by FHIR element, nothing is half-written."""
    parsed = questionnaire_from_fhir(data)
    metadata, items = parsed["metadata"], parsed["items"]
    try:
        with transaction.atomic():
            existing = Questionnaire.objects.filter(code=metadata["code"]).first()
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
