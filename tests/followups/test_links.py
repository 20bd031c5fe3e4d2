"""Follow-up links: sending, reminders, and the patient's page (tokens hashed, single use, expiring)."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
from django.apps import apps
from django.utils import timezone

from followups.models import FollowUpLink, QuestionnaireResponse
from followups.services import (
    followup_link_reminders_send,
    followup_link_send,
    followup_links_send_due,
)
from followups.services.links import LinkGone, followup_link_open, token_hash, token_new, token_signed
from patients.models import OutboundMessage
from tests.factories import ConsentFactory
from tests.followups.factories import task

pytestmark = pytest.mark.django_db

COMPLETE = {"q-pain": "true", "q-pain_level": "3", "q-sleep": "good"}


@pytest.fixture(autouse=True)
def templates(db):
    importlib.import_module("patients.migrations.0003_default_message_templates").add_templates(apps, None)
    importlib.import_module("followups.migrations.0005_followup_message_templates").add_templates(apps, None)


@pytest.fixture
def sms_task(patient, internal_medicine, questionnaire):
    return task(patient=patient, department=internal_medicine, questionnaire=questionnaire, channel="sms")


def sent_path(message: OutboundMessage) -> str:
    return re.search(r"https?://[^/]+(/f/[^/]+/)", message.body).group(1)


def send(target) -> tuple[FollowUpLink, str]:
    link = followup_link_send(task=target)
    message = OutboundMessage.objects.get(idempotency_key=f"followup:{target.uuid}:link:{link.attempt}")
    return link, sent_path(message)


# --- Sending ---------------------------------------------------------------------------------------------


def test_a_link_is_sent_by_sms_and_only_its_token_s_hash_is_stored(sms_task, settings):
    settings.PUBLIC_BASE_URL = "https://crm.example.org"

    link = followup_link_send(task=sms_task)

    message = OutboundMessage.objects.get()
    token = re.search(r"https://crm\.example\.org/f/([^/]+)/", message.body).group(1)
    sms_task.refresh_from_db()
    assert (message.channel, message.purpose, message.status) == ("sms", "follow_up", "queued")
    assert message.idempotency_key == f"followup:{sms_task.uuid}:link:1"
    assert len(token) >= 43
    assert link.token_hash == token_hash(token) != token
    assert token not in str(list(FollowUpLink.objects.values()))
    assert link.expires_at - timezone.now() > dt.timedelta(days=6, hours=23)
    assert (sms_task.status, sms_task.attempts) == ("in_progress", 1)


def test_an_email_link_uses_the_email_template(patient, internal_medicine, questionnaire):
    patient.email = "zhang@example.org"
    patient.save()
    target = task(patient=patient, department=internal_medicine, questionnaire=questionnaire, channel="email")

    followup_link_send(task=target)

    message = OutboundMessage.objects.get()
    assert (message.channel, message.template.code, message.template.language) == ("email", "follow_up_link", "zh-hans")
    assert "/f/" in message.body


def test_a_patient_without_consent_gets_no_sms(sms_task, patient):
    ConsentFactory(patient=patient, purpose="follow_up", channel="sms", granted=False)

    followup_link_send(task=sms_task)

    message = OutboundMessage.objects.get()
    assert message.status == "suppressed"


def test_the_periodic_sending_sends_each_due_task_once(sms_task, patient, internal_medicine, questionnaire):
    later = task(
        patient=patient,
        department=internal_medicine,
        questionnaire=questionnaire,
        channel="sms",
        due_date=timezone.localdate() + dt.timedelta(days=3),
        offset_days=3,
    )

    first = followup_links_send_due()
    second = followup_links_send_due()

    later.refresh_from_db()
    assert (first, second) == (1, 0)
    assert list(OutboundMessage.objects.values_list("idempotency_key", flat=True)) == [
        f"followup:{sms_task.uuid}:link:1"
    ]
    assert later.status == "pending"


def test_the_periodic_sending_closes_the_task_of_a_patient_who_withdrew_consent(sms_task, patient):
    ConsentFactory(patient=patient, purpose="follow_up", channel="sms", granted=False)

    assert followup_links_send_due() == 0

    sms_task.refresh_from_db()
    assert (sms_task.status, sms_task.closed_reason) == ("closed", "consent_withdrawn")
    assert OutboundMessage.objects.count() == 0


def test_a_reminder_goes_once_with_a_fresh_link_to_the_same_answers(sms_task, client):
    link, path = send(sms_task)
    client.post(path, {"q-pain": "false", "action": "save"})
    FollowUpLink.objects.filter(pk=link.pk).update(created_at=timezone.now() - dt.timedelta(days=4))

    first = followup_link_reminders_send()
    second = followup_link_reminders_send()

    reminder = OutboundMessage.objects.get(idempotency_key=f"followup:{sms_task.uuid}:reminder:1")
    page = client.get(sent_path(reminder))
    assert (first, second) == (1, 0)
    assert page.status_code == 200
    assert 'name="q-pain" value="false" checked' in page.content.decode()
    assert client.get(path).status_code == 200


# --- The patient's page ----------------------------------------------------------------------------------


def test_the_link_opens_the_questionnaire_in_the_patient_s_language(sms_task, patient, client):
    patient.preferred_language = "zh-hans"
    patient.save()
    link, path = send(sms_task)

    response = client.get(path)

    link.refresh_from_db()
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in response.content.decode()
    assert 'name="q-pain"' in response.content.decode()
    assert link.opened_at is not None


def test_an_unknown_token_is_404_and_an_expired_one_410(sms_task, client):
    link, path = send(sms_task)
    FollowUpLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    unknown = client.get("/f/" + "x" * 43 + "/")
    expired = client.get(path)
    posted = client.post(path, {**COMPLETE, "action": "submit"})

    assert (unknown.status_code, unknown.context["kind"]) == (404, "unknown")
    assert (expired.status_code, expired.context["kind"]) == (410, "expired")
    assert posted.status_code == 410
    assert QuestionnaireResponse.objects.count() == 0


def test_a_token_is_signed_and_a_forged_one_is_refused_before_the_database_is_asked(
    sms_task, client, django_assert_num_queries
):
    link, path = send(sms_task)
    token = path.strip("/").split("/")[-1]
    nonce, signature = token.split(".")
    forged = f"{nonce}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"

    assert token_signed(token) and not token_signed(forged) and not token_signed(nonce)
    with django_assert_num_queries(0), pytest.raises(LinkGone) as refused:
        followup_link_open(token=forged)
    with pytest.raises(LinkGone) as unknown:
        followup_link_open(token=token_new())  # well signed, never issued
    assert refused.value.status == unknown.value.status == 404
    assert client.get(f"/f/{forged}/").status_code == 404
    assert client.get(path).status_code == 200


def test_save_and_continue_keeps_an_unfinished_response(sms_task, client):
    link, path = send(sms_task)

    saved = client.post(path, {"q-pain": "true", "action": "save"})
    again = client.get(path)

    link.refresh_from_db()
    sms_task.refresh_from_db()
    response = QuestionnaireResponse.objects.get()
    assert saved.status_code == 200
    assert (response.status, response.answers, response.source) == ("in_progress", {"pain": True}, "sms")
    assert (link.response_id, link.used_at, sms_task.status) == (response.pk, None, "in_progress")
    assert 'name="q-pain" value="true" checked' in again.content.decode()


def test_submitting_completes_the_task_and_the_link_then_thanks_never_the_form(sms_task, client):
    link, path = send(sms_task)
    client.post(path, {"q-pain": "true", "action": "save"})

    submitted = client.post(path, {**COMPLETE, "action": "submit"})
    afterwards = client.get(path)
    resubmitted = client.post(path, {"q-pain": "false", "action": "submit"})

    sms_task.refresh_from_db()
    link.refresh_from_db()
    response = QuestionnaireResponse.objects.get()
    assert (submitted.status_code, submitted["Location"]) == (302, path)
    assert (afterwards.status_code, afterwards.context["kind"]) == (410, "thanks")
    assert 'name="q-pain"' not in afterwards.content.decode()
    assert resubmitted.status_code == 410
    assert (response.status, response.answers) == ("completed", {"pain": True, "pain_level": 3, "sleep": "good"})
    assert (sms_task.status, sms_task.response_id) == ("completed", response.pk)
    assert link.used_at is not None


def test_a_submission_missing_a_required_answer_names_it_and_changes_nothing(sms_task, client):
    link, path = send(sms_task)

    response = client.post(path, {"q-pain": "true", "action": "submit"})

    sms_task.refresh_from_db()
    assert response.status_code == 400
    assert response.context["problems"] == ["疼痛程度: 此题为必答题。"]  # in the patient's language
    assert (sms_task.status, QuestionnaireResponse.objects.count()) == ("in_progress", 0)


def test_beat_sends_due_links_and_reminders_through_registered_tasks(sms_task):
    from django.conf import settings

    import followups.tasks
    from hcrm.celery import app

    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {"followups.tasks.followup_links_send_due", "followups.tasks.followup_link_reminders_send"} <= names
    assert {name for name in names if name.startswith("followups.")} <= set(app.tasks)
    assert followups.tasks.followup_links_send_due_task.apply().get() == 1


def test_a_link_that_cannot_be_queued_leaves_the_task_waiting(sms_task):
    from patients.models import MessageTemplate

    MessageTemplate.objects.filter(code="follow_up_link").delete()

    assert followup_links_send_due() == 0

    sms_task.refresh_from_db()
    assert (sms_task.status, sms_task.attempts, FollowUpLink.objects.count()) == ("pending", 0, 0)
