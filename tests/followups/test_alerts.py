"""Alerts on answers: each condition kind, who hears, once per rule and response, acknowledgement, escalation."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone

from followups.builtin import inpatient_satisfaction, outpatient_satisfaction, post_discharge
from followups.models import Alert, AlertMessage, AlertRule, Questionnaire
from followups.services import (
    alert_acknowledge,
    alert_message_deliver,
    alert_rule_save,
    alerts_escalate,
    alerts_evaluate,
    builtin_questionnaires_load,
    response_save,
)
from hcrm.models import AuditEntry, StaffDepartment
from hcrm.roles import Role
from integrations.channels.backends import MemoryBackend
from tests.factories import EncounterFactory, UserFactory
from tests.followups.factories import task as make_task

pytestmark = pytest.mark.django_db

CALM = {"recovery": "better", "has_symptoms": False, "medication": "as_prescribed", "wants_visit": False}
RED_FLAGS = {**CALM, "has_symptoms": True, "symptoms": ["fever", "poor_sleep", "chest_pain"]}


@pytest.fixture
def builtins(db):
    builtin_questionnaires_load()


@pytest.fixture
def people(staff, internal_medicine):
    """The attending doctor (with a mobile), the department's head (email only), two administrators."""
    staff["doctor"].phone = "13800000001"
    staff["doctor"].save()
    head = staff["department_head"]
    head.email = "head@example.org"
    head.save()
    StaffDepartment.objects.filter(user=head, department=internal_medicine).update(is_head=True)
    staff["admin2"] = UserFactory(username="admin2", roles=[Role.ADMINISTRATOR], email="admin2@example.org")
    return staff


@pytest.fixture
def stay(patient, internal_medicine, people):
    return EncounterFactory(
        patient=patient,
        kind="inpatient",
        department=internal_medicine,
        doctor=people["doctor"],
        ended_at=timezone.now() - dt.timedelta(days=3),
    )


def version_of(code: str):
    return Questionnaire.objects.get(code=code).current_version


def answer(code: str, patient, answers: dict, *, task=None):
    return response_save(
        version=version_of(code), patient=patient, answers=answers, source="phone", complete=True, task=task
    )


def satisfaction_answers(module, *, low: str = "", recommend: int = 9) -> dict:
    """Every required item answered 4 (satisfied), `low` answered 1, and the 0–10 recommendation."""
    from followups.scoring import walk

    answers = {}
    for item in walk(module.ITEMS):
        if item.get("required") and item["type"] == "choice" and item["linkId"] != "recommend":
            answers[item["linkId"]] = "4"
    if low:
        answers[low] = "1"
    answers["recommend"] = str(recommend)
    return answers


# --- Condition kinds -----------------------------------------------------------------------------------


def test_a_red_flag_answer_raises_a_critical_alert_for_the_attending_doctor(builtins, patient, stay, people, settings):
    settings.LANGUAGE_CODE = "zh-hans"  # the summary is written in the hospital's language

    response = answer(post_discharge.CODE, patient, RED_FLAGS)

    alert = Alert.objects.get()
    assert (alert.rule.name, alert.severity, alert.status) == ("出院后危险症状", "critical", "open")
    assert (alert.response, alert.patient, alert.recipient, alert.recipient_role) == (
        response,
        patient,
        people["doctor"],
        "",
    )
    assert alert.department == stay.department
    assert [(row["link_id"], row["answer_en"]) for row in alert.findings] == [
        ("symptoms", "Fever (38.5 °C or above), Chest pain or tightness")
    ]
    assert alert.summary == "出院后危险症状: 请选择您出现的症状（可多选）: 发热（体温 ≥ 38.5℃）、胸痛、胸闷"


def test_answers_without_a_red_flag_raise_nothing(builtins, patient, stay):
    answer(post_discharge.CODE, patient, {**CALM, "has_symptoms": True, "symptoms": ["poor_sleep"]})

    assert Alert.objects.count() == 0


