"""Satisfaction responses, tasks and discharges placed at given times, for the statistics tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from followups.builtin.outpatient_satisfaction import DOMAINS
from followups.models import FollowUpTask, Questionnaire, QuestionnaireResponse
from followups.services import builtin_questionnaires_load, response_save, task_complete
from tests.followups.factories import task

ITEMS = [link_id for _zh, _en, link_ids in DOMAINS.values() for link_id in link_ids if link_id != "pharm_decoction"]


def local(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def outpatient_survey() -> Questionnaire:
    builtin_questionnaires_load()
    survey = Questionnaire.objects.get(code="outpatient-satisfaction")
    Questionnaire.objects.filter(pk=survey.pk).update(status="active")
    survey.refresh_from_db()
    return survey


def answers(score: int = 4, recommend: int | None = 9, comment: str = "", **items: int) -> dict:
    """Every 1–5 item at `score` (some set apart by name), the 0–10 recommendation and a comment."""
    found: dict = {link_id: str(items.get(link_id, score)) for link_id in ITEMS}
    found["used_decoction"] = False
    if recommend is not None:
        found["recommend"] = str(recommend)
    if comment:
        found["comments"] = comment
    return found


def respond(
    survey: Questionnaire,
    patient,
    *,
    at: dt.datetime,
    department=None,
    doctor=None,
    **answer_fields,
) -> QuestionnaireResponse:
    """A completed response, as recorded by staff (the rated department and doctor as hidden answers)."""
    given = answers(**answer_fields)
    if department is not None:
        given["department"] = department.code
    if doctor is not None:
        given["doctor"] = doctor.username
    response = response_save(
        version=survey.current_version, patient=patient, answers=given, source="staff", complete=True
    )
    QuestionnaireResponse.objects.filter(pk=response.pk).update(completed_at=at)
    response.refresh_from_db()
    return response


def invitation(survey: Questionnaire, patient, *, due: dt.date, department, attempts: int = 1, **fields):
    return task(
        patient=patient,
        due_date=due,
        department=department,
        questionnaire=survey,
        attempts=attempts,
        offset_days=FollowUpTask.objects.count(),
        **fields,
    )


def completed_invitation(survey, patient, *, due: dt.date, department, at: dt.datetime, **answer_fields):
    """A satisfaction task completed with its response (the response rates the task's department)."""
    invited = invitation(survey, patient, due=due, department=department, status="in_progress")
    response = response_save(
        version=survey.current_version, patient=patient, answers=answers(**answer_fields), source="sms", complete=True
    )
    task_complete(task=invited, response=response, actor=None)
    QuestionnaireResponse.objects.filter(pk=response.pk).update(completed_at=at)
    FollowUpTask.objects.filter(pk=invited.pk).update(completed_at=at)
    return invited, response
