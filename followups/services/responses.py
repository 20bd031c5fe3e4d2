"""Responses: answers checked against the version's items, hidden answers dropped, scores on completion."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from followups.models import (
    FollowUpTask,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireVersion,
    ResponseStatus,
)
from followups.scoring import (
    enabled_items,
    option_code,
    relevant_answers,
    satisfaction_figures,
    scores_compute,
    walk,
)
from followups.services.alerts import alerts_evaluate
from followups.services.items import ANSWERED_TYPES, MAX_VALUE_URL, MIN_VALUE_URL, extension_value
from hcrm.audit import audit_acting_as
from hcrm.models import Department
from patients.models import Patient

SOURCES = ("phone", "sms", "email", "letter", "portal", "staff", "fhir")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _in_range(item: dict, number: Decimal) -> str | None:
    low, high = extension_value(item, MIN_VALUE_URL), extension_value(item, MAX_VALUE_URL)
    if low is not None and number < Decimal(str(low)):
        return _("At least %(min)s.") % {"min": low}
    if high is not None and number > Decimal(str(high)):
        return _("At most %(max)s.") % {"max": high}
    return None


def _one_value(item: dict, value: Any) -> tuple[Any, str | None]:
    """The value as stored, or the reason it does not fit the item."""
    kind = item["type"]
    if kind == "boolean":
        return (value, None) if isinstance(value, bool) else (None, _("Answer yes or no."))
    if kind == "choice":
        codes = [option_code(option) for option in item.get("answerOption") or ()]
        return (
            (str(value), None)
            if str(value) in codes and not isinstance(value, (dict, list))
            else (
                None,
                _("%(value)s is not one of the options.") % {"value": value},
            )
        )
    if kind in ("integer", "decimal"):
        if isinstance(value, bool):
            return None, _("Give a number.")
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            return None, _("Give a number.")
        if not number.is_finite():
            return None, _("Give a number.")
        if kind == "integer" and number != number.to_integral_value():
            return None, _("Give a whole number.")
        reason = _in_range(item, number)
        if reason:
            return None, reason
        return (int(number), None) if kind == "integer" else (float(number), None)
    if kind == "date":
        if isinstance(value, dt.date):
            return value.isoformat(), None
        try:
            return dt.date.fromisoformat(str(value)).isoformat(), None
        except ValueError:
            return None, _("Give a date as YYYY-MM-DD.")
    if isinstance(value, str):
        return value.strip(), None
    return None, _("Give text.")


def answers_check(items: list[dict], answers: Any) -> dict[str, Any]:
    """Answers by linkId in their stored form; a ValidationError keyed by linkId lists what does not fit."""
    if not isinstance(answers, dict):
        raise ValidationError({"answers": _("Answers are given by linkId.")})
    by_link = {item["linkId"]: item for item in walk(items)}
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for link_id, value in answers.items():
        item = by_link.get(link_id)
        if item is None or item.get("type") not in ANSWERED_TYPES:
            errors[str(link_id)] = _("%(link)s is not a question of this questionnaire.") % {"link": link_id}
            continue
        if _empty(value):
            continue
        if item.get("repeats"):
            values = value if isinstance(value, list) else [value]
            stored = []
            for one in values:
                result, reason = _one_value(item, one)
                if reason:
                    errors[link_id] = reason
                    break
                if result not in stored:
                    stored.append(result)
            cleaned[link_id] = stored
        elif isinstance(value, list):
            errors[link_id] = _("Give one answer.")
        else:
            result, reason = _one_value(item, value)
            if reason:
                errors[link_id] = reason
            elif not _empty(result):
                cleaned[link_id] = result
    if errors:
        raise ValidationError({link: ValidationError(message, code="invalid") for link, message in errors.items()})
    return cleaned


def _missing_required(items: list[dict], answers: dict[str, Any]) -> dict[str, str]:
    return {
        item["linkId"]: _("This question needs an answer.")
        for item in enabled_items(items, answers)
        if item.get("required") and item.get("type") in ANSWERED_TYPES and _empty(answers.get(item["linkId"]))
    }


def _version_held(version: QuestionnaireVersion) -> QuestionnaireVersion:
    """The version as stored now, key-share locked until commit so it cannot be edited in place meanwhile.

    Editing takes a row lock on the current version and edits it in place only if it has no responses;
    this lock makes that edit wait for the response (which it then sees), while responses to one version
    are still recorded side by side (key-share locks do not conflict with each other).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM followups_questionnaireversion WHERE id = %s FOR KEY SHARE", [version.pk])
    return QuestionnaireVersion.objects.get(pk=version.pk)


