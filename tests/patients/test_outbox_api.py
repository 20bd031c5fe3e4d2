"""The outbox over the API: permissions, queueing, withdrawal, templates and the provider's webhooks."""

from __future__ import annotations

import pytest

from hcrm.services import integration_key_create
from patients.models import Consent, MessageStatus, MessageTemplate, OutboundMessage
from patients.services import messages as outbox
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def zhang(internal_medicine):
    return PatientFactory(name="张三", sex="male", mobile="+8613812345678", departments=[internal_medicine])


@pytest.fixture
def stranger(acupuncture):
    return PatientFactory(name="李四", mobile="+8613912345678", departments=[acupuncture])


def _queue(patient, template, key):
    return outbox.message_send(
        patient=patient, channel="sms", purpose="appointment", template=template, context={"content": "x"},
        idempotency_key=key,
    )  # fmt: skip


def _payload(patient, key="api-1", **extra):
    return {"patient": str(patient.uuid), "channel": "sms", "purpose": "appointment", "template": "notice",
            "context": {"content": "明天复诊"}, "idempotency_key": key, **extra}  # fmt: skip


# --- Listing ----------------------------------------------------------------------------------------------


def test_listing_needs_a_signed_in_role_that_may_read_messages(api, staff, zhang, sms_template, no_quiet_hours):
    _queue(zhang, sms_template, "a")

    anonymous = api.get("/api/v1/messages/")
    analyst = api.as_user(staff["analyst"]).get("/api/v1/messages/")

    assert (anonymous.status_code, analyst.status_code) == (401, 403)


def test_a_doctor_sees_messages_of_own_department_patients_only(
    api, staff, zhang, stranger, sms_template, no_quiet_hours
):
    mine = _queue(zhang, sms_template, "mine")
    _queue(stranger, sms_template, "theirs")

    doctor = api.as_user(staff["doctor"]).get("/api/v1/messages/")
    agent = api.as_user(staff["agent"]).get("/api/v1/messages/")

    assert [row["id"] for row in doctor.json()["results"]] == [str(mine.uuid)]
    assert agent.json()["count"] == 2


def test_filters_by_status_and_purpose(api, staff, zhang, sms_template, no_quiet_hours):
    queued = _queue(zhang, sms_template, "q")
    zhang_dead = PatientFactory(is_deceased=True, departments=zhang.departments.all())
    _queue(zhang_dead, sms_template, "s")

    response = api.as_user(staff["agent"]).get("/api/v1/messages/", {"status": "queued", "purpose": "appointment"})

    assert [row["id"] for row in response.json()["results"]] == [str(queued.uuid)]


def test_the_message_list_makes_a_fixed_number_of_queries(
    api, staff, zhang, sms_template, no_quiet_hours, django_assert_num_queries
):
    client = api.as_user(staff["agent"])
    for index in range(3):
        _queue(zhang, sms_template, f"few-{index}")
    client.get("/api/v1/messages/")  # warm the content-type cache

    with django_assert_num_queries(5):
        client.get("/api/v1/messages/")
    for index in range(30):
        _queue(zhang, sms_template, f"many-{index}")
    with django_assert_num_queries(6):  # one more: counting the rows beyond the first page
        client.get("/api/v1/messages/")


# --- Queueing and withdrawal ---------------------------------------------------------------------------


def test_an_agent_queues_a_message_and_a_repeat_returns_it(api, staff, zhang, sms_template, no_quiet_hours):
    client = api.as_user(staff["agent"])

    first = client.post("/api/v1/messages/", _payload(zhang), format="json")
    repeat = client.post("/api/v1/messages/", _payload(zhang), format="json")

    assert (first.status_code, repeat.status_code) == (201, 200)
    assert first.json()["id"] == repeat.json()["id"]
    assert first.json()["body"] == "【HCRM 中医医院】张先生，明天复诊"
    assert OutboundMessage.objects.count() == 1


def test_queueing_is_refused_to_roles_without_the_permission_and_changes_nothing(api, staff, zhang, sms_template):
    response = api.as_user(staff["nurse"]).post("/api/v1/messages/", _payload(zhang), format="json")

    assert response.status_code == 403
    assert OutboundMessage.objects.count() == 0


def test_a_bad_message_names_the_field(api, staff, zhang, sms_template, no_quiet_hours):
    response = api.as_user(staff["agent"]).post(
        "/api/v1/messages/", _payload(zhang, channel="fax", template="nope"), format="json"
    )

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["channel"]


