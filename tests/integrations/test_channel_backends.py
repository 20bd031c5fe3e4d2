"""The development and email channel backends."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from hcrm.channels import ChannelError, OutgoingMessage, channel_backend
from integrations.channels.backends import ConsoleBackend, EmailBackend, FileBackend, MemoryBackend
from patients.models import MessageStatus, MessageTemplate
from patients.services import messages as outbox
from tests.factories import PatientFactory

MESSAGE = OutgoingMessage(to="+8613812345678", body="明天上午复诊", reference="k-1")


def test_the_console_backend_logs_and_returns_an_id(caplog):
    with caplog.at_level("INFO"):
        receipt = ConsoleBackend().send(MESSAGE)

    assert receipt.provider_id.startswith("console-")
    assert "明天上午复诊" in caplog.text


def test_the_file_backend_appends_one_json_line_per_message(settings, tmp_path):
    settings.CHANNEL_FILE_PATH = tmp_path / "outbox.jsonl"

    FileBackend().send(MESSAGE)
    FileBackend().send(OutgoingMessage(to="a@b.cn", body="二", subject="主题", reference="k-2"))

    lines = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(line["to"], line["body"], line["reference"]) for line in lines] == [
        ("+8613812345678", "明天上午复诊", "k-1"), ("a@b.cn", "二", "k-2"),
    ]  # fmt: skip


def test_the_memory_backend_keeps_what_it_sent():
    MemoryBackend.sent.clear()

    receipt = MemoryBackend().send(MESSAGE)

    assert MemoryBackend.sent == [MESSAGE]
    assert receipt.provider_id == "memory-1"
    MemoryBackend.sent.clear()


def test_the_email_backend_sends_through_django_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    receipt = EmailBackend().send(
        OutgoingMessage(to="zhang@example.cn", body="正文", subject="复诊通知", reference="k")
    )

    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [(["zhang@example.cn"], "复诊通知", "正文")]
    assert mail.outbox[0].extra_headers["Message-ID"] == f"<{receipt.provider_id}@hcrm>"


def test_a_mail_server_that_cannot_be_reached_is_worth_retrying(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2

    with pytest.raises(ChannelError) as error:
        EmailBackend().send(OutgoingMessage(to="zhang@example.cn", body="x", subject="y"))

    assert error.value.retryable is True


def test_an_unknown_channel_has_no_backend():
    with pytest.raises(ValueError):
        channel_backend("pigeon")


@pytest.mark.django_db
def test_an_email_goes_from_the_outbox_to_the_mailbox(settings, no_quiet_hours):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel_backend.cache_clear()
    template = MessageTemplate.objects.create(
        code="notice", name="通知", purpose="care", channel="email", language="zh-hans",
        subject="{hospital_name}通知", body="{patient_salutation}：{content}",
    )  # fmt: skip
    patient = PatientFactory(name="王芳", sex="female", email="wangfang@example.cn")
    without_email = PatientFactory(email="")

    message = outbox.message_send(
        patient=patient, channel="email", purpose="care", template=template, context={"content": "天冷注意保暖"},
        idempotency_key="email-1",
    )  # fmt: skip
    refused = outbox.message_send(
        patient=without_email, channel="email", purpose="care", template=template, context={"content": "x"},
        idempotency_key="email-2",
    )  # fmt: skip
    outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [
        (["wangfang@example.cn"], "HCRM 中医医院通知", "王女士：天冷注意保暖"),
    ]  # fmt: skip
    assert (refused.status, refused.status_reason) == (MessageStatus.SUPPRESSED, "No valid Email address.")
