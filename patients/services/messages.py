"""The outbox: one way for every module to message a patient, at most once per purpose, by the rules.

A message is queued by `message_send`, handed to a Celery worker (at once when
due, otherwise by the periodic dispatcher), claimed with a conditional update
so two workers never both take it, checked against the rules again, and sent
while its row is locked, so that a withdrawal either wins or is told it came
too late. Every sent message becomes a contact-log entry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.channels import ChannelError, OutgoingMessage, channel_backend
from hcrm.rows import row_insert_new
from patients.models import (
    PENDING_STATUSES,
    ContactChannel,
    ContactDirection,
    ContactEntry,
    ContactOutcome,
    ContactPurpose,
    InboundSms,
    Language,
    MessagePriority,
    MessagePurpose,
    MessageStatus,
    MessageTemplate,
    OutboundMessage,
    Patient,
)
from patients.selectors.messages import (
    MESSAGE_VARIABLES,
    active_templates,
    patient_address,
    sending_rules,
    standard_context,
    template_errors,
    template_render,
)
from patients.selectors.outreach import outreach_settings_kept
from patients.services.archive import consent_set
from patients.services.contacts import contact_record
from patients.validators import phone_search_key

logger = logging.getLogger(__name__)

# Minutes to wait before attempt n+1 after a transient failure of attempt n.
RETRY_MINUTES = (1, 5, 30, 120)
# A message still "sending" after this long was interrupted mid-send; it is not retried blindly.
STUCK_AFTER = dt.timedelta(minutes=15)
# Handed to a worker but not picked up after this long: the dispatcher hands it out again.
REDISPATCH_AFTER = dt.timedelta(minutes=5)
OPT_OUT_WORDS = {"退订", "TD", "T", "STOP", "UNSUBSCRIBE"}
NON_CLINICAL_PURPOSES = (MessagePurpose.MARKETING, MessagePurpose.CARE)


# --- Templates -------------------------------------------------------------------------------------


TEMPLATE_FIELDS = ("code", "name", "purpose", "channel", "language", "subject", "body", "is_active")


def message_template_save(*, actor, data: dict[str, Any], template: MessageTemplate | None = None) -> MessageTemplate:
    """Create or change a template; unknown `{variables}` are refused here, not when a message is sent."""
    template = template or MessageTemplate()
    for field, value in data.items():
        if field not in TEMPLATE_FIELDS:
            raise ValidationError({field: _("This field cannot be set here.")})
        setattr(template, field, value)
    errors: dict[str, list[ValidationError]] = {}
    for field in ("subject", "body"):
        for problem in template_errors(getattr(template, field) or ""):
            errors.setdefault(field, []).append(ValidationError(problem, code="unknown_variable"))
    try:
        template.full_clean(exclude=["updated_by", *errors])
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    template.updated_by = actor if getattr(actor, "pk", None) else None
    with transaction.atomic(), audit_acting_as(actor):
        template.save()
    return template


def message_template_delete(*, actor, template: MessageTemplate) -> None:
    with transaction.atomic(), audit_acting_as(actor):
        template.delete()


def template_for(code: str, *, channel: str, language: str) -> MessageTemplate:
    """The active template `code` for the channel in the patient's language, falling back to Chinese."""
    candidates = active_templates(code, channel)
    for choice in (language, Language.ZH_HANS, *sorted(candidates)):
        if choice in candidates:
            return candidates[choice]
    raise ValidationError(
        {"template": _("No active template “%(code)s” for %(channel)s.") % {"code": code, "channel": channel}}
    )


# --- Queueing ---------------------------------------------------------------------------------------


