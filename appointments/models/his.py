"""Appointments booked in the HIS, mirrored here as the HIS books them; bookings link to them."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import Department
from patients.models import ExternalRecord, Patient


class HisAppointmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    BOOKED = "booked", _("Booked")
    ARRIVED = "arrived", _("Arrived")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    NO_SHOW = "noshow", _("No-show")


class HisAppointment(ExternalRecord):
    """An appointment booked in the HIS (HL7 SIU^S12–S15): `external_id` is the HIS appointment id."""

    Status = HisAppointmentStatus

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="his_appointments")
    start = models.DateTimeField(_("start"))
    duration_minutes = models.PositiveIntegerField(_("duration in minutes"), null=True, blank=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="his_appointments",
        verbose_name=_("department"),
    )
    department_code = models.CharField(_("department code as sent"), max_length=64, blank=True)
    doctor_name = models.CharField(_("doctor name"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.BOOKED)
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta(ExternalRecord.Meta):
        ordering = ["-start"]
        verbose_name = _("HIS appointment")
        verbose_name_plural = _("HIS appointments")
        indexes = [models.Index(fields=["patient", "-start"], name="his_appointment_patient_start")]
        constraints = [
            *ExternalRecord.Meta.constraints,
            models.CheckConstraint(
                condition=Q(status__in=HisAppointmentStatus.values), name="his_appointment_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} {self.start:%Y-%m-%d %H:%M}"
