"""Appointments the HIS books at its own desks take their place in our slots too, so both systems count the
same places. The HIS's booking is the fact: when no place can be had here it stays mirrored, unlinked, and
the caller is told why."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from appointments.models import (
    Appointment,
    AppointmentStatus,
    BookingChannel,
    CancelledBy,
    HisAppointment,
    HisAppointmentStatus,
    Slot,
)
from appointments.services.booking import (
    BookingDoor,
    BookingRefused,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
)

# The HIS books at its registration desks: those bookings take the window's places.
HIS_DOOR = BookingDoor(channel=BookingChannel.WINDOW)
PLACE_TAKING = (AppointmentStatus.HELD, AppointmentStatus.BOOKED)


@dataclass(frozen=True)
class HisSyncWarning:
    """What could not be mirrored into the clinic schedule; `about` is "doctor" or "slot"."""

    message: str
    about: str


def his_doctor(*, number: str, name: str):
    """The doctor the HIS names: by employee number, else by full name when exactly one member of staff has it."""
    staff = get_user_model().objects.filter(is_active=True)
    if number:
        found = list(staff.filter(employee_number=number)[:2])
        if len(found) == 1:
            return found[0]
    if name:
        found = list(staff.filter(full_name=name)[:2])
        if len(found) == 1:
            return found[0]
    return None


def his_slot(*, doctor, start: dt.datetime) -> Slot | None:
    """The doctor's slot whose time contains `start`."""
    return (
        Slot.objects.select_related("schedule")
        .filter(schedule__doctor=doctor, starts_at__lte=start, ends_at__gt=start)
        .order_by("starts_at", "pk")
        .first()
    )


def _local(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment, timezone.get_default_timezone()), "Y-m-d H:i")


def _link(appointment: Appointment, his_appointment: HisAppointment) -> None:
    Appointment.objects.filter(his_appointment=his_appointment).exclude(pk=appointment.pk).update(
        his_appointment=None, updated_at=timezone.now()
    )
    appointment.his_appointment = his_appointment
    appointment.save(update_fields=["his_appointment", "updated_at"])


def _unplaced(his_appointment: HisAppointment, reason: str) -> HisSyncWarning:
    return HisSyncWarning(
        _("%(reason)s The HIS appointment %(id)s is kept without a place in the clinic schedule.")
        % {"reason": reason, "id": his_appointment.external_id},
        "slot",
    )


def his_appointment_sync(
    *, his_appointment: HisAppointment, doctor_number: str, doctor_name: str, now: dt.datetime | None = None
) -> list[HisSyncWarning]:
    """Keep the booking linked to an HIS appointment in step with it: book, move or cancel its place.

    Returns what could not be done; the mirrored appointment itself is never refused.
    """
    now = now or timezone.now()
    with transaction.atomic():
        linked = (
            Appointment.objects.select_related("slot").filter(his_appointment=his_appointment).order_by("-pk").first()
        )
        if linked is not None and linked.status not in (*PLACE_TAKING, AppointmentStatus.CANCELLED):
            return []  # the visit happened (checked in) or was missed: nothing left to move
        active = linked if linked is not None and linked.status in PLACE_TAKING else None
        if his_appointment.status == HisAppointmentStatus.CANCELLED:
            if active is not None:
                appointment_cancel(appointment=active, by=CancelledBy.STAFF, reason=_("Cancelled in the HIS"), now=now)
            return []
        if his_appointment.status not in (HisAppointmentStatus.BOOKED, HisAppointmentStatus.PENDING):
            return []
        doctor = his_doctor(number=doctor_number, name=doctor_name)
        if doctor is None:
            if active is not None:
                appointment_cancel(appointment=active, by=CancelledBy.STAFF, reason=_("Changed in the HIS"), now=now)
            reason = _("No member of staff has the employee number or the name of the doctor %(doctor)s.") % {
                "doctor": " ".join(part for part in (doctor_number, doctor_name) if part) or "-"
            }
            return [HisSyncWarning(_unplaced(his_appointment, reason).message, "doctor")]
        slot = his_slot(doctor=doctor, start=his_appointment.start)
        if active is not None and slot is not None and active.slot_id == slot.pk:
            return []
        if slot is None:
            if active is not None:
                appointment_cancel(appointment=active, by=CancelledBy.STAFF, reason=_("Moved in the HIS"), now=now)
            reason = _("%(doctor)s has no clinic slot at %(moment)s.") % {
                "doctor": doctor,
                "moment": _local(his_appointment.start),
            }
            return [_unplaced(his_appointment, reason)]
        # A booking made here for the same patient and slot (the HIS registering it at its desk) is the same one.
        booking = (
            None
            if active is not None
            else Appointment.objects.filter(
                patient_id=his_appointment.patient_id,
                slot=slot,
                status__in=PLACE_TAKING,
                his_appointment__isnull=True,
            ).first()
        )
        if active is not None:
            try:
                booking = appointment_reschedule(appointment=active, slot=slot, door=HIS_DOOR, now=now)
            except BookingRefused:
                # Past the patients' change deadline, say: the HIS moved it, so the old place is freed anyway.
                appointment_cancel(appointment=active, by=CancelledBy.STAFF, reason=_("Moved in the HIS"), now=now)
        if booking is None:
            try:
                booking = appointment_book(patient=his_appointment.patient, slot=slot, door=HIS_DOOR, now=now)
            except BookingRefused as refusal:
                reason = _("The slot at %(moment)s could not be booked: %(why)s") % {
                    "moment": _local(slot.starts_at),
                    "why": " ".join(refusal.messages),
                }
                return [_unplaced(his_appointment, reason)]
        _link(booking, his_appointment)
    return []
