"""The phone follow-up screen: who may use it, and what one recorded call writes (all of it, or nothing)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from followups.models import FollowUpTask, QuestionnaireResponse
from hcrm.models import AuditEntry
from patients.models import ContactEntry
from tests.factories import PatientFactory
from tests.followups.factories import task

pytestmark = pytest.mark.django_db

COMPLETE = {"q-pain": "true", "q-pain_level": "8", "q-sleep": "poor", "q-notes": "夜间痛醒"}


@pytest.fixture
def call_task(patient, internal_medicine, questionnaire):
    return task(patient=patient, department=internal_medicine, questionnaire=questionnaire, max_attempts=3)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(target: FollowUpTask) -> str:
    return f"/followups/tasks/{target.uuid}/call/"


def snapshot(target: FollowUpTask) -> tuple:
    target.refresh_from_db()
    return (
        target.status,
        target.attempts,
        target.claimed_by_id,
        target.response_id,
        QuestionnaireResponse.objects.count(),
        ContactEntry.objects.count(),
    )


# --- Permissions ------------------------------------------------------------------------------------


def test_the_screen_shows_the_patient_history_and_the_questionnaire(staff, call_task):
    response = signed_in(staff["nurse"]).get(url(call_task))

    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["patient"].patient == call_task.patient
    assert [row["link_id"] for row in response.context["rows"]] == [
        "intro",
        "general",
        "sleep",
        "symptoms",
        "weight",
        "visit",
        "name",
        "notes",
    ]
    assert 'name="q-pain"' in page
    assert 'value="deceased"' in page
    views = AuditEntry.objects.filter(event="view")
    assert [(entry.patient_uuid, entry.additional_data["part"]) for entry in views] == [
        (call_task.patient.uuid, "phone follow-up")
    ]


def test_the_screen_is_refused_to_anonymous_wrong_role_and_other_department(client, staff, call_task):
    before = snapshot(call_task)

    anonymous = client.post(url(call_task), {"outcome": "no_answer"})
    analyst = signed_in(staff["analyst"]).post(url(call_task), {"outcome": "no_answer"})
    other = signed_in(staff["other_doctor"]).post(url(call_task), {"outcome": "no_answer"})

    assert (anonymous.status_code, anonymous["Location"]) == (302, f"/login/?next={url(call_task)}")
    assert analyst.status_code == 403
    assert other.status_code == 404
    assert snapshot(call_task) == before


def test_a_task_someone_else_claimed_is_not_recorded(staff, call_task):
    call_task.status, call_task.claimed_by, call_task.claimed_at = "claimed", staff["doctor"], timezone.now()
    call_task.save()
    before = snapshot(call_task)

    response = signed_in(staff["department_head"]).post(url(call_task), {"outcome": "no_answer"})

    assert response.status_code == 409
    assert snapshot(call_task) == before


def test_the_worklist_links_phone_tasks_to_the_call_screen(staff, call_task):
    response = signed_in(staff["nurse"]).get("/followups/")

    assert f'href="{url(call_task)}"' in response.content.decode()


# --- Recording a call ---------------------------------------------------------------------------------


def test_reaching_the_patient_saves_the_response_completes_the_task_and_logs_the_call(staff, call_task):
    nurse = staff["nurse"]

    response = signed_in(nurse).post(url(call_task), {**COMPLETE, "outcome": "reached", "notes": "患者配合"})

    call_task.refresh_from_db()
    answer = QuestionnaireResponse.objects.get()
    contact = ContactEntry.objects.get()
    assert (response.status_code, response["Location"]) == (302, "/followups/")
    assert (call_task.status, call_task.attempts, call_task.response_id) == ("completed", 1, answer.pk)
    assert call_task.completed_at is not None
    assert (answer.status, answer.source, answer.answered_by_id) == ("completed", "phone", nurse.pk)
    assert answer.answers == {"pain": True, "pain_level": 8, "sleep": "poor", "notes": "夜间痛醒"}
    assert answer.scores["burden"]["value"] == 11
    assert (contact.patient_id, contact.channel, contact.purpose, contact.outcome, contact.summary) == (
        call_task.patient_id,
        "phone",
        "follow_up",
        "reached",
        "患者配合",
    )
    assert contact.staff_id == nurse.pk


def test_no_answer_puts_the_task_back_in_the_queue_per_the_plan_s_retry_rule(staff, call_task):
    before = timezone.now()

    signed_in(staff["nurse"]).post(url(call_task), {**COMPLETE, "outcome": "no_answer"})

    call_task.refresh_from_db()
    assert (call_task.status, call_task.attempts, call_task.claimed_by_id) == ("unreached", 1, None)
    assert call_task.next_attempt_at - before >= dt.timedelta(hours=24)
    assert QuestionnaireResponse.objects.count() == 0
    assert list(ContactEntry.objects.values_list("outcome", flat=True)) == ["no_answer"]


def test_the_last_unanswered_attempt_closes_the_task(staff, call_task):
    call_task.attempts = 2
    call_task.save()

    signed_in(staff["nurse"]).post(url(call_task), {"outcome": "busy"})

    call_task.refresh_from_db()
    assert (call_task.status, call_task.closed_reason, call_task.attempts) == ("closed", "max_attempts", 3)


def test_a_deceased_outcome_closes_the_task(staff, call_task):
    signed_in(staff["nurse"]).post(url(call_task), {"outcome": "deceased", "notes": "家属告知"})

    call_task.refresh_from_db()
    assert (call_task.status, call_task.closed_reason) == ("closed", "deceased")
    assert list(ContactEntry.objects.values_list("outcome", "summary")) == [("other", "家属告知")]


def test_missing_or_wrong_answers_name_the_item_and_change_nothing(staff, call_task):
    before = snapshot(call_task)

    response = signed_in(staff["nurse"]).post(
        url(call_task), {"q-pain": "true", "q-pain_level": "12", "outcome": "reached"}
    )

    assert response.status_code == 400
    assert [str(message) for message in response.context["messages"]] == ["疼痛程度: At most 10."]
    assert snapshot(call_task) == before
    assert "At most 10." in response.content.decode()


def test_a_required_question_left_unanswered_is_named(staff, call_task):
    before = snapshot(call_task)

    response = signed_in(staff["nurse"]).post(url(call_task), {"outcome": "reached"})

    assert response.status_code == 400
    assert [str(message) for message in response.context["messages"]] == ["是否疼痛?: This question needs an answer."]
    assert snapshot(call_task) == before


def test_a_missing_outcome_changes_nothing(staff, call_task):
    before = snapshot(call_task)

    response = signed_in(staff["nurse"]).post(url(call_task), COMPLETE)

    assert response.status_code == 400
    assert snapshot(call_task) == before


def test_a_patient_who_died_closes_the_task_and_the_screen_says_why(staff, call_task, patient):
    patient.is_deceased = True
    patient.save()

    response = signed_in(staff["nurse"]).post(url(call_task), {**COMPLETE, "outcome": "reached"})

    call_task.refresh_from_db()
    assert response.status_code == 409
    assert (call_task.status, call_task.closed_reason, call_task.attempts) == ("closed", "deceased", 0)
    assert "This follow-up is closed: Patient deceased." in response.content.decode()
    assert (QuestionnaireResponse.objects.count(), ContactEntry.objects.count()) == (0, 0)


def test_a_finished_task_shows_no_form(staff, call_task):
    call_task.status = "completed"
    call_task.save()

    response = signed_in(staff["nurse"]).get(url(call_task))

    assert response.status_code == 200
    assert 'name="outcome"' not in response.content.decode()


def test_the_constitution_questionnaire_starts_with_the_patient_s_sex(staff, internal_medicine):
    from django.core.management import call_command

    call_command("load_questionnaires", verbosity=0)
    from followups.models import Questionnaire

    patient = PatientFactory(sex="female", departments=[internal_medicine])
    target = task(
        patient=patient, department=internal_medicine, questionnaire=Questionnaire.objects.get(code="tcm-constitution")
    )

    response = signed_in(staff["nurse"]).get(url(target))

    rows = [row for row in _flat(response.context["rows"]) if row["link_id"] == "sex"]
    assert [row["value"] for row in rows] == ["female"]


def _flat(rows):
    for row in rows:
        yield row
        yield from _flat(row["children"])