def test_a_satisfaction_item_of_two_or_less_alerts_the_department_head(builtins, patient, stay, people):
    answer(outpatient_satisfaction.CODE, patient, satisfaction_answers(outpatient_satisfaction, low="reg_waiting"))

    alert = Alert.objects.get()
    assert alert.rule.name == "门诊满意度：单项评分 ≤ 2"
    assert (alert.recipient, alert.severity) == (people["department_head"], "warning")
    assert [(row["link_id"], row["answer"]) for row in alert.findings] == [("reg_waiting", "很不满意")]


def test_satisfied_answers_raise_no_alert(builtins, patient, stay):
    answer(inpatient_satisfaction.CODE, patient, satisfaction_answers(inpatient_satisfaction, recommend=10))

    assert Alert.objects.count() == 0


def test_a_detractor_s_recommendation_fires_the_score_range_rule(builtins, patient, stay, people):
    answer(inpatient_satisfaction.CODE, patient, satisfaction_answers(inpatient_satisfaction, recommend=5))

    alert = Alert.objects.get()
    assert (alert.rule.name, alert.severity, alert.recipient) == (
        "住院满意度：推荐意愿贬损者（0–6）",
        "info",
        people["department_head"],
    )
    assert [(row["score"], row["answer_en"]) for row in alert.findings] == [("recommend", "5 Detractor")]


def test_a_score_band_rule_matches_the_band_s_label_in_either_language(builtins, patient, stay):
    AlertRule.objects.filter(name__contains="推荐意愿").update(active=False)
    rule = alert_rule_save(
        actor=None,
        data={
            "name": "Detractors",
            "questionnaire": Questionnaire.objects.get(code=outpatient_satisfaction.CODE),
            "condition": "score_band",
            "score_code": "recommend",
            "band": "Detractor",
            "recipient": "role",
            "recipient_role": Role.NURSE,
        },
    )

    answer(outpatient_satisfaction.CODE, patient, satisfaction_answers(outpatient_satisfaction, recommend=8))
    answer(outpatient_satisfaction.CODE, patient, satisfaction_answers(outpatient_satisfaction, recommend=3))

    alert = Alert.objects.get()
    assert (alert.rule, alert.recipient, alert.recipient_role) == (rule, None, Role.NURSE)
    assert rule.escalate_after_minutes == 120  # ALERT_ESCALATE_AFTER_MINUTES


@pytest.mark.parametrize(
    ("operator", "value", "answers", "fires"),
    [
        ("=", "worse", {**CALM, "recovery": "worse"}, True),
        ("=", "worse", CALM, False),
        ("!=", "much_better", CALM, True),
        (">=", "1", {**CALM, "recovery": "worse"}, True),  # compared by the option's score (worse scores 1)
        (">=", "1", CALM, False),
        ("=", "true", {**CALM, "wants_visit": True}, True),
    ],
)
def test_an_answer_rule_compares_codes_scores_and_booleans(builtins, patient, stay, operator, value, answers, fires):
    link_id = "wants_visit" if value == "true" else "recovery"
    alert_rule_save(
        actor=None,
        data={
            "name": "rule",
            "questionnaire": Questionnaire.objects.get(code=post_discharge.CODE),
            "condition": "answer",
            "link_id": link_id,
            "operator": operator,
            "value": value,
        },
    )

    answer(post_discharge.CODE, patient, answers)

    assert list(Alert.objects.values_list("rule__name", flat=True)) == (["rule"] if fires else [])


def test_a_rule_is_refused_with_the_fields_named(builtins):
    questionnaire = Questionnaire.objects.get(code=post_discharge.CODE)

    with pytest.raises(ValidationError) as refused:
        alert_rule_save(
            actor=None,
            data={"name": "x", "questionnaire": questionnaire, "condition": "answer", "link_id": "nope"},
        )

    assert sorted(refused.value.message_dict) == ["link_id", "operator", "value"]
    assert AlertRule.objects.filter(name="x").count() == 0


def test_an_unfinished_response_raises_nothing(builtins, patient, stay):
    response_save(
        version=version_of(post_discharge.CODE), patient=patient, answers=RED_FLAGS, source="sms", complete=False
    )

    assert Alert.objects.count() == 0


