"""Reads shared by the booking service, the portal, the console and the API."""

from __future__ import annotations

import datetime as dt
import functools

from django.db import connection
from django.db.models import Count, F, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    BookingChannel,
    BookingPolicy,
    BookingRestriction,
    FamilyMember,
    Schedule,
    ScheduleStatus,
    Slot,
    WaitlistEntry,
    WaitlistStatus,
)
from hcrm.models import Department, User
from hcrm.process_cache import ProcessCache
from hcrm.rows import rows_load_together
from patients.models import Patient

# Every booking reads the rules; a process keeps them for a few seconds. A change saved in this process
# is seen at once (see `booking_policy_forget`), in other processes within POLICY_SECONDS.
POLICY_SECONDS = 10.0
_policy_cache = ProcessCache()


def _policy_load() -> BookingPolicy:
    policy, _created = BookingPolicy.objects.get_or_create(pk=1)
    return policy


def booking_policy() -> BookingPolicy:
    """The single rules row, created with the defaults on first use."""
    return _policy_cache.cached("policy", _policy_load, ttl_seconds=POLICY_SECONDS)


def booking_policy_forget(**kwargs) -> None:
    """Drop the kept rules (connected to BookingPolicy's post_save)."""
    _policy_cache.clear()


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


def slot_to_book(slot_uuid) -> Slot | None:
    """A slot as booking reads it, in one statement: with its session, the session's department and doctor
    (the confirmation names them), and the online places a patient could still take (`free_in_session`, and
    `free_that_day` across the department's open released sessions of that day) from the slots' counters.

    It runs at every try of the release storm (放号), most of them refused as full: a fixed statement,
    prepared once per connection (`hcrm.rows`), not a queryset compiled again each time.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    key = Slot._meta.get_field("uuid").get_db_prep_value(slot_uuid, connection)
    joined, extra = _slot_to_book_sql(connection.vendor)
    found = rows_load_together(
        [(Slot, "t"), (Schedule, "s"), (Department, "d"), (User, "u")],
        joined,
        "t.uuid = %s",
        [ScheduleStatus.OPEN, now, ScheduleStatus.OPEN, now, key],
        extra=extra,
    )
    if not found:
        return None
    (slot, schedule, department, doctor), (slot.free_in_session, slot.free_that_day) = found[0]
    schedule.department, schedule.doctor = department, doctor
    slot.schedule = schedule
    return slot


def member_slot_to_book(account_id: int, patient_uuid, slot_uuid) -> tuple[Patient, Slot | None] | None:
    """The patient a portal account books for and `slot_to_book`'s slot, in one statement: None when the
    patient is not one of the account's, whatever the slot; the slot None when there is no such slot.

    The portal reads both at every booking try of the release storm (放号); one round trip instead of two.
    """
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    patient_key = Patient._meta.get_field("uuid").get_db_prep_value(patient_uuid, connection)
    slot_key = Slot._meta.get_field("uuid").get_db_prep_value(slot_uuid, connection)
    _joined, extra = _slot_to_book_sql(connection.vendor)
    found = rows_load_together(
        [(Patient, "p"), (Slot, "t"), (Schedule, "s"), (Department, "d"), (User, "u")],
        _member_slot_joins(connection.vendor),
        "m.account_id = %s AND p.uuid = %s",
        [ScheduleStatus.OPEN, now, ScheduleStatus.OPEN, now, slot_key, account_id, patient_key],
        extra=extra,
    )
    if not found:
        return None
    (patient, slot, schedule, department, doctor), (slot.free_in_session, slot.free_that_day) = found[0]
    if slot.pk is None:  # no such slot: the outer join left its columns empty
        return patient, None
    schedule.department, schedule.doctor = department, doctor
    slot.schedule = schedule
    return patient, slot


@functools.cache
def _slot_to_book_sql(vendor: str) -> tuple[str, list[str]]:
    """The joins and the free-place columns of `slot_to_book`'s statement, written once per process."""
    joined = (
        f"JOIN {_table(Schedule)} s ON s.id = t.schedule_id JOIN {_table(Department)} d ON d.id = s.department_id "
        f"JOIN {_table(User)} u ON u.id = s.doctor_id"
    )
    extra = [
        f"COALESCE((SELECT SUM(o.capacity_online - o.taken_online) FROM {_table(Slot)} o "  # noqa: S608 (model metadata)
        "WHERE o.schedule_id = s.id AND s.status = %s AND s.releases_at <= %s), 0)",
        f"COALESCE((SELECT SUM(o.capacity_online - o.taken_online) FROM {_table(Slot)} o "  # noqa: S608
        f"JOIN {_table(Schedule)} os ON os.id = o.schedule_id WHERE os.department_id = s.department_id "
        "AND os.date = s.date AND os.status = %s AND os.releases_at <= %s), 0)",
    ]
    return joined, extra


