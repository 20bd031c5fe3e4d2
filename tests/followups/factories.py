"""Questionnaires, plans and tasks for the follow-up tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from followups.models import FollowUpPlan, FollowUpTask, Questionnaire
from followups.services.plans import day_start


def questionnaire(code: str = "post-discharge", *, status: str = "active") -> Questionnaire:
    return Questionnaire.objects.create(code=code, title=f"问卷 {code}", purpose="clinical", status=status)


def plan(**fields) -> FollowUpPlan:
    values = {
        "name": "出院随访",
        "trigger": "discharge",
        "offsets": [3, 7, 30],
        "channel": "phone",
        "assignee_kind": "role",
        "assignee_role": "nurse",
        "retry_attempts": 3,
        "retry_spacing_hours": 24,
        **fields,
    }
    if "questionnaire" not in values:
        values["questionnaire"] = Questionnaire.objects.filter(code="post-discharge").first() or questionnaire()
    return FollowUpPlan.objects.create(**values)


def task(*, patient, due_date: dt.date | None = None, **fields) -> FollowUpTask:
    due_date = due_date or timezone.localdate()
    values = {
        "source_kind": "manual",
        "due_date": due_date,
        "due_at": day_start(due_date),
        "channel": "phone",
        "assignee_role": "nurse",
        **fields,
    }
    if "questionnaire" not in values:
        values["questionnaire"] = Questionnaire.objects.filter(code="post-discharge").first() or questionnaire()
    return FollowUpTask.objects.create(patient=patient, **values)