def message_send(
    *,
    patient: Patient,
    channel: str,
    purpose: str,
    template: MessageTemplate | str,
    context: dict[str, Any] | None = None,
    idempotency_key: str,
    not_before: dt.datetime | None = None,
    priority: str = MessagePriority.NORMAL,
    actor=None,
    source: str = "",
) -> OutboundMessage:
    """Queue a message to `patient`; a second call with the same key returns the first message unchanged.

    The rules (consent, death, address, quiet hours) are checked now and again
    when it is sent; a message that fails one is kept as `suppressed` with the reason.
    """
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationError({"idempotency_key": _("Give a key of 1 to 200 characters.")})
    now = timezone.now()
    try:
        message = _message_new(
            patient=patient,
            channel=channel,
            purpose=purpose,
            template=template,
            context=context,
            idempotency_key=idempotency_key,
            not_before=not_before,
            priority=priority,
            actor=actor,
            source=source,
            now=now,
        )
    except ValidationError:
        # A key used before returns its message, whatever changed since (a template withdrawn, say).
        existing = OutboundMessage.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        raise
    verdict = sending_rules(message, now=now, policy=outreach_settings_kept(), at_send_time=False)
    if verdict.suppress_reason:
        message.status, message.status_reason = MessageStatus.SUPPRESSED, verdict.suppress_reason
    elif verdict.defer_until is not None:
        message.status, message.status_reason = MessageStatus.DEFERRED, verdict.defer_reason
        message.not_before = max(message.not_before, verdict.defer_until)
    due_now = message.status == MessageStatus.QUEUED and message.not_before <= now
    if due_now:
        message.dispatched_at = now
    # The unique key decides, not a read before writing: a key already used (by an earlier call, or by
    # another caller a moment ago) writes nothing, and that message is returned.
    audited = actor is not None and getattr(actor, "pk", None)
    with transaction.atomic(savepoint=False) if audited else contextlib.nullcontext():
        created = row_insert_new(message, conflict=["idempotency_key"])
        if created and audited:
            audit_write(event=Event.CREATE, instance=message, details={"purpose": purpose, "channel": channel})
    if not created:
        return OutboundMessage.objects.get(idempotency_key=idempotency_key)
    if due_now:
        _enqueue_on_commit(message.pk)
    return message


def _message_new(
    *,
    patient: Patient,
    channel: str,
    purpose: str,
    template: MessageTemplate | str,
    context: dict[str, Any] | None,
    idempotency_key: str,
    not_before: dt.datetime | None,
    priority: str,
    actor,
    source: str,
    now: dt.datetime,
) -> OutboundMessage:
    """The message `message_send` would queue, rendered, not yet judged by the rules nor stored."""
    if purpose not in MessagePurpose.values:
        raise ValidationError({"purpose": _("Unknown purpose.")})
    if priority not in MessagePriority.values:
        raise ValidationError({"priority": _("Unknown priority.")})
    if isinstance(template, str):
        template = template_for(template, channel=channel, language=patient.preferred_language)
    elif template.channel != channel:
        raise ValidationError({"template": _("This template is for another channel.")})
    variables = {**standard_context(patient), **(context or {})}
    unknown = sorted(set(context or {}) - set(MESSAGE_VARIABLES))
    if unknown:
        raise ValidationError({"context": _("Unknown variables: %(names)s") % {"names": ", ".join(unknown)}})
    return OutboundMessage(
        patient=patient,
        channel=channel,
        purpose=purpose,
        priority=priority,
        template=template,
        language=template.language,
        to_address=patient_address(patient, channel) or "",
        subject=template_render(template.subject, variables),
        body=template_render(template.body, variables),
        context={key: str(value) for key, value in (context or {}).items()},
        idempotency_key=idempotency_key,
        source=source,
        not_before=max(not_before or now, now),
        created_by=actor if getattr(actor, "pk", None) else None,
    )


def _enqueue_on_commit(message_id: int) -> None:
    from patients.tasks.messages import message_deliver_task

    def enqueue() -> None:
        try:
            message_deliver_task.delay(message_id)
        except Exception:  # the broker is down: the dispatcher hands the message out later
            logger.exception("could not hand message %s to a worker; the dispatcher will", message_id)

    transaction.on_commit(enqueue)


# --- Withdrawal and resending ------------------------------------------------------------------------


def message_withdraw(*, message: OutboundMessage, actor=None, reason: str = "") -> bool:
    """Stop a message that has not gone out yet. True if withdrawn, False if it was already sent or closed.

    A worker holds the row lock while it calls the provider, so this either
    withdraws before the call or waits and reports that the message went.
    """
    with transaction.atomic():
        withdrawn = OutboundMessage.objects.filter(
            pk=message.pk, status__in=[*PENDING_STATUSES, MessageStatus.SENDING]
        ).update(
            status=MessageStatus.WITHDRAWN,
            status_reason=(reason or _("Withdrawn."))[:300],
            updated_at=timezone.now(),
        )
        if withdrawn and getattr(actor, "pk", None):
            with audit_acting_as(actor):
                audit_write(event=Event.UPDATE, instance=message, reason=reason, details={"status": "withdrawn"})
    message.refresh_from_db()
    return bool(withdrawn)


