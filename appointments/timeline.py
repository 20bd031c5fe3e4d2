"""The patient's bookings and the appointments the HIS booked, in the patient's timeline."""

from __future__ import annotations

from django.utils.translation import gettext as _

from appointments.models import Appointment, AppointmentStatus, HisAppointment, HisAppointmentStatus
from patients.models import Patient
from patients.timeline import TimelineEntry, timeline_provider


@timeline_provider("appointments.view_appointment")
def _appointments(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    """Bookings at their slot's time; holds that were never confirmed are left out."""
    bookings = (
        Appointment.objects.filter(patient=patient)
        .exclude(status__in=[AppointmentStatus.HELD, AppointmentStatus.EXPIRED])
        .select_related("slot", "schedule__department", "doctor")
        .order_by("-slot__starts_at", "-pk")[:limit]
    )
    entries = []
    for booking in bookings:
        schedule = booking.schedule
        parts = [
            str(booking.get_status_display()),
            _("visit number %(number)d") % {"number": booking.visit_number} if booking.visit_number else "",
            schedule.location,
            _("booked through %(channel)s") % {"channel": booking.get_channel_display()},
        ]
        lines = []
        if booking.status == AppointmentStatus.CANCELLED:
            lines.append(
                _("Cancelled by %(who)s") % {"who": booking.get_cancelled_by_display()}
                + (f": {booking.cancel_reason}" if booking.cancel_reason else "")
            )
        entries.append(
            TimelineEntry(
                at=booking.slot.starts_at,
                kind="appointment",
                title=_("Appointment · %(department)s · %(doctor)s")
                % {"department": schedule.department.display_name, "doctor": str(booking.doctor)},
                detail=" · ".join(part for part in parts if part),
                flag="warning" if booking.status == AppointmentStatus.NO_SHOW else "",
                lines=lines,
            )
        )
    return entries


@timeline_provider("appointments.view_hisappointment")
def _his_appointments(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    """Appointments booked in the HIS; those mirroring a booking made here are shown once, as the booking."""
    entries = []
    for appointment in (
        HisAppointment.objects.filter(patient=patient, booking__isnull=True)
        .select_related("department")
        .order_by("-start", "-pk")[:limit]
    ):
        department = appointment.department.display_name if appointment.department else appointment.department_code
        entries.append(
            TimelineEntry(
                at=appointment.start,
                kind="his_appointment",
                title=" · ".join(part for part in (_("HIS appointment"), department, appointment.doctor_name) if part),
                detail=" · ".join(part for part in (str(appointment.get_status_display()), appointment.reason) if part),
                flag="warning" if appointment.status == HisAppointmentStatus.NO_SHOW else "",
            )
        )
    return entries
