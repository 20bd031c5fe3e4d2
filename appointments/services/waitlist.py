"""The waitlist (候补): a freed place in a full session goes to the first patient waiting, held for a time
limit and offered by SMS; an offer nobody accepts in time passes to the next."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    Schedule,
    ScheduleStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from appointments.selectors import active_restriction, booking_policy
from appointments.services.booking import BookingDoor, BookingRefused, appointment_confirm, hold_expire
from patients.models import MessageChannel, MessagePurpose, Patient
from patients.services.messages import message_send


def waitlist_join(*, schedule: Schedule, patient: Patient, door: BookingDoor) -> WaitlistEntry:
    """Put the patient in the queue of a session; joining twice returns the place already held in the queue."""
    if schedule.status != ScheduleStatus.OPEN:
        raise BookingRefused("stopped", _("This clinic session has been stopped (停诊); choose another."), "schedule")
    if patient.is_deceased:
        raise BookingRefused("deceased", _("This patient is recorded as deceased and cannot be booked."), "patient")
    if timezone.now() >= schedule.ends_at:
        raise BookingRefused("past", _("This clinic session is over."), "schedule")
    if Appointment.objects.filter(
        patient=patient, doctor_id=schedule.doctor_id, date=schedule.date, status__in=ACTIVE_STATUSES
    ).exists():
        raise BookingRefused(
            "one_per_doctor_day", _("This patient already has an appointment with this doctor that day."), "patient"
        )
    existing = WaitlistEntry.objects.filter(
        schedule=schedule, patient=patient, status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return WaitlistEntry.objects.create(
                schedule=schedule, patient=patient, channel=door.channel, portal_account=door.portal_account
            )
    except IntegrityError:
        return WaitlistEntry.objects.get(
            schedule=schedule, patient=patient, status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED]
        )


def waitlist_leave(*, entry: WaitlistEntry, actor=None) -> WaitlistEntry:
    """Leave the queue; a place on offer goes to the next patient."""
    from appointments.services.booking import appointment_cancel

    with transaction.atomic():
        current = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
        if current.status not in (WaitlistStatus.WAITING, WaitlistStatus.OFFERED):
            return current
        offered = current.appointment if current.status == WaitlistStatus.OFFERED else None
        current.status = WaitlistStatus.CANCELLED
        current.save(update_fields=["status", "updated_at"])
        if offered is not None and offered.status == AppointmentStatus.HELD:
            appointment_cancel(appointment=offered, by="patient", actor=actor, reason="left the waitlist")
    return current


def waitlist_accept(*, entry: WaitlistEntry, door: BookingDoor, now: dt.datetime | None = None) -> Appointment:
    """The patient takes the place offered: the hold becomes a booking with a visit number."""
    now = now or timezone.now()
    with transaction.atomic():
        current = WaitlistEntry.objects.select_for_update().get(pk=entry.pk)
        if current.status != WaitlistStatus.OFFERED or current.appointment is None:
            raise BookingRefused("no_offer", _("There is no place on offer for this waitlist entry."), "waitlist")
        lapsed = hold_expire(appointment_id=current.appointment_id, now=now)
        if not lapsed:
            appointment = appointment_confirm(appointment=current.appointment, door=door, now=now)
            current.status = WaitlistStatus.BOOKED
            current.save(update_fields=["status", "updated_at"])
            return appointment
        # The offer ran out: its expiry commits (the place passes to the next patient) before the refusal.
        current.status = WaitlistStatus.EXPIRED
        current.save(update_fields=["status", "updated_at"])
    raise BookingRefused("hold_expired", _("The hold on this place has expired; choose a slot again."), "waitlist")


def waitlist_offer_on_commit(schedule_id: int) -> None:
    """After the transaction that freed a place commits, offer the session's free places to the queue."""
    transaction.on_commit(lambda: waitlist_offer(schedule_id=schedule_id))


def waitlist_offer(*, schedule_id: int, now: dt.datetime | None = None) -> int:
    """Offer free places of a session to the patients waiting, first come first served; the offers made."""
    from appointments.services.booking import appointment_hold

    now = now or timezone.now()
    policy = booking_policy()
    offers = 0
    _expire_lapsed_entries(schedule_id)
    while True:
        with transaction.atomic():
            entry = (
                WaitlistEntry.objects.select_for_update(skip_locked=True)
                .filter(schedule_id=schedule_id, status=WaitlistStatus.WAITING)
                .select_related("patient", "schedule")
                .order_by("created_at", "pk")
                .first()
            )
            if entry is None:
                return offers
            slots = entry.schedule.slots.filter(starts_at__gt=now).order_by("starts_at")
            free = [slot for slot in slots if any(slot.free(pool) > 0 for pool in ("online", "phone", "window"))]
            if not free or entry.schedule.status != ScheduleStatus.OPEN:
                return offers
            if active_restriction(entry.patient, now) is not None and entry.channel == "online":
                entry.status = WaitlistStatus.CANCELLED
                entry.save(update_fields=["status", "updated_at"])
                continue
            held = None
            for slot in free:
                try:
                    with transaction.atomic():
                        held = appointment_hold(
                            patient=entry.patient,
                            slot=slot,
                            door=BookingDoor(channel=entry.channel, portal_account=entry.portal_account),
                            now=now,
                            minutes=policy.waitlist_offer_minutes,
                            offer=True,
                        )
                    break
                except BookingRefused as refusal:
                    if refusal.rule != "full":
                        held = refusal
                        break
            if held is None:
                return offers
            if isinstance(held, ValidationError):
                # The patient can no longer take a place (booked elsewhere, too many bookings): next one.
                entry.status = WaitlistStatus.CANCELLED
                entry.save(update_fields=["status", "updated_at"])
                continue
            entry.status = WaitlistStatus.OFFERED
            entry.offered_at = now
            entry.offer_expires_at = held.hold_expires_at
            entry.appointment = held
            entry.save(update_fields=["status", "offered_at", "offer_expires_at", "appointment", "updated_at"])
            _send_offer(entry, held, minutes=policy.waitlist_offer_minutes)
            offers += 1


def _expire_lapsed_entries(schedule_id: int) -> None:
    """Offers whose hold has ended (expired, cancelled) are closed, so the queue moves on."""
    WaitlistEntry.objects.filter(schedule_id=schedule_id, status=WaitlistStatus.OFFERED).exclude(
        appointment__status__in=ACTIVE_STATUSES
    ).update(status=WaitlistStatus.EXPIRED, updated_at=timezone.now())


def _send_offer(entry: WaitlistEntry, held: Appointment, *, minutes: int) -> None:
    from appointments.services.notices import appointment_context

    link = settings.PUBLIC_BASE_URL + reverse("portal:waitlist-offer", args=[entry.uuid])
    message_send(
        patient=entry.patient,
        channel=MessageChannel.SMS,
        purpose=MessagePurpose.APPOINTMENT,
        template="waitlist_offer",
        context={**appointment_context(held), "link": link, "expires_minutes": str(minutes)},
        idempotency_key=f"waitlist:{entry.uuid}:offer:{held.uuid}",
        source="appointments",
    )
