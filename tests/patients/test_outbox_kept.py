"""The outbox keeps templates and outreach settings per process: a change is seen by the next message."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patients.models import MessageStatus, MessageTemplate, OutboundMessage, OutreachSettings
from patients.selectors import messages as message_selectors
from patients.selectors import outreach as outreach_selectors
from patients.selectors.outreach import outreach_settings
from patients.services import messages as outbox
from tests.factories import PatientFactory
from tests.patients.outbox import quiet_window_around_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def zhang(internal_medicine):
    return PatientFactory(name="张三", sex="male", mobile="+8613812345678", departments=[internal_medicine])


def _send(patient, key, template="notice", **kwargs):
    defaults = {"channel": "sms", "purpose": "appointment", "context": {"content": "明早8点复诊"}}
    return outbox.message_send(patient=patient, template=template, idempotency_key=key, **{**defaults, **kwargs})


def _statements(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


def test_a_template_and_the_settings_are_read_once_while_fresh(zhang, sms_template, no_quiet_hours):
    _send(zhang, "k1")

    with CaptureQueriesContext(connection) as queries:
        _send(zhang, "k2")

    statements = _statements(queries)
    assert not [sql for sql in statements if "patients_messagetemplate" in sql or "patients_outreachsettings" in sql]
    # The consent read and the insert: no read of the key before it, no savepoint around the insert.
    assert len(statements) == 2
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    assert OutboundMessage.objects.count() == 2


def test_a_template_changed_in_this_process_is_used_by_the_next_message(zhang, sms_template, no_quiet_hours):
    assert _send(zhang, "k1").body.endswith("明早8点复诊")

    outbox.message_template_save(actor=None, template=sms_template, data={"body": "新的通知：{content}"})

    assert _send(zhang, "k2").body == "新的通知：明早8点复诊"


def test_a_template_deactivated_or_deleted_is_not_used_by_the_next_message(zhang, sms_template, no_quiet_hours):
    english = MessageTemplate.objects.create(
        code="notice", name="notice", purpose="appointment", channel="sms", language="en", body="Note: {content}"
    )
    zhang.preferred_language = "en"
    zhang.save()
    assert _send(zhang, "k1").template == english

    english.is_active = False
    english.save()
    assert _send(zhang, "k2").template == sms_template

    sms_template.delete()
    with pytest.raises(ValidationError) as missing:
        _send(zhang, "k3")
    assert list(missing.value.error_dict) == ["template"]


def test_a_new_template_is_found_by_the_next_message(zhang, no_quiet_hours):
    with pytest.raises(ValidationError):
        _send(zhang, "k1")

    MessageTemplate.objects.create(
        code="notice", name="通知", purpose="appointment", channel="sms", language="zh-hans", body="{content}"
    )

    assert _send(zhang, "k1").body == "明早8点复诊"


def test_quiet_hours_changed_in_this_process_apply_to_the_next_message(zhang, sms_template, no_quiet_hours):
    assert _send(zhang, "k1").status == MessageStatus.QUEUED

    quiet_window_around_now(outreach_settings())

    assert _send(zhang, "k2").status == MessageStatus.DEFERRED


def test_a_change_made_in_another_process_is_seen_after_the_time_to_live(
    zhang, sms_template, no_quiet_hours, monkeypatch
):
    _send(zhang, "k1")
    # Another process's edits: no signal reaches this one.
    MessageTemplate.objects.filter(pk=sms_template.pk).update(body="改过：{content}")
    local = timezone.localtime()
    OutreachSettings.objects.filter(pk=1).update(
        quiet_hours_start=(local - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_hours_end=(local + dt.timedelta(minutes=90)).time().replace(second=0, microsecond=0),
    )
    kept = _send(zhang, "k2")
    assert (kept.body, kept.status) == ("【HCRM 中医医院】张先生，明早8点复诊", MessageStatus.QUEUED)

    monkeypatch.setattr(message_selectors, "TEMPLATES_TTL_SECONDS", 0.0)
    monkeypatch.setattr(outreach_selectors, "OUTREACH_SETTINGS_TTL_SECONDS", 0.0)

    fresh = _send(zhang, "k3")
    assert (fresh.body, fresh.status) == ("改过：明早8点复诊", MessageStatus.DEFERRED)


def test_a_used_key_returns_its_message_even_after_its_template_was_withdrawn(zhang, sms_template, no_quiet_hours):
    first = _send(zhang, "appointment:7:confirmed")
    sms_template.is_active = False
    sms_template.save()

    assert _send(zhang, "appointment:7:confirmed").pk == first.pk
    with pytest.raises(ValidationError):
        _send(zhang, "appointment:8:confirmed")


def test_a_used_key_leaves_the_callers_transaction_usable(zhang, sms_template, no_quiet_hours):
    first = _send(zhang, "appointment:7:confirmed")

    with transaction.atomic():
        again = _send(zhang, "appointment:7:confirmed", context={"content": "另一条"})
        other = _send(zhang, "appointment:8:confirmed")

    assert again.pk == first.pk
    assert again.body == first.body
    assert OutboundMessage.objects.filter(pk=other.pk).exists()
    assert OutboundMessage.objects.count() == 2
