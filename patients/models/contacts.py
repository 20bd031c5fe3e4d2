"""The contact log: every call, message, letter and visit with a patient, and supervisors' quality reviews."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import FileExtensionValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import BaseModel, Department
from patients.models.archive import Patient, PatientRecord


class ContactChannel(models.TextChoices):
    PHONE = "phone", _("Phone call")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("Email")
    LETTER = "letter", _("Letter")
    IN_PERSON = "in_person", _("In person")
    PORTAL = "portal", _("Portal message")


class ContactDirection(models.TextChoices):
    OUTBOUND = "out", _("Outbound")
    INBOUND = "in", _("Inbound")


class ContactPurpose(models.TextChoices):
    FOLLOW_UP = "follow_up", _("Follow-up")
    APPOINTMENT = "appointment", _("Appointment")
    CARE = "care", _("Health care")
    INQUIRY = "inquiry", _("Inquiry")
    FEEDBACK = "feedback", _("Feedback")
    MARKETING = "marketing", _("Marketing")
    VERIFICATION = "verification", _("Verification code")
    OTHER = "other", _("Other")


class ContactOutcome(models.TextChoices):
    REACHED = "reached", _("Reached")
    NO_ANSWER = "no_answer", _("No answer")
    BUSY = "busy", _("Busy")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    REFUSED = "refused", _("Refused")
    LEFT_MESSAGE = "left_message", _("Left a message")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    RECEIVED = "received", _("Received")
    OTHER = "other", _("Other")


RECORDING_EXTENSIONS = ["mp3", "wav", "m4a", "ogg", "amr", "webm"]


def _recording_path(entry: ContactEntry, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"recordings/{entry.occurred_at:%Y/%m}/{entry.uuid}.{extension}"


class ContactEntry(PatientRecord):
    """One contact with a patient, logged by hand or by the outbox for every message it sends."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contacts",
        verbose_name=_("staff member"),
        db_index=False,
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
        db_index=False,
        help_text=_("The staff member's department at the time, so supervisors review their own staff."),
    )
    channel = models.CharField(_("channel"), max_length=12, choices=ContactChannel.choices)
    direction = models.CharField(_("direction"), max_length=3, choices=ContactDirection.choices)
    purpose = models.CharField(_("purpose"), max_length=14, choices=ContactPurpose.choices)
    occurred_at = models.DateTimeField(_("time"))
    duration_seconds = models.PositiveIntegerField(_("duration (seconds)"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=14, choices=ContactOutcome.choices)
    summary = models.TextField(_("summary"), blank=True)
    recording = models.FileField(
        _("recording"),
        upload_to=_recording_path,
        blank=True,
        validators=[FileExtensionValidator(RECORDING_EXTENSIONS)],
    )
    message = models.OneToOneField(
        "patients.OutboundMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contact",
        verbose_name=_("message"),
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        permissions = [("review_contactentry", _("Can review the contacts of own department's staff"))]
        indexes = [
            models.Index(fields=["patient", "-occurred_at"], name="contact_patient_time"),
            models.Index(fields=["staff", "-occurred_at"], name="contact_staff_time"),
            models.Index(fields=["department", "-occurred_at"], name="contact_department_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=ContactChannel.values), name="contact_channel_valid"),
            models.CheckConstraint(condition=Q(direction__in=ContactDirection.values), name="contact_direction_valid"),
            models.CheckConstraint(condition=Q(purpose__in=ContactPurpose.values), name="contact_purpose_valid"),
            models.CheckConstraint(condition=Q(outcome__in=ContactOutcome.values), name="contact_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.occurred_at:%Y-%m-%d %H:%M}"


class ContactReview(BaseModel):
    """A supervisor's quality review of one contact."""

    contact = models.ForeignKey(ContactEntry, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    score = models.PositiveSmallIntegerField(
        _("score"), validators=[MinValueValidator(1), MaxValueValidator(5)], help_text=_("1 (poor) to 5 (excellent)")
    )
    comment = models.TextField(_("comment"), blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("contact review")
        verbose_name_plural = _("contact reviews")
        constraints = [
            models.UniqueConstraint(fields=["contact", "reviewer"], name="contact_review_once_per_reviewer"),
            models.CheckConstraint(condition=Q(score__gte=1) & Q(score__lte=5), name="contact_review_score_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.score}"

    @property
    def audit_patient_uuid(self):
        return self.contact.patient.uuid