# --- Once, and who hears ---------------------------------------------------------------------------------


def test_evaluating_a_response_twice_raises_and_messages_once(builtins, patient, stay, people):
    response = answer(post_discharge.CODE, patient, RED_FLAGS)

    again = alerts_evaluate(response=response)

    alert = Alert.objects.get()
    message = AlertMessage.objects.get()
    assert again == []
    assert message.idempotency_key == f"alert:{alert.uuid}:level:0:to:{people['doctor'].uuid}"
    assert (message.recipient, message.channel, message.to_address, message.status) == (
        people["doctor"],
        "sms",
        "13800000001",
        "queued",
    )
    assert str(alert.uuid) in message.body
    assert patient.name not in message.body


def test_the_follow_up_task_decides_the_department_and_a_doctor_assignee_hears(
    builtins, patient, internal_medicine, people
):
    followup = make_task(patient=patient, department=internal_medicine, assignee=people["doctor"], assignee_role="")

    answer(post_discharge.CODE, patient, RED_FLAGS, task=followup)

    alert = Alert.objects.get()
    assert (alert.task, alert.department, alert.recipient) == (followup, internal_medicine, people["doctor"])


def test_without_a_doctor_the_alert_goes_to_the_department_s_doctors(builtins, patient, internal_medicine, people):
    followup = make_task(patient=patient, department=internal_medicine)

    answer(post_discharge.CODE, patient, RED_FLAGS, task=followup)

    alert = Alert.objects.get()
    assert (alert.recipient, alert.recipient_role) == (None, Role.DOCTOR)
    assert list(AlertMessage.objects.values_list("recipient__username", "channel")) == [("doctor", "sms")]


def test_a_recipient_without_phone_or_email_is_told_in_the_console_only(builtins, patient, stay, people):
    people["doctor"].phone = ""
    people["doctor"].save()

    answer(post_discharge.CODE, patient, RED_FLAGS)

    assert list(AlertMessage.objects.values_list("channel", "status")) == [("", "no_address")]


def test_a_queued_message_is_sent_once(builtins, patient, stay, people):
    answer(post_discharge.CODE, patient, RED_FLAGS)
    message = AlertMessage.objects.get()
    MemoryBackend.sent.clear()

    first = alert_message_deliver(message_id=message.pk)
    second = alert_message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (first, second, message.status, message.attempts) == ("sent", "not claimed", "sent", 1)
    assert [(sent.to, sent.reference) for sent in MemoryBackend.sent] == [("13800000001", message.idempotency_key)]


# --- Acknowledgement -------------------------------------------------------------------------------------


def test_acknowledging_records_who_when_and_what_was_done_in_the_audit_trail(builtins, patient, stay, people):
    answer(post_discharge.CODE, patient, RED_FLAGS)
    alert = Alert.objects.get()

    alert_acknowledge(alert=alert, actor=people["doctor"], note="已电话联系，建议急诊就诊")

    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by, alert.acknowledgement_note, alert.escalation_due_at) == (
        "acknowledged",
        people["doctor"],
        "已电话联系，建议急诊就诊",
        None,
    )
    entry = AuditEntry.objects.filter(content_type__model="alert", object_pk=str(alert.pk), event="update").get()
    assert (entry.actor, entry.patient_uuid) == (people["doctor"], patient.uuid)
    assert entry.changes["status"] == ["open", "acknowledged"]


def test_acknowledging_needs_a_note_and_happens_once(builtins, patient, stay, people):
    answer(post_discharge.CODE, patient, RED_FLAGS)
    alert = Alert.objects.get()

    with pytest.raises(ValidationError) as no_note:
        alert_acknowledge(alert=alert, actor=people["doctor"], note="  ")
    alert_acknowledge(alert=alert, actor=people["doctor"], note="called")
    with pytest.raises(ValidationError) as twice:
        alert_acknowledge(alert=alert, actor=people["department_head"], note="me too")

    alert.refresh_from_db()
    assert (list(no_note.value.message_dict), list(twice.value.message_dict)) == (["note"], ["status"])
    assert (alert.acknowledged_by, alert.acknowledgement_note) == (people["doctor"], "called")


