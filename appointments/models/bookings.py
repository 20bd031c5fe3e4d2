"""Bookings, the waitlist (候补) and the no-show restriction on online booking."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from appointments.models.his import HisAppointment
from appointments.models.schedules import BookingChannel, Schedule, Slot, _choices_constraint
from patients.models import Patient, PatientRecord


class AppointmentStatus(models.TextChoices):
    HELD = "held", _("Held")
    BOOKED = "booked", _("Booked")
    CHECKED_IN = "checked_in", _("Checked in")
    NO_SHOW = "no_show", _("No-show")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Hold expired")


# A booking in one of these states takes a place in its slot.
ACTIVE_STATUSES = (AppointmentStatus.HELD, AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN)


class CancelledBy(models.TextChoices):
    PATIENT = "patient", _("Patient")
    STAFF = "staff", _("Staff")
    HOSPITAL = "hospital", _("Hospital (clinic stopped)")
    RESCHEDULE = "reschedule", _("Rescheduled")


class Appointment(PatientRecord):
    """One patient's place in one slot: held for a few minutes, then booked with a visit number (就诊序号).

    `pool` is the channel whose share of the slot the booking took (a window booking may take an
    unused online place close to the session); cancelling gives that place back.
    """

    Status = AppointmentStatus

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="appointments", verbose_name=_("patient")
    )
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments", verbose_name=_("slot"))
    schedule = models.ForeignKey(
        Schedule, on_delete=models.PROTECT, related_name="appointments", verbose_name=_("clinic session")
    )
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("doctor")
    )
    date = models.DateField(_("date"))
    channel = models.CharField(_("booked through"), max_length=10, choices=BookingChannel.choices)
    pool = models.CharField(_("place taken from"), max_length=10, choices=BookingChannel.choices)
    status = models.CharField(_("status"), max_length=12, choices=AppointmentStatus.choices)
    hold_expires_at = models.DateTimeField(_("hold expires at"), null=True, blank=True)
    visit_number = models.PositiveIntegerField(_("visit number"), null=True, blank=True)
    booked_at = models.DateTimeField(_("booked at"), null=True, blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("booked by"),
    )
    portal_account = models.ForeignKey(
        "appointments.PortalAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("booked from the portal account"),
    )
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    reminder_queued_at = models.DateTimeField(_("reminder queued at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.CharField(_("cancelled by"), max_length=10, choices=CancelledBy.choices, blank=True)
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=200, blank=True)
    rescheduled_to = models.OneToOneField(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rescheduled_from",
        verbose_name=_("rescheduled to"),
    )
    his_appointment = models.OneToOneField(
        HisAppointment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="booking",
        verbose_name=_("HIS appointment"),
    )

    class Meta:
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        ordering = ["-date", "slot__starts_at"]
        permissions = [
            ("view_all_appointments", _("Can see the bookings of every department")),
            ("check_in_appointment", _("Can check patients in for their appointments")),
        ]
        indexes = [
            models.Index(fields=["patient", "-date"], name="appointment_patient_date"),
            models.Index(fields=["schedule", "status"], name="appointment_schedule_status"),
            models.Index(fields=["hold_expires_at"], condition=Q(status="held"), name="appointment_hold_expiry"),
        ]
        constraints = [
            _choices_constraint("status", AppointmentStatus, "appointment_status_valid"),
            _choices_constraint("channel", BookingChannel, "appointment_channel_valid"),
            _choices_constraint("pool", BookingChannel, "appointment_pool_valid"),
            models.UniqueConstraint(
                fields=["schedule", "visit_number"],
                condition=Q(visit_number__isnull=False),
                name="appointment_visit_number_unique",
            ),
            # At most one booking per patient per doctor per day, whichever door it came through.
            models.UniqueConstraint(
                fields=["patient", "doctor", "date"],
                condition=Q(status__in=[status.value for status in ACTIVE_STATUSES]),
                name="appointment_one_per_doctor_day",
            ),
            models.CheckConstraint(
                condition=~Q(status="held") | Q(hold_expires_at__isnull=False), name="appointment_hold_has_expiry"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["booked", "checked_in", "no_show"]) | Q(visit_number__isnull=False),
                name="appointment_booked_has_number",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.date} #{self.visit_number or '-'}"


class WaitlistStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    OFFERED = "offered", _("Place offered")
    BOOKED = "booked", _("Booked")
    EXPIRED = "expired", _("Offer expired")
    CANCELLED = "cancelled", _("Left the waitlist")


class WaitlistEntry(PatientRecord):
    """A patient waiting for a place in a full session (候补); offered places in the order they joined."""

    Status = WaitlistStatus

    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, related_name="waitlist", verbose_name=_("clinic session")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="waitlist_entries", verbose_name=_("patient")
    )
    channel = models.CharField(_("joined through"), max_length=10, choices=BookingChannel.choices)
    portal_account = models.ForeignKey(
        "appointments.PortalAccount", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(_("status"), max_length=10, choices=WaitlistStatus.choices, default="waiting")
    offered_at = models.DateTimeField(_("offered at"), null=True, blank=True)
    offer_expires_at = models.DateTimeField(_("offer expires at"), null=True, blank=True)
    appointment = models.OneToOneField(
        Appointment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="waitlist_entry",
        verbose_name=_("place offered"),
    )

    class Meta:
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist entries")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["schedule", "status", "created_at"], name="waitlist_schedule_queue")]
        constraints = [
            _choices_constraint("status", WaitlistStatus, "waitlist_status_valid"),
            _choices_constraint("channel", BookingChannel, "waitlist_channel_valid"),
            models.UniqueConstraint(
                fields=["schedule", "patient"],
                condition=Q(status__in=["waiting", "offered"]),
                name="waitlist_one_per_patient",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} {self.patient_id} {self.status}"


class BookingRestriction(PatientRecord):
    """Online booking blocked for a patient (after repeated no-shows) until `ends_at`, unless lifted."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="booking_restrictions", verbose_name=_("patient")
    )
    reason = models.CharField(_("reason"), max_length=200)
    starts_at = models.DateTimeField(pgettext_lazy("restriction", "from"))
    ends_at = models.DateTimeField(pgettext_lazy("restriction", "until"))
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lift_reason = models.CharField(_("reason for lifting"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("booking restriction")
        verbose_name_plural = _("booking restrictions")
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["patient", "-ends_at"], name="booking_restriction_patient")]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.starts_at:%Y-%m-%d}–{self.ends_at:%Y-%m-%d}"
