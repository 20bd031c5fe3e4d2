"""What the patient is told about a booking, through the outbox; called inside the booking's transaction,
so a booking that rolls back never sends anything."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from appointments.models import Appointment, AppointmentStatus
from appointments.selectors import booking_policy
from patients.models import MessageChannel, MessagePurpose
from patients.services.messages import message_send, message_withdraw_key


def appointment_context(appointment: Appointment) -> dict[str, str]:
    """Template variables describing an appointment, in the hospital's local time."""
    schedule = appointment.schedule
    return {
        "department_name": schedule.department.name,
        "doctor_name": appointment.doctor.full_name or appointment.doctor.get_username(),
        "appointment_time": timezone.localtime(appointment.slot.starts_at, timezone.get_default_timezone()).strftime(
            "%Y-%m-%d %H:%M"
        ),
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


def reminder_moment_for(day: dt.date) -> dt.datetime:
    """When reminders for visits on `day` go out: the day before at the configured hour, hospital time."""
    zone = timezone.get_default_timezone()
    return timezone.make_aware(dt.datetime.combine(day - dt.timedelta(days=1), booking_policy().reminder_time), zone)


def notices_after_booking(appointment: Appointment, *, actor=None) -> None:
    """The confirmation, now; the reminder is queued the day before by `reminders_queue`."""
    _send(appointment, "appointment_confirmed", "confirmed", actor=actor)


def reminders_queue(*, now: dt.datetime | None = None, limit: int = 5000) -> int:
    """Queue the day-before reminder of tomorrow's bookings once the reminder hour has come.

    Each booking is claimed with a conditional update, so two workers never both remind. Bookings made
    after the reminder hour are left out: their confirmation went out moments before. A booking
    cancelled or moved later has its reminder withdrawn.
    """
    now = now or timezone.now()
    tomorrow = timezone.localdate(now, timezone.get_default_timezone()) + dt.timedelta(days=1)
    moment = reminder_moment_for(tomorrow)
    if now < moment:
        return 0
    queued = 0
    due = (
        Appointment.objects.filter(
            date=tomorrow, status=AppointmentStatus.BOOKED, booked_at__lt=moment, reminder_queued_at__isnull=True
        )
        .select_related("patient", "slot", "schedule__department", "doctor")
        .order_by("pk")[:limit]
    )
    for appointment in due:
        with transaction.atomic():
            claimed = Appointment.objects.filter(
                pk=appointment.pk, status=AppointmentStatus.BOOKED, reminder_queued_at__isnull=True
            ).update(reminder_queued_at=now)
            if claimed:
                _send(appointment, "appointment_reminder", "reminder")
                queued += claimed
    return queued


def notices_after_cancel(appointment: Appointment, *, actor=None, notify: bool = True) -> None:
    """Withdraw the reminder (the withdrawal wins over a concurrent send) and say it is cancelled."""
    message_withdraw_key(idempotency_key=reminder_key(appointment), actor=actor, reason="appointment cancelled")
    if notify:
        _send(appointment, "appointment_cancelled", "cancelled", actor=actor)


def notices_after_reschedule(old: Appointment, new: Appointment, *, actor=None) -> None:
    """One message for the move: the new time replaces the old booking's confirmation."""
    _send(new, "appointment_rescheduled", "rescheduled", actor=actor)


def notice_schedule_stopped(appointment: Appointment, *, link: str, actor=None) -> None:
    """The clinic was stopped: say so, with a link to book another time."""
    message_withdraw_key(idempotency_key=reminder_key(appointment), actor=actor, reason="clinic stopped")
    _send(appointment, "schedule_stopped", "stopped", actor=actor, context={"link": link})