def test_withdraw_then_too_late(api, staff, zhang, sms_template, no_quiet_hours, scripted):
    client = api.as_user(staff["administrator"])
    pending = _queue(zhang, sms_template, "pending")
    sent = _queue(zhang, sms_template, "sent")
    outbox.message_deliver(message_id=sent.pk)

    withdrawn = client.post(f"/api/v1/messages/{pending.uuid}/withdraw/", {"reason": "预约已取消"}, format="json")
    too_late = client.post(f"/api/v1/messages/{sent.uuid}/withdraw/", {}, format="json")
    doctor = api.as_user(staff["doctor"]).post(f"/api/v1/messages/{pending.uuid}/withdraw/", {}, format="json")

    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert too_late.status_code == 409
    assert too_late.json()["errors"][0]["code"] == "too_late"
    assert doctor.status_code == 403


def test_resend_only_a_failed_message(api, staff, zhang, sms_template, no_quiet_hours, scripted):
    scripted.script = ["fail"]
    failed = _queue(zhang, sms_template, "failed")
    outbox.message_deliver(message_id=failed.pk)
    queued = _queue(zhang, sms_template, "queued")
    client = api.as_user(staff["administrator"])

    resent = client.post(f"/api/v1/messages/{failed.uuid}/resend/")
    refused = client.post(f"/api/v1/messages/{queued.uuid}/resend/")

    assert (resent.status_code, resent.json()["status"]) == (200, "queued")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "status"


# --- Templates ------------------------------------------------------------------------------------------


def test_a_template_with_an_unknown_variable_is_refused_when_saved(api, staff):
    response = api.as_user(staff["administrator"]).post(
        "/api/v1/message-templates/",
        {"code": "bad", "name": "x", "purpose": "care", "channel": "sms", "language": "zh-hans",
         "body": "{patient_name}，您的{dosage}已备好"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "body", "code": "unknown_variable", "message": "Unknown variable {dosage}."}
    ]
    assert MessageTemplate.objects.count() == 0


def test_templates_are_edited_by_administrators_and_previewed(api, staff, zhang, sms_template):
    admin = api.as_user(staff["administrator"])

    changed = admin.patch(
        f"/api/v1/message-templates/{sms_template.uuid}/", {"body": "{patient_name}：{content}"}, format="json"
    )
    preview = admin.post(
        f"/api/v1/message-templates/{sms_template.uuid}/preview/", {"patient": str(zhang.uuid)}, format="json"
    )
    doctor = api.as_user(staff["doctor"]).patch(
        f"/api/v1/message-templates/{sms_template.uuid}/", {"body": "x"}, format="json"
    )

    assert changed.status_code == 200
    assert preview.json() == {"subject": "", "body": "张三：[content]"}
    assert doctor.status_code == 403
    sms_template.refresh_from_db()
    assert sms_template.body == "{patient_name}：{content}"


def test_the_variables_are_listed(api, staff):
    names = [row["name"] for row in api.as_user(staff["doctor"]).get("/api/v1/message-templates/variables/").json()]

    assert {"patient_name", "hospital_name", "appointment_time", "code", "link"} <= set(names)


# --- Provider webhooks ------------------------------------------------------------------------------------


@pytest.fixture
def provider(api):
    _key, plain = integration_key_create(actor=None, name="SMS gateway", scopes=["messages.events"])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return api


def test_receipts_mark_messages_delivered(provider, zhang, sms_template, no_quiet_hours, scripted):
    message = _queue(zhang, sms_template, "r")
    outbox.message_deliver(message_id=message.pk)

    response = provider.post(
        "/api/v1/message-events/receipts/", [{"provider_id": "scripted-1", "status": "delivered"}], format="json"
    )

    assert response.json() == {"updated": 1}
    assert OutboundMessage.objects.get().status == MessageStatus.DELIVERED


def test_inbound_opt_out_over_the_webhook(provider, zhang):
    response = provider.post(
        "/api/v1/message-events/inbound/", {"sender": "13812345678", "text": "TD", "provider_id": "in-9"}, format="json"
    )

    assert response.json() == {"received": 1, "opt_outs": 1}
    assert set(Consent.objects.values_list("purpose", "channel", "granted")) == {
        ("marketing", "sms", False), ("care", "sms", False),
    }  # fmt: skip


def test_webhooks_need_the_events_scope(api, staff):
    _key, plain = integration_key_create(actor=None, name="HIS", scopes=["patients.read"])
    anonymous = api.post("/api/v1/message-events/inbound/", {"sender": "1", "text": "TD"}, format="json")
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    wrong_scope = api.post("/api/v1/message-events/inbound/", {"sender": "1", "text": "TD"}, format="json")
    staff_user = api.as_user(staff["administrator"]).post(
        "/api/v1/message-events/receipts/", {"provider_id": "x", "status": "delivered"}, format="json"
    )

    assert (anonymous.status_code, wrong_scope.status_code, staff_user.status_code) == (401, 403, 403)


def test_a_malformed_receipt_names_the_field(provider):
    response = provider.post(
        "/api/v1/message-events/receipts/", [{"provider_id": "x", "status": "read"}], format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "0.status"