@functools.cache
def _member_slot_joins(vendor: str) -> str:
    """`member_slot_to_book`'s joins: the patient's family-member link, then the slot as `slot_to_book` joins it."""
    slot_joined, _extra = _slot_to_book_sql(vendor)
    return (
        f"JOIN {_table(FamilyMember)} m ON m.patient_id = p.id "
        f"LEFT JOIN ({_table(Slot)} t {slot_joined}) ON t.uuid = %s"
    )


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


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
    today = timezone.localdate(now or timezone.now(), timezone.get_default_timezone())
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


# --- Staff: what a member of staff may see ---------------------------------------------------------


def user_sees_all_departments(user) -> bool:
    """Agents, administrators and integration keys book and read for every department."""
    return user.has_perm("appointments.view_all_appointments")


def booking_department_ids(user) -> set[int] | None:
    """The departments whose sessions `user` may see and book; None for all of them."""
    if user_sees_all_departments(user):
        return None
    return set(getattr(user, "department_ids", set()))


def schedules_visible_to(user) -> QuerySet[Schedule]:
    schedules = Schedule.objects.all()
    department_ids = booking_department_ids(user)
    if department_ids is not None:
        schedules = schedules.filter(department_id__in=sorted(department_ids))
    return schedules


def appointments_visible_to(user) -> QuerySet[Appointment]:
    """Bookings of the sessions of the user's departments, or of every department."""
    appointments = Appointment.objects.all()
    department_ids = booking_department_ids(user)
    if department_ids is not None:
        appointments = appointments.filter(schedule__department_id__in=sorted(department_ids))
    return appointments


def waitlist_visible_to(user) -> QuerySet[WaitlistEntry]:
    entries = WaitlistEntry.objects.all()
    department_ids = booking_department_ids(user)
    if department_ids is not None:
        entries = entries.filter(schedule__department_id__in=sorted(department_ids))
    return entries


def patients_bookable_by(user) -> QuerySet[Patient]:
    """Patients `user` may book for: every active patient for those booking for all departments (agents,
    other systems), otherwise the patients they may see."""
    from patients.selectors import patients_visible_to

    if user_sees_all_departments(user):
        return Patient.objects.filter(merged_into__isnull=True)
    return patients_visible_to(user)


def doctors_visible_to(user) -> QuerySet:
    """Doctors whose day lists `user` may open: those of the user's departments, or all."""
    from django.contrib.auth import get_user_model

    from hcrm.roles import Role

    doctors = get_user_model().objects.filter(groups__name=Role.DOCTOR, is_active=True)
    department_ids = booking_department_ids(user)
    if department_ids is not None:
        doctors = doctors.filter(staff_departments__department_id__in=sorted(department_ids))
    return doctors.distinct().order_by("full_name", "username")


# --- Staff: the day list and the grid --------------------------------------------------------------

WAITING_STATUSES = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


def doctor_day(*, doctor, date: dt.date, department_ids: set[int] | None = None) -> list[Schedule]:
    """A doctor's sessions of one day, each with its bookings in visit-number order and its waitlist
    (three queries whatever the number of sessions and bookings)."""
    bookings = (
        Appointment.objects.exclude(status__in=[AppointmentStatus.HELD, AppointmentStatus.EXPIRED])
        .select_related("patient", "slot")
        .order_by(F("visit_number").asc(nulls_last=True), "slot__starts_at", "pk")
    )
    waiting = (
        WaitlistEntry.objects.filter(status__in=WAITING_STATUSES).select_related("patient").order_by("created_at", "pk")
    )
    sessions = Schedule.objects.filter(doctor=doctor, date=date)
    if department_ids is not None:
        sessions = sessions.filter(department_id__in=sorted(department_ids))
    return list(
        sessions.select_related("department")
        .prefetch_related(Prefetch("appointments", queryset=bookings), Prefetch("waitlist", queryset=waiting))
        .order_by("starts_at")
    )


def _per_schedule(queryset: QuerySet, total) -> Subquery:
    """One aggregate of rows pointing at the outer session, as a scalar subquery: no join fan-out."""
    return Subquery(
        queryset.filter(schedule=OuterRef("pk")).order_by().values("schedule").annotate(total=total).values("total")[:1]
    )


def schedule_grid(*, department, start: dt.date, end: dt.date) -> QuerySet[Schedule]:
    """A department's sessions between two dates with places, places taken and the waitlist length,
    each counted by its own subquery so slots and waitlist rows never multiply each other; one query."""
    places = F("capacity_online") + F("capacity_phone") + F("capacity_window")
    taken = F("taken_online") + F("taken_phone") + F("taken_window")
    return (
        Schedule.objects.filter(department=department, date__gte=start, date__lte=end)
        .select_related("doctor")
        .annotate(
            places=Coalesce(_per_schedule(Slot.objects.all(), Sum(places)), 0),
            taken=Coalesce(_per_schedule(Slot.objects.all(), Sum(taken)), 0),
            waiting=Coalesce(_per_schedule(WaitlistEntry.objects.filter(status__in=WAITING_STATUSES), Count("pk")), 0),
        )
        .order_by("doctor__full_name", "doctor_id", "date", "starts_at")
    )
