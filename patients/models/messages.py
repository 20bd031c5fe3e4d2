"""The outbox: message templates, every outbound message with its delivery state, and inbound SMS."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hcrm.models import BaseModel
from patients.models.archive import Language, Patient, PatientRecord


class MessageChannel(models.TextChoices):
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")


class MessagePurpose(models.TextChoices):
    """Consent is asked per purpose; verification codes answer the patient's own request and need none."""

    FOLLOW_UP = "follow_up", _("Follow-up")
    APPOINTMENT = "appointment", _("Appointments")
    CARE = "care", _("Health care reminders")
    MARKETING = "marketing", _("Marketing")
    VERIFICATION = "verification", _("Verification code")


class MessagePriority(models.TextChoices):
    NORMAL = "normal", _("Normal")
    URGENT = "urgent", _("Urgent (ignores quiet hours and the daily cap)")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    DEFERRED = "deferred", _("Deferred")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Suppressed")
    WITHDRAWN = "withdrawn", _("Withdrawn")


# States a message may still leave towards the patient from.
PENDING_STATUSES = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


class MessageTemplate(BaseModel):
    """Text of a message per channel and language, with `{variables}` checked when saved."""

    code = models.SlugField(_("code"), max_length=60)
    name = models.CharField(pgettext_lazy("thing", "name"), max_length=100)
    purpose = models.CharField(_("purpose"), max_length=14, choices=MessagePurpose.choices)
    channel = models.CharField(_("channel"), max_length=10, choices=MessageChannel.choices)
    language = models.CharField(_("language"), max_length=10, choices=Language.choices)
    subject = models.CharField(_("subject"), max_length=200, blank=True, help_text=_("Email only."))
    body = models.TextField(_("text"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["code", "channel", "language"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [
            models.UniqueConstraint(fields=["code", "channel", "language"], name="message_template_unique"),
            models.CheckConstraint(
                condition=Q(channel__in=MessageChannel.values), name="message_template_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(purpose__in=MessagePurpose.values), name="message_template_purpose_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.channel}, {self.language})"


class OutboundMessage(PatientRecord):
    """One message to one patient, from queueing to delivery; at most one per idempotency key, ever."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="messages", db_index=False)
    channel = models.CharField(_("channel"), max_length=10, choices=MessageChannel.choices)
    purpose = models.CharField(_("purpose"), max_length=14, choices=MessagePurpose.choices)
    priority = models.CharField(
        _("priority"), max_length=10, choices=MessagePriority.choices, default=MessagePriority.NORMAL
    )
    template = models.ForeignKey(
        MessageTemplate,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("template"),
    )
    language = models.CharField(_("language"), max_length=10, choices=Language.choices)
    to_address = models.CharField(_("to"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    context = models.JSONField(_("variables"), default=dict, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    source = models.CharField(_("sent by module"), max_length=40, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    status_reason = models.CharField(_("reason"), max_length=300, blank=True)
    not_before = models.DateTimeField(_("not before"))
    dispatched_at = models.DateTimeField(_("handed to a worker at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    provider_id = models.CharField(_("provider's id"), max_length=120, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("queued by"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        permissions = [("report_message_events", _("Can report delivery receipts and inbound SMS"))]
        indexes = [
            models.Index(fields=["not_before"], name="message_due", condition=Q(status__in=["queued", "deferred"])),
            models.Index(fields=["patient", "-created_at"], name="message_patient_time"),
            models.Index(fields=["patient", "sent_at"], name="message_patient_sent"),
            models.Index(fields=["provider_id"], name="message_provider_id", condition=~Q(provider_id="")),
            models.Index(fields=["status", "-created_at"], name="message_status_time"),
            models.Index(fields=["-created_at"], name="message_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=MessageStatus.values), name="message_status_valid"),
            models.CheckConstraint(condition=Q(channel__in=MessageChannel.values), name="message_channel_valid"),
            models.CheckConstraint(condition=Q(purpose__in=MessagePurpose.values), name="message_purpose_valid"),
            models.CheckConstraint(condition=Q(priority__in=MessagePriority.values), name="message_priority_valid"),
            models.CheckConstraint(
                condition=~Q(status__in=["sent", "delivered"]) | Q(sent_at__isnull=False),
                name="message_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.idempotency_key} [{self.status}]"


class InboundSms(BaseModel):
    """An SMS a patient sent to the hospital's number, stored before it is acted on."""

    from_number = models.CharField(_("from"), max_length=20, db_index=True)
    text = models.TextField(_("text"))
    received_at = models.DateTimeField(_("received at"))
    provider_id = models.CharField(_("provider's id"), max_length=120, blank=True)
    patient = models.ForeignKey(
        Patient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("patient")
    )
    is_opt_out = models.BooleanField(_("opt-out"), default=False)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("inbound SMS")
        verbose_name_plural = _("inbound SMS")
        constraints = [
            models.UniqueConstraint(
                fields=["provider_id"], condition=~Q(provider_id=""), name="inbound_sms_provider_id_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.from_number}: {self.text[:20]}"
