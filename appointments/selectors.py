"""Reads shared by the booking service, the portal, the console and the API."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    BookingChannel,
    BookingPolicy,
    BookingRestriction,
    Schedule,
    ScheduleStatus,
    Slot,
)
from patients.models import Patient


def booking_policy() -> BookingPolicy:
    """The single rules row, created with the defaults on first use."""
    policy, _created = BookingPolicy.objects.get_or_create(pk=1)
    return policy


def release_moment(date: dt.date, policy: BookingPolicy) -> dt.datetime:
    """When online booking for `date` opens: N days before, at the release time, in the hospital's zone."""
    day = date - dt.timedelta(days=policy.release_days_ahead)
    return timezone.make_aware(dt.datetime.combine(day, policy.release_time), timezone.get_default_timezone())


def window_fallback_open(schedule: Schedule, policy: BookingPolicy, now: dt.datetime) -> bool:
    """Whether the window may take online places nobody booked, this close to the session."""
    if policy.window_fallback_hours == 0:
        return False
    return now >= schedule.starts_at - dt.timedelta(hours=policy.window_fallback_hours)


def pools_for(channel: str, schedule: Schedule, policy: BookingPolicy, now: dt.datetime) -> list[str]:
    """The capacity shares a booking through `channel` may take, in the order they are tried."""
    if channel == BookingChannel.WINDOW and window_fallback_open(schedule, policy, now):
        return [BookingChannel.WINDOW, BookingChannel.ONLINE]
    return [channel]


def slot_free_places(slot: Slot, channel: str, policy: BookingPolicy, now: dt.datetime) -> int:
    """Places a booking through `channel` could take in `slot` now (0 for a stopped or unreleased session)."""
    schedule = slot.schedule
    if schedule.status != ScheduleStatus.OPEN:
        return 0
    if channel != BookingChannel.WINDOW and now < schedule.releases_at:
        return 0
    return sum(slot.free(pool) for pool in pools_for(channel, schedule, policy, now))


def schedules_bookable(*, department=None, doctor=None, start: dt.date, end: dt.date) -> QuerySet[Schedule]:
    """Open sessions between two dates (inclusive), with what is free online, for the booking pages."""
    queryset = Schedule.objects.filter(date__gte=start, date__lte=end, status=ScheduleStatus.OPEN)
    if department is not None:
        queryset = queryset.filter(department=department)
    if doctor is not None:
        queryset = queryset.filter(doctor=doctor)
    return (
        queryset.select_related("doctor", "department")
        .annotate(
            free_online=Sum(F("slots__capacity_online") - F("slots__taken_online")),
            taken_total=Sum(F("slots__taken_online") + F("slots__taken_phone") + F("slots__taken_window")),
        )
        .order_by("date", "starts_at", "doctor_id")
    )


def open_bookings(patient: Patient, now: dt.datetime | None = None) -> QuerySet[Appointment]:
    """The patient's held or booked appointments still to come."""
    now = now or timezone.now()
    return Appointment.objects.filter(
        patient=patient, status__in=[ACTIVE_STATUSES[0], ACTIVE_STATUSES[1]], slot__ends_at__gt=now
    )


def active_restriction(patient: Patient, now: dt.datetime | None = None) -> BookingRestriction | None:
    """The restriction that blocks this patient's online booking now, if any."""
    now = now or timezone.now()
    return (
        BookingRestriction.objects.filter(patient=patient, starts_at__lte=now, ends_at__gt=now, lifted_at__isnull=True)
        .order_by("-ends_at")
        .first()
    )


def no_show_count(patient: Patient, *, since: dt.datetime) -> int:
    return Appointment.objects.filter(patient=patient, status="no_show", slot__starts_at__gte=since).count()


def booking_window(policy: BookingPolicy, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """The days patients may look at online: today to the last day the release rule opens."""
    today = timezone.localdate(now or timezone.now())
    return today, today + dt.timedelta(days=policy.release_days_ahead)


def sessions_for_patients(*, start: dt.date, end: dt.date, now: dt.datetime) -> QuerySet[Schedule]:
    """Open sessions in the window, not yet over, of doctors bookable online (what the portal offers)."""
    return (
        Schedule.objects.filter(date__gte=start, date__lte=end, status=ScheduleStatus.OPEN, ends_at__gt=now)
        .exclude(doctor__doctor_profile__is_bookable=False)
        .order_by("date", "starts_at", "doctor_id")
    )


def account_patient_ids(account) -> list[int]:
    """The patients a portal account books for (itself and its family members)."""
    return list(account.members.values_list("patient_id", flat=True))


def account_appointments(account) -> QuerySet[Appointment]:
    """Appointments of the patients an account books for, with what a list shows."""
    return Appointment.objects.filter(patient__portal_links__account=account).select_related(
        "patient", "doctor", "slot", "schedule__department"
    )