def message_withdraw_key(*, idempotency_key: str, actor=None, reason: str = "") -> bool:
    """Withdraw by the key it was queued with (e.g. `appointment:123:reminder`); False if there is none pending."""
    message = OutboundMessage.objects.filter(idempotency_key=idempotency_key).first()
    return message is not None and message_withdraw(message=message, actor=actor, reason=reason)


def message_resend(*, actor, message: OutboundMessage) -> OutboundMessage:
    """Queue a failed message again; the rules are checked afresh when it is sent."""
    now = timezone.now()
    with transaction.atomic():
        updated = OutboundMessage.objects.filter(pk=message.pk, status=MessageStatus.FAILED).update(
            status=MessageStatus.QUEUED, status_reason="", attempts=0, not_before=now, dispatched_at=now, updated_at=now
        )
        if not updated:
            raise ValidationError({"status": _("Only a failed message can be sent again.")})
        with audit_acting_as(actor):
            audit_write(event=Event.UPDATE, instance=message, details={"status": "queued", "resend": True})
    _enqueue_on_commit(message.pk)
    message.refresh_from_db()
    return message


# --- Delivery ---------------------------------------------------------------------------------------


def message_deliver(*, message_id: int) -> str:
    """Claim, re-check and send one due message; returns what happened (for logs and tests)."""
    now = timezone.now()
    claimed = OutboundMessage.objects.filter(pk=message_id, status__in=PENDING_STATUSES, not_before__lte=now).update(
        status=MessageStatus.SENDING, attempts=F("attempts") + 1, dispatched_at=None, updated_at=now
    )
    if not claimed:
        return "not claimed"
    message = OutboundMessage.objects.select_related("patient").get(pk=message_id)
    verdict = sending_rules(message, now=now, policy=outreach_settings_kept(), at_send_time=True)
    if verdict.suppress_reason:
        _leave_sending(message_id, status=MessageStatus.SUPPRESSED, reason=verdict.suppress_reason)
        return "suppressed"
    if verdict.defer_until is not None:
        _leave_sending(
            message_id, status=MessageStatus.DEFERRED, reason=verdict.defer_reason, not_before=verdict.defer_until
        )
        return "deferred"
    with transaction.atomic():
        locked = OutboundMessage.objects.select_for_update().filter(pk=message_id).first()
        if locked is None or locked.status != MessageStatus.SENDING:
            return "withdrawn"
        outgoing = OutgoingMessage(
            to=message.to_address, body=message.body, subject=message.subject, reference=message.idempotency_key
        )
        try:
            receipt = channel_backend(message.channel).send(outgoing)
        except ChannelError as error:
            return _failed_attempt(locked, str(error), retryable=error.retryable)
        except Exception as error:  # a bug or an unexpected library error: retry with the same reference
            logger.exception("sending message %s failed unexpectedly", message_id)
            return _failed_attempt(locked, repr(error), retryable=True)
        sent_at = timezone.now()
        OutboundMessage.objects.filter(pk=message_id).update(
            status=MessageStatus.SENT,
            status_reason="",
            provider_id=receipt.provider_id[:120],
            to_address=message.to_address,
            sent_at=sent_at,
            updated_at=sent_at,
        )
        with disable_auditlog():  # the system's own log entry; audit records what people do
            contact_record(
                actor=None,
                patient=message.patient,
                channel=message.channel,
                direction=ContactDirection.OUTBOUND,
                purpose=message.purpose,
                outcome=ContactOutcome.SENT,
                occurred_at=sent_at,
                summary=message.body[:1000],
                message=locked,
            )
    return "sent"


def _leave_sending(message_id: int, *, status: str, reason: str, not_before: dt.datetime | None = None) -> None:
    fields: dict[str, Any] = {"status": status, "status_reason": reason[:300], "updated_at": timezone.now()}
    if not_before is not None:
        fields["not_before"] = not_before
    OutboundMessage.objects.filter(pk=message_id, status=MessageStatus.SENDING).update(**fields)