# --- Escalation ------------------------------------------------------------------------------------------


def test_an_unacknowledged_alert_is_escalated_to_the_head_then_to_the_administrators(builtins, patient, stay, people):
    answer(post_discharge.CODE, patient, RED_FLAGS)  # the red-flag rule escalates after 60 minutes
    alert = Alert.objects.get()
    raised = alert.created_at

    early = alerts_escalate(now=raised + dt.timedelta(minutes=59))
    first = alerts_escalate(now=raised + dt.timedelta(minutes=61))
    repeated = alerts_escalate(now=raised + dt.timedelta(minutes=62))
    alert.refresh_from_db()
    at_level_one = (alert.status, alert.escalation_level, alert.escalated_to, alert.escalated_to_role)
    second = alerts_escalate(now=raised + dt.timedelta(minutes=122))
    third = alerts_escalate(now=raised + dt.timedelta(days=30))

    alert.refresh_from_db()
    assert (early, first, repeated, second, third) == (0, 1, 0, 1, 0)
    assert at_level_one == ("escalated", 1, people["department_head"], "")
    assert (alert.escalation_level, alert.escalated_to, alert.escalated_to_role, alert.escalation_due_at) == (
        2,
        None,
        Role.ADMINISTRATOR,
        None,
    )
    assert sorted(AlertMessage.objects.values_list("recipient__username", "channel", "idempotency_key")) == sorted(
        [
            ("doctor", "sms", f"alert:{alert.uuid}:level:0:to:{people['doctor'].uuid}"),
            ("department_head", "email", f"alert:{alert.uuid}:level:1:to:{people['department_head'].uuid}"),
            ("administrator", "", f"alert:{alert.uuid}:level:2:to:{people['administrator'].uuid}"),
            ("admin2", "email", f"alert:{alert.uuid}:level:2:to:{people['admin2'].uuid}"),
        ]
    )
    escalations = AuditEntry.objects.filter(content_type__model="alert", object_pk=str(alert.pk), event="update")
    assert sorted(entry.additional_data["escalated"] for entry in escalations) == [1, 2]


def test_an_acknowledged_alert_is_not_escalated(builtins, patient, stay, people):
    answer(post_discharge.CODE, patient, RED_FLAGS)
    alert = Alert.objects.get()
    alert_acknowledge(alert=alert, actor=people["doctor"], note="seen")

    assert alerts_escalate(now=alert.created_at + dt.timedelta(days=1)) == 0


def test_an_alert_already_with_the_head_escalates_to_the_administrators(builtins, patient, stay, people):
    answer(outpatient_satisfaction.CODE, patient, satisfaction_answers(outpatient_satisfaction, low="reg_waiting"))
    alert = Alert.objects.get()

    escalated = alerts_escalate(now=alert.created_at + dt.timedelta(days=2))

    alert.refresh_from_db()
    assert (escalated, alert.escalation_level, alert.escalated_to_role, alert.escalation_due_at) == (
        1,
        1,
        Role.ADMINISTRATOR,
        None,
    )


# --- Concurrency (PostgreSQL) ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_escalation_runs_at_once_escalate_once(builtins, patient, stay, people):
    if connection.vendor != "postgresql":
        pytest.skip("two runs racing on one row need PostgreSQL's concurrent connections")
    answer(post_discharge.CODE, patient, RED_FLAGS)
    alert = Alert.objects.get()
    when = alert.created_at + dt.timedelta(minutes=61)
    barrier = threading.Barrier(2, timeout=10)
    results: list = [None, None]

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = alerts_escalate(now=when)
        except Exception as error:  # reported to the test, not swallowed
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    alert.refresh_from_db()
    assert sorted(results) == [0, 1]
    assert alert.escalation_level == 1
    assert AlertMessage.objects.filter(idempotency_key__contains=":level:1:").count() == 1