def answers_for(items: list[dict], answers: Any, *, complete: bool) -> dict[str, Any]:
    """The answers as they would be stored: checked, hidden ones dropped, and (to complete) required ones present."""
    cleaned = relevant_answers(items, answers_check(items, answers))
    if complete:
        missing = _missing_required(items, cleaned)
        if missing:
            raise ValidationError(
                {link: ValidationError(message, code="required") for link, message in missing.items()}
            )
    return cleaned


def _ratings_keep(response: QuestionnaireResponse, version: QuestionnaireVersion) -> None:
    """Copy a satisfaction survey's figures, and the department and doctor it rates, into their columns.

    The rated department and doctor are the hidden answers (a department code, a doctor's username) when
    the staff recording it gave them; completing a follow-up task sets them from the task instead.
    """
    figures = satisfaction_figures(version.items, version.scoring, response.answers, response.scores)
    for field, value in figures.items():
        setattr(response, field, value)
    department_code = response.answers.get("department")
    if isinstance(department_code, str) and department_code:
        response.department = Department.objects.filter(code=department_code).first()
    doctor_username = response.answers.get("doctor")
    if isinstance(doctor_username, str) and doctor_username:
        response.doctor = get_user_model().objects.filter(username=doctor_username).first()


def response_save(
    *,
    version: QuestionnaireVersion,
    patient: Patient,
    answers: dict[str, Any],
    source: str,
    actor=None,
    complete: bool,
    response: QuestionnaireResponse | None = None,
    task: FollowUpTask | None = None,
) -> QuestionnaireResponse:
    """Record answers (new, or continuing an unfinished response); on completion check required items, score,
    and raise the alerts the answers call for (in the same transaction: a completed response has its alerts).

    `task` is the follow-up the answers are for, when there is one: its department and doctor decide who
    hears of an alert."""
    if source not in SOURCES:
        raise ValidationError({"source": _("Unknown source %(source)s.") % {"source": source}})
    if response is not None and response.status == ResponseStatus.COMPLETED:
        raise ValidationError({"answers": _("This response is complete and can no longer change.")})
    if response is not None and (response.version_id != version.pk or response.patient_id != patient.pk):
        raise ValidationError({"answers": _("This response belongs to another questionnaire or patient.")})
    with transaction.atomic(), audit_acting_as(actor):
        version = _version_held(version)
        cleaned = answers_for(version.items, answers, complete=complete)
        response = response or QuestionnaireResponse(version=version, patient=patient)
        response.answers = cleaned
        response.source = source
        if isinstance(actor, get_user_model()):
            response.answered_by = actor
        if complete:
            response.status = ResponseStatus.COMPLETED
            response.scores = scores_compute(version.items, version.scoring, cleaned)
            response.completed_at = timezone.now()
            if version.questionnaire.purpose == QuestionnairePurpose.SATISFACTION:
                _ratings_keep(response, version)
        response.save()
        if complete and version.questionnaire.purpose == QuestionnairePurpose.CONSTITUTION:
            from followups.services.constitution import constitution_record

            # The assessment is kept on the patient (primary and secondary constitution, in the timeline).
            constitution_record(response=response)
        if complete:
            alerts_evaluate(response=response, task=task)
    return response
