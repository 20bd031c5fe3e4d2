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


def research_questionnaire() -> Questionnaire:
    """An active research questionnaire with the sample items (every type) and a scored total."""
    from followups.services.questionnaires import questionnaire_save, questionnaire_version_save
    from tests.followups import samples

    form = questionnaire_save(
        actor=None, data={"code": "ra-followup", "title": "类风湿随访", "purpose": "research", "status": "active"}
    )
    questionnaire_version_save(actor=None, questionnaire=form, items=samples.items(), scoring=samples.scoring())
    form.refresh_from_db()
    return form


def cohort_data(*, investigator, segment, questionnaire, department, **changes) -> dict:
    """What `cohort_save` takes for a cohort followed up by the department's nurses on day 0, 30 and 90."""
    return {
        "name": "类风湿队列",
        "principal_investigator": investigator,
        "ethics_approval": "伦审 2026-017",
        "segment": segment,
        "questionnaire": questionnaire,
        "channel": "phone",
        "schedule_kind": "offsets",
        "offsets": [90, 0, 30],
        "start_date": timezone.localdate() - dt.timedelta(days=10),
        "assignee_role": "nurse",
        "assignee_department": department,
        **changes,
    }
