"""What the patient is told about a booking, through the outbox; called inside the booking's transaction,
so a booking that rolls back never sends anything."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from appointments.models import Appointment
from appointments.selectors import booking_policy
from patients.models import MessageChannel, MessagePurpose
from patients.services.messages import message_send, message_withdraw_key


def appointment_context(appointment: Appointment) -> dict[str, str]:
    """Template variables describing an appointment, in the hospital's local time."""
    schedule = appointment.schedule
    return {
        "department_name": schedule.department.name,
        "doctor_name": appointment.doctor.full_name or appointment.doctor.get_username(),
        "appointment_time": timezone.localtime(appointment.slot.starts_at).strftime("%Y-%m-%d %H:%M"),
        "appointment_place": schedule.location,
        "visit_number": str(appointment.visit_number or ""),
    }


def _send(appointment: Appointment, template: str, key: str, *, actor=None, not_before=None, context=None):
    return message_send(
        patient=appointment.patient,
        channel=MessageChannel.SMS,
        purpose=MessagePurpose.APPOINTMENT,
        template=template,
        context={**appointment_context(appointment), **(context or {})},
        idempotency_key=f"appointment:{appointment.uuid}:{key}",
        not_before=not_before,
        actor=actor,
        source="appointments",
    )


def reminder_key(appointment: Appointment) -> str:
    return f"appointment:{appointment.uuid}:reminder"


def reminder_moment(appointment: Appointment) -> dt.datetime:
    """The day before the visit at the configured hour, local time."""
    day = appointment.date - dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, booking_policy().reminder_time))


def notices_after_booking(appointment: Appointment, *, actor=None) -> None:
    """Confirmation now; the reminder queued for the day before (none when that moment has passed)."""
    _send(appointment, "appointment_confirmed", "confirmed", actor=actor)
    moment = reminder_moment(appointment)
    if moment > timezone.now():
        _send(appointment, "appointment_reminder", "reminder", actor=actor, not_before=moment)


def notices_after_cancel(appointment: Appointment, *, actor=None, notify: bool = True) -> None:
    """Withdraw the reminder (the withdrawal wins over a concurrent send) and say it is cancelled."""
    message_withdraw_key(idempotency_key=reminder_key(appointment), actor=actor, reason="appointment cancelled")
    if notify:
        _send(appointment, "appointment_cancelled", "cancelled", actor=actor)


def notices_after_reschedule(old: Appointment, new: Appointment, *, actor=None) -> None:
    """One message for the move: the new time replaces the old booking's confirmation."""
    _send(new, "appointment_rescheduled", "rescheduled", actor=actor)
    moment = reminder_moment(new)
    if moment > timezone.now():
        _send(new, "appointment_reminder", "reminder", actor=actor, not_before=moment)


def notice_schedule_stopped(appointment: Appointment, *, link: str, actor=None) -> None:
    """The clinic was stopped: say so, with a link to book another time."""
    message_withdraw_key(idempotency_key=reminder_key(appointment), actor=actor, reason="clinic stopped")
    _send(appointment, "schedule_stopped", "stopped", actor=actor, context={"link": link})