def _failed_attempt(message: OutboundMessage, error: str, *, retryable: bool) -> str:
    now = timezone.now()
    if retryable and message.attempts < settings.MESSAGE_MAX_ATTEMPTS:
        wait = RETRY_MINUTES[min(message.attempts, len(RETRY_MINUTES)) - 1]
        OutboundMessage.objects.filter(pk=message.pk).update(
            status=MessageStatus.QUEUED,
            status_reason=(_("Attempt %(n)d failed, retrying: %(error)s") % {"n": message.attempts, "error": error})[
                :300
            ],
            not_before=now + dt.timedelta(minutes=wait),
            updated_at=now,
        )
        return "retry"
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, status_reason=error[:300], updated_at=now
    )
    return "failed"


def messages_dispatch_due(*, limit: int = 2000) -> int:
    """Hand due messages to workers; those handed out recently and not yet taken are left alone."""
    from patients.tasks.messages import message_deliver_task

    now = timezone.now()
    due = (
        OutboundMessage.objects.filter(status__in=PENDING_STATUSES, not_before__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=now - REDISPATCH_AFTER))
        .order_by("not_before")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(due)
    if ids:
        OutboundMessage.objects.filter(pk__in=ids).update(dispatched_at=now)
        for message_id in ids:
            message_deliver_task.delay(message_id)
    return len(ids)


def messages_fail_interrupted(*, now: dt.datetime | None = None) -> int:
    """Messages left "sending" by a worker that died mid-send are failed, not resent: the provider may have them."""
    now = now or timezone.now()
    return OutboundMessage.objects.filter(status=MessageStatus.SENDING, updated_at__lt=now - STUCK_AFTER).update(
        status=MessageStatus.FAILED,
        status_reason=_(
            "Interrupted while sending; not retried automatically, as it may have gone. Check, then resend."
        ),
        updated_at=now,
    )


# --- Provider callbacks ------------------------------------------------------------------------------


def message_receipt_record(*, provider_id: str, delivered: bool, error: str = "") -> int:
    """A delivery receipt from the provider: sent → delivered, or sent → failed with the provider's reason."""
    now = timezone.now()
    messages = OutboundMessage.objects.filter(provider_id=provider_id, status=MessageStatus.SENT)
    with transaction.atomic():
        ids = list(messages.values_list("pk", flat=True))
        if delivered:
            updated = messages.update(status=MessageStatus.DELIVERED, delivered_at=now, updated_at=now)
            ContactEntry.objects.filter(message_id__in=ids).update(outcome=ContactOutcome.DELIVERED)
        else:
            updated = messages.update(
                status=MessageStatus.FAILED,
                status_reason=(_("The provider could not deliver it: %(error)s") % {"error": error})[:300],
                updated_at=now,
            )
    return updated


def inbound_sms_receive(
    *, from_number: str, text: str, received_at: dt.datetime | None = None, provider_id: str = ""
) -> InboundSms:
    """Store an SMS from a patient, log it as a contact, and honour 退订/TD/T/STOP for non-clinical messages."""
    if provider_id:
        existing = InboundSms.objects.filter(provider_id=provider_id).first()
        if existing is not None:
            return existing  # the provider delivered the same SMS twice
    number = phone_search_key(from_number) or from_number.strip()
    opt_out = text.strip().upper() in OPT_OUT_WORDS
    received_at = received_at or timezone.now()
    with transaction.atomic():
        inbound = InboundSms.objects.create(
            from_number=number[:20], text=text, received_at=received_at, provider_id=provider_id, is_opt_out=opt_out
        )
        patients = list(Patient.objects.filter(mobile=number, merged_into__isnull=True))
        for patient in patients:
            contact_record(
                actor=None,
                patient=patient,
                channel=ContactChannel.SMS,
                direction=ContactDirection.INBOUND,
                purpose=ContactPurpose.MARKETING if opt_out else ContactPurpose.OTHER,
                outcome=ContactOutcome.RECEIVED,
                occurred_at=received_at,
                summary=text[:1000],
            )
            if opt_out:
                for purpose in NON_CLINICAL_PURPOSES:
                    consent_set(
                        actor=None,
                        patient=patient,
                        purpose=purpose,
                        channel="sms",
                        granted=False,
                        note=_("Replied “%(text)s” by SMS") % {"text": text.strip()[:20]},
                    )
        if patients:
            inbound.patient = patients[0]
            inbound.save(update_fields=["patient"])
    return inbound
