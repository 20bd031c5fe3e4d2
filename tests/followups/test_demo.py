"""The follow-ups part of `manage.py seed_demo`: plans, recent encounters swept into tasks, part of them worked."""

from __future__ import annotations

import datetime as dt
import importlib
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from analytics.selectors import (
    Filters,
    followup_kpis,
    lowest_items,
    satisfaction_comments,
    satisfaction_results,
    satisfaction_versions,
)
from followups.demo import PLANS
from followups.models import Alert, FollowUpLink, FollowUpPlan, FollowUpTask, QuestionnaireResponse, TaskStatus
from followups.selectors import worklist_tasks
from hcrm.models import User
from patients.models import ContactEntry, Encounter

pytestmark = pytest.mark.django_db

PATIENTS = 40


@pytest.fixture(autouse=True)
def templates(db):
    """The message templates the migrations add (the test database is emptied between tests)."""
    importlib.import_module("patients.migrations.0003_default_message_templates").add_templates(apps, None)
    importlib.import_module("followups.migrations.0005_followup_message_templates").add_templates(apps, None)


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", patients=PATIENTS, seed=7, no_progress=True, stdout=out)
    return out.getvalue()


def _snapshot() -> list[list[dict]]:
    return [
        list(model.objects.order_by("pk").values())
        for model in (FollowUpPlan, FollowUpTask, QuestionnaireResponse, FollowUpLink, Alert, Encounter, ContactEntry)
    ]


def test_the_demo_has_the_hospitals_plans_and_tasks_worked_through_the_follow_up_services():
    output = seed()

    plans = FollowUpPlan.objects.filter(name__in=[spec["name"] for spec in PLANS])
    assert sorted(plans.values_list("name", "trigger", "channel", "offsets")) == [
        ("住院满意度", "discharge", "phone", [7]),
        ("内科出院信函随访", "discharge", "letter", [30]),
        ("出院随访", "discharge", "phone", [3, 7, 30]),
        ("门诊满意度", "outpatient_visit", "sms", [1]),
        ("高血压随访", "diagnosis", "phone", [30, 90]),
    ]
    tasks = FollowUpTask.objects.filter(plan__in=plans)
    assert set(tasks.values_list("plan__name", flat=True)) == {spec["name"] for spec in PLANS}
    completed = tasks.filter(status=TaskStatus.COMPLETED)
    assert completed.count() > 50
    assert not completed.filter(response__isnull=True).exists()
    assert tasks.filter(status=TaskStatus.UNREACHED).exists()
    assert tasks.filter(status=TaskStatus.CLOSED, closed_reason="refused").exists()
    # Phone calls leave a contact-log entry each; SMS answers come through a link.
    assert ContactEntry.objects.filter(purpose="follow_up").count() >= completed.filter(channel="phone").count()
    assert FollowUpLink.objects.filter(used_at__isnull=False).count() == completed.filter(channel="sms").count()
    # Only tasks due before today were worked; letters wait to be printed.
    today = timezone.localdate()
    assert not tasks.exclude(status=TaskStatus.PENDING).filter(due_date__gte=today).exists()
    assert set(tasks.filter(channel="letter").values_list("status", flat=True)) == {TaskStatus.PENDING}
    assert Alert.objects.count() >= 2
    assert f"{tasks.count()} tasks, {completed.count()} completed in all" in output and "5 follow-up plans" in output


def test_the_demo_nurse_and_doctor_have_follow_ups_due_today():
    seed()
    today = timezone.localdate()

    for username in ("nurse", "doctor"):
        parts = worklist_tasks(User.objects.get(username=username))
        assert sum(part.filter(due_date=today).count() for part in parts) > 0, username


def test_the_satisfaction_dashboard_and_follow_up_kpis_have_figures():
    seed()
    today = timezone.localdate()
    filters = Filters(start=today - dt.timedelta(days=60), end=today + dt.timedelta(days=30), scope=None)

    versions = satisfaction_versions(filters)
    figures = satisfaction_results(filters, versions)
    kpis = followup_kpis(filters)

    assert figures.total.responses > 20
    assert figures.total.mean is not None and 3 < figures.total.mean <= 5
    assert figures.total.nps is not None
    assert figures.total.response_rate is not None
    assert len(figures.by_department) > 1
    assert lowest_items(figures, versions)
    assert satisfaction_comments(filters, versions, page=1)
    assert kpis.total.discharges > 0
    assert kpis.total.completed > 0
    assert kpis.total.completion_rate is not None


def test_seeding_again_creates_nothing_new():
    seed()
    before = _snapshot()

    output = seed()

    assert _snapshot() == before
    assert "0 follow-up plans, 0 recent encounters and 0 tasks created, 0 completed" in output
