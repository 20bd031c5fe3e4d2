"""The outbox: queueing by the rules, sending once, retries, failures, withdrawal, receipts and opt-outs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from patients.models import Consent, ContactEntry, InboundSms, MessageStatus, OutboundMessage
from patients.selectors.archive import consent_granted
from patients.services import messages as outbox
from patients.services.archive import consent_set
from tests.factories import PatientFactory
from tests.patients.outbox import quiet_window_around_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def zhang(internal_medicine):
    return PatientFactory(name="张三", sex="male", mobile="+8613812345678", departments=[internal_medicine])


def _send(patient, template, key="k1", **kwargs):
    defaults = {"channel": "sms", "purpose": "appointment", "context": {"content": "明早8点复诊"}}
    return outbox.message_send(patient=patient, template=template, idempotency_key=key, **{**defaults, **kwargs})


# --- Queueing --------------------------------------------------------------------------------------------


def test_a_message_is_rendered_for_the_patient_and_queued(zhang, sms_template, no_quiet_hours, settings):
    settings.HOSPITAL_NAME = "广州中医医院"

    message = _send(zhang, sms_template)

    assert message.status == MessageStatus.QUEUED
    assert message.body == "【广州中医医院】张先生，明早8点复诊"
    assert message.to_address == "+8613812345678"
    assert message.language == "zh-hans"
    assert message.context == {"content": "明早8点复诊"}


def test_the_same_idempotency_key_returns_the_first_message(zhang, sms_template, no_quiet_hours):
    first = _send(zhang, sms_template, key="appointment:7:reminder")
    second = _send(zhang, sms_template, key="appointment:7:reminder", context={"content": "另一条"})

    assert second.pk == first.pk
    assert second.body == first.body
    assert OutboundMessage.objects.count() == 1


def test_a_template_code_picks_the_patients_language_and_falls_back_to_chinese(zhang, sms_template, no_quiet_hours):
    zhang.preferred_language = "en"
    zhang.save()

    message = _send(zhang, "notice")

    assert message.template == sms_template
    assert message.language == "zh-hans"


def test_unknown_template_or_variable_is_refused_and_nothing_is_queued(zhang, sms_template, no_quiet_hours):
    with pytest.raises(ValidationError) as missing:
        _send(zhang, "no_such_template")
    with pytest.raises(ValidationError) as unknown:
        _send(zhang, sms_template, key="k2", context={"dosage": "3g"})

    assert list(missing.value.error_dict) == ["template"]
    assert list(unknown.value.error_dict) == ["context"]
    assert OutboundMessage.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"is_deceased": True}, "The patient is deceased."),
        ({"mobile": ""}, "No valid SMS address."),
        ({"mobile": "+861065123456"}, "No valid SMS address."),  # a landline cannot take an SMS
    ],
)
def test_a_message_that_breaks_a_rule_is_kept_as_suppressed_with_the_reason(
    zhang, sms_template, no_quiet_hours, change, reason
):
    for field, value in change.items():
        setattr(zhang, field, value)
    zhang.save()

    message = _send(zhang, sms_template)

    assert (message.status, message.status_reason) == (MessageStatus.SUPPRESSED, reason)
    assert OutboundMessage.objects.get().status == MessageStatus.SUPPRESSED


def test_marketing_needs_an_opt_in(zhang, sms_template, no_quiet_hours):
    refused = _send(zhang, sms_template, key="m1", purpose="marketing")
    consent_set(actor=None, patient=zhang, purpose="marketing", channel="sms", granted=True)
    allowed = _send(zhang, sms_template, key="m2", purpose="marketing")

    assert refused.status_reason == "No consent to Marketing messages by SMS."
    assert (refused.status, allowed.status) == (MessageStatus.SUPPRESSED, MessageStatus.QUEUED)


def test_a_message_in_quiet_hours_is_deferred_to_the_first_allowed_minute(zhang, sms_template, no_quiet_hours):
    quiet_window_around_now(no_quiet_hours, minutes_after=90)

    message = _send(zhang, sms_template)

    assert message.status == MessageStatus.DEFERRED
    assert message.status_reason == "Quiet hours."
    local_end = timezone.localtime(message.not_before)
    assert local_end.time() == no_quiet_hours.quiet_hours_end
    assert dt.timedelta(minutes=80) < message.not_before - timezone.now() <= dt.timedelta(minutes=91)


def test_an_urgent_message_ignores_quiet_hours(zhang, sms_template, no_quiet_hours):
    quiet_window_around_now(no_quiet_hours)

    message = _send(zhang, sms_template, priority="urgent")

    assert message.status == MessageStatus.QUEUED


# --- Sending ----------------------------------------------------------------------------------------------


def test_a_due_message_is_sent_once_and_logged_as_a_contact(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)

    first = outbox.message_deliver(message_id=message.pk)
    again = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (first, again) == ("sent", "not claimed")
    assert scripted.calls == 1
    assert scripted.sent[0].to == "+8613812345678"
    assert scripted.sent[0].reference == "k1"
    assert (message.status, message.provider_id, message.attempts) == (MessageStatus.SENT, "scripted-1", 1)
    contact = ContactEntry.objects.get()
    assert (contact.message, contact.channel, contact.direction, contact.outcome, contact.staff) == (
        message, "sms", "out", "sent", None,
    )  # fmt: skip
    assert contact.summary == message.body


def test_consent_withdrawn_after_queueing_suppresses_at_send_time(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)
    consent_set(actor=None, patient=zhang, purpose="appointment", channel="sms", granted=False)

    outcome = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome == "suppressed"
    assert message.status_reason == "No consent to Appointments messages by SMS."
    assert scripted.calls == 0


def test_a_patient_who_died_after_queueing_is_not_messaged(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)
    zhang.is_deceased = True
    zhang.save()

    assert outbox.message_deliver(message_id=message.pk) == "suppressed"
    assert scripted.calls == 0


def test_quiet_hours_that_began_after_queueing_defer_the_send(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)
    quiet_window_around_now(no_quiet_hours)

    outcome = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (outcome, message.status, scripted.calls) == ("deferred", MessageStatus.DEFERRED, 0)
    assert message.not_before > timezone.now()


def test_the_daily_cap_moves_further_messages_to_the_next_day(zhang, sms_template, no_quiet_hours, scripted):
    no_quiet_hours.daily_message_cap = 2
    no_quiet_hours.save()
    sent = [_send(zhang, sms_template, key=f"k{i}") for i in range(3)]
    urgent = _send(zhang, sms_template, key="urgent", priority="urgent")

    outcomes = [outbox.message_deliver(message_id=m.pk) for m in [*sent, urgent]]

    assert outcomes == ["sent", "sent", "deferred", "sent"]
    third = OutboundMessage.objects.get(idempotency_key="k2")
    assert third.status_reason == "Daily limit of 2 messages reached."
    assert timezone.localtime(third.not_before).date() == timezone.localdate() + dt.timedelta(days=1)


def test_a_transient_failure_is_retried_with_backoff_then_succeeds(zhang, sms_template, no_quiet_hours, scripted):
    scripted.script = ["retry"]
    message = _send(zhang, sms_template)

    first = outbox.message_deliver(message_id=message.pk)
    message.refresh_from_db()
    waiting = (message.status, message.attempts, message.status_reason)
    too_early = outbox.message_deliver(message_id=message.pk)
    OutboundMessage.objects.filter(pk=message.pk).update(not_before=timezone.now())
    second = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (first, too_early, second) == ("retry", "not claimed", "sent")
    assert waiting == (MessageStatus.QUEUED, 1, "Attempt 1 failed, retrying: gateway busy")
    assert (message.status, message.attempts, scripted.calls) == (MessageStatus.SENT, 2, 2)


def test_a_permanent_failure_is_not_retried(zhang, sms_template, no_quiet_hours, scripted):
    scripted.script = ["fail"]
    message = _send(zhang, sms_template)

    outcome = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (outcome, message.status, message.status_reason) == ("failed", MessageStatus.FAILED, "number refused")
    assert ContactEntry.objects.count() == 0


def test_retries_stop_after_the_last_attempt(zhang, sms_template, no_quiet_hours, scripted, settings):
    settings.MESSAGE_MAX_ATTEMPTS = 2
    scripted.script = ["retry", "retry"]
    message = _send(zhang, sms_template)

    outcomes = []
    for _attempt in range(2):
        outcomes.append(outbox.message_deliver(message_id=message.pk))
        OutboundMessage.objects.filter(pk=message.pk).update(not_before=timezone.now())

    message.refresh_from_db()
    assert outcomes == ["retry", "failed"]
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 2)


def test_a_failed_message_can_be_sent_again(zhang, sms_template, no_quiet_hours, scripted, staff):
    scripted.script = ["fail"]
    message = _send(zhang, sms_template)
    outbox.message_deliver(message_id=message.pk)

    outbox.message_resend(actor=staff["administrator"], message=message)
    outcome = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (outcome, message.status) == ("sent", MessageStatus.SENT)


def test_only_a_failed_message_can_be_resent(zhang, sms_template, no_quiet_hours, staff):
    message = _send(zhang, sms_template)

    with pytest.raises(ValidationError):
        outbox.message_resend(actor=staff["administrator"], message=message)


# --- Withdrawal -------------------------------------------------------------------------------------------


def test_a_withdrawn_message_never_goes_out(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template, key="appointment:9:reminder")

    withdrawn = outbox.message_withdraw_key(idempotency_key="appointment:9:reminder", reason="预约已取消")
    outcome = outbox.message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert (withdrawn, outcome, scripted.calls) == (True, "not claimed", 0)
    assert (message.status, message.status_reason) == (MessageStatus.WITHDRAWN, "预约已取消")


def test_withdrawing_a_sent_message_says_it_is_too_late(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)
    outbox.message_deliver(message_id=message.pk)

    assert outbox.message_withdraw(message=message) is False
    assert message.status == MessageStatus.SENT


def test_withdrawal_of_a_claimed_message_wins_before_the_provider_is_called(
    zhang, sms_template, no_quiet_hours, scripted
):
    # given a worker that has claimed the message but not yet locked it to send
    message = _send(zhang, sms_template)
    OutboundMessage.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING)

    withdrawn = outbox.message_withdraw(message=message)

    assert withdrawn is True
    assert OutboundMessage.objects.get().status == MessageStatus.WITHDRAWN


# --- Dispatch and interrupted sends -------------------------------------------------------------------


def test_the_dispatcher_hands_out_due_messages_once(zhang, sms_template, no_quiet_hours, scripted):
    from hcrm.celery import app

    due = _send(zhang, sms_template, key="due")
    later = _send(zhang, sms_template, key="later", not_before=timezone.now() + dt.timedelta(hours=2))
    OutboundMessage.objects.filter(pk=due.pk).update(dispatched_at=None)

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the handed-out task runs here, in this test's transaction
    try:
        handed = outbox.messages_dispatch_due()
        handed_again = outbox.messages_dispatch_due()
    finally:
        app.conf.task_always_eager = eager

    assert (handed, handed_again) == (1, 0)
    assert OutboundMessage.objects.get(pk=due.pk).status == MessageStatus.SENT
    assert OutboundMessage.objects.get(pk=later.pk).status == MessageStatus.QUEUED


def test_a_message_left_sending_by_a_dead_worker_is_failed_not_resent(zhang, sms_template, no_quiet_hours):
    message = _send(zhang, sms_template)
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, updated_at=timezone.now() - dt.timedelta(minutes=20)
    )

    closed = outbox.messages_fail_interrupted()

    message.refresh_from_db()
    assert closed == 1
    assert message.status == MessageStatus.FAILED
    assert message.status_reason.startswith("Interrupted while sending")


# --- Provider callbacks ---------------------------------------------------------------------------------


def test_a_delivery_receipt_marks_the_message_and_its_contact_delivered(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)
    outbox.message_deliver(message_id=message.pk)

    updated = outbox.message_receipt_record(provider_id="scripted-1", delivered=True)
    unknown = outbox.message_receipt_record(provider_id="nope", delivered=True)

    message.refresh_from_db()
    assert (updated, unknown) == (1, 0)
    assert message.status == MessageStatus.DELIVERED
    assert message.delivered_at is not None
    assert ContactEntry.objects.get().outcome == "delivered"


def test_a_failure_receipt_keeps_the_providers_reason(zhang, sms_template, no_quiet_hours, scripted):
    message = _send(zhang, sms_template)
    outbox.message_deliver(message_id=message.pk)

    outbox.message_receipt_record(provider_id="scripted-1", delivered=False, error="UNDELIV 空号")

    message.refresh_from_db()
    assert (message.status, message.status_reason) == (
        MessageStatus.FAILED, "The provider could not deliver it: UNDELIV 空号",
    )  # fmt: skip


@pytest.mark.parametrize("reply", ["退订", "TD", "t", " STOP "])
def test_an_opt_out_reply_withdraws_sms_consent_for_non_clinical_purposes(zhang, reply):
    inbound = outbox.inbound_sms_receive(from_number="13812345678", text=reply, provider_id="in-1")

    assert (inbound.patient, inbound.is_opt_out) == (zhang, True)
    assert consent_granted(zhang, purpose="marketing", channel="sms") is False
    assert consent_granted(zhang, purpose="care", channel="sms") is False
    assert consent_granted(zhang, purpose="follow_up", channel="sms") is True
    assert consent_granted(zhang, purpose="appointment", channel="sms") is True
    contact = ContactEntry.objects.get()
    assert (contact.channel, contact.direction, contact.outcome, contact.summary) == ("sms", "in", "received", reply)


def test_an_ordinary_reply_is_logged_but_changes_no_consent(zhang):
    outbox.inbound_sms_receive(from_number="+86 138 1234 5678", text="好的，谢谢", provider_id="in-2")

    assert Consent.objects.count() == 0
    assert ContactEntry.objects.get().summary == "好的，谢谢"


def test_the_same_inbound_sms_delivered_twice_is_stored_once(zhang):
    first = outbox.inbound_sms_receive(from_number="13812345678", text="TD", provider_id="in-3")
    second = outbox.inbound_sms_receive(from_number="13812345678", text="TD", provider_id="in-3")

    assert first.pk == second.pk
    assert InboundSms.objects.count() == 1
    assert ContactEntry.objects.count() == 1


def test_an_sms_from_an_unknown_number_is_stored_without_a_patient(db):
    inbound = outbox.inbound_sms_receive(from_number="13900000000", text="TD")

    assert inbound.patient is None
    assert InboundSms.objects.count() == 1
