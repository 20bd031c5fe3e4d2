"""Console pages of the outbox: list with filters, why a message was suppressed, resend, templates."""

from __future__ import annotations

import pytest

from patients.models import MessageStatus, MessageTemplate
from patients.services import messages as outbox
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def zhang(internal_medicine):
    return PatientFactory(name="张三", sex="male", mobile="+8613812345678", departments=[internal_medicine])


def _queue(patient, template, key, **extra):
    return outbox.message_send(
        patient=patient, channel="sms", purpose="appointment", template=template, context={"content": "明天复诊"},
        idempotency_key=key, **extra,
    )  # fmt: skip


def test_the_outbox_lists_messages_with_status_filter_and_shows_why_one_was_suppressed(
    client, staff, zhang, sms_template, no_quiet_hours
):
    client.force_login(staff["agent"])
    _queue(zhang, sms_template, "ok")
    dead = PatientFactory(name="王五", is_deceased=True)
    suppressed = _queue(dead, sms_template, "dead")

    everything = client.get("/patients/messages/")
    only_suppressed = client.get("/patients/messages/", {"status": "suppressed"})
    detail = client.get(f"/patients/messages/{suppressed.uuid}/")

    assert everything.status_code == 200
    assert [m.idempotency_key for m in everything.context["page"].object_list] == ["dead", "ok"]
    assert [m.idempotency_key for m in only_suppressed.context["page"].object_list] == ["dead"]
    assert "The patient is deceased." in detail.content.decode()


def test_roles_without_the_permission_get_403(client, staff):
    client.force_login(staff["analyst"])

    assert client.get("/patients/messages/").status_code == 403
    assert client.get("/patients/messages/templates/").status_code == 403


def test_an_administrator_resends_a_failed_message_from_its_page(
    client, staff, zhang, sms_template, no_quiet_hours, scripted
):
    scripted.script = ["fail"]
    message = _queue(zhang, sms_template, "f")
    outbox.message_deliver(message_id=message.pk)
    client.force_login(staff["administrator"])

    page = client.get(f"/patients/messages/{message.uuid}/")
    response = client.post(f"/patients/messages/{message.uuid}/resend/")

    message.refresh_from_db()
    assert "Send again" in page.content.decode()
    assert response.status_code == 302
    assert message.status == MessageStatus.QUEUED


def test_withdraw_from_the_console(client, staff, zhang, sms_template, no_quiet_hours):
    message = _queue(zhang, sms_template, "w")
    client.force_login(staff["administrator"])

    client.post(f"/patients/messages/{message.uuid}/withdraw/", {"reason": "患者来电取消"})

    message.refresh_from_db()
    assert (message.status, message.status_reason) == (MessageStatus.WITHDRAWN, "患者来电取消")


def test_a_doctor_cannot_withdraw(client, staff, zhang, sms_template, no_quiet_hours):
    message = _queue(zhang, sms_template, "w")
    client.force_login(staff["doctor"])

    response = client.post(f"/patients/messages/{message.uuid}/withdraw/")

    message.refresh_from_db()
    assert response.status_code == 403
    assert message.status == MessageStatus.QUEUED


def test_the_template_editor_refuses_unknown_variables_and_previews_for_a_sample_patient(client, staff, zhang):
    client.force_login(staff["administrator"])
    data = {"code": "recall", "name": "召回", "purpose": "care", "channel": "sms", "language": "zh-hans",
            "body": "{patient_salutation}，{dose}", "is_active": "on"}  # fmt: skip

    refused = client.post("/patients/messages/templates/new/", data)
    saved = client.post("/patients/messages/templates/new/", {**data, "body": "{patient_salutation}，请回院复诊。"})
    template = MessageTemplate.objects.get()
    preview = client.get(f"/patients/messages/templates/{template.uuid}/", {"mrn": zhang.mrn})

    assert refused.status_code == 200
    assert refused.context["form"].errors == {"body": ["Unknown variable {dose}."]}
    assert saved.status_code == 302
    assert preview.context["preview"] == {"subject": "", "body": "张先生，请回院复诊。"}


def test_a_doctor_may_read_templates_but_not_change_them(client, staff, sms_template):
    client.force_login(staff["doctor"])

    page = client.get(f"/patients/messages/templates/{sms_template.uuid}/")
    post = client.post(f"/patients/messages/templates/{sms_template.uuid}/", {"body": "x"})

    sms_template.refresh_from_db()
    assert page.status_code == 200
    assert page.context["can_change"] is False
    assert post.status_code == 403
    assert sms_template.body.startswith("【{hospital_name}】")
