"""Holding, booking, cancelling, rescheduling and checking in: every door (portal, console, API) comes here.

Capacity is taken by the database: a conditional `UPDATE slot SET taken = taken + 1 WHERE taken <
capacity` that either takes a place or touches no row, backed by check constraints. Locks are taken
in one order everywhere: the patient row, then slots by primary key, then the session row (its
visit-number counter). Row locks name their own table (`of=("self",)`): a plain FOR UPDATE over a join
would also lock the slot and session rows it reads, out of that order. They are NO KEY UPDATE locks: a
FOR UPDATE would also wait for every insert that points at the row (an outbox message for the
patient, say), and such an insert may be waiting for a slot this transaction holds.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    BookingChannel,
    BookingPolicy,
    BookingRestriction,
    CancelledBy,
    PortalAccount,
    Schedule,
    ScheduleStatus,
    Slot,
)
from appointments.selectors import active_restriction, booking_policy, pools_for
from hcrm.rows import statement_run
from patients.models import Patient

logger = logging.getLogger(__name__)


class BookingRefused(ValidationError):
    """A booking rule said no; `code` names the rule, the message says it in the patient's language."""

    def __init__(self, code: str, message, field: str = "slot") -> None:
        super().__init__({field: ValidationError(message, code=code)})
        self.rule = code


@dataclass(frozen=True)
class BookingDoor:
    """Who is booking and through what: the channel decides which places may be taken."""

    channel: str
    actor: object | None = None  # a staff member, or None for the patient or another system
    portal_account: PortalAccount | None = None

    @property
    def staff(self):
        return self.actor if getattr(self.actor, "pk", None) else None


# --- Rules ---------------------------------------------------------------------------------------


def _local(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment, timezone.get_default_timezone()), "Y-m-d H:i")


def slot_rules_check(*, slot: Slot, door: BookingDoor, now: dt.datetime) -> None:
    """Raise BookingRefused for the rules that depend on the slot alone (no query: `slot.schedule` is loaded)."""
    schedule = slot.schedule
    if door.channel not in BookingChannel.values:
        raise BookingRefused("channel", _("Unknown booking channel."), field="channel")
    if schedule.status == ScheduleStatus.STOPPED:
        raise BookingRefused("stopped", _("This clinic session has been stopped (停诊); choose another."))
    last_moment = slot.ends_at if door.channel == BookingChannel.WINDOW else slot.starts_at
    if now >= last_moment:
        raise BookingRefused("past", _("This time slot has already begun; choose a later one."))
    if door.channel != BookingChannel.WINDOW and now < schedule.releases_at:
        raise BookingRefused(
            "not_released",
            _("Booking for this day opens at %(moment)s.") % {"moment": _local(schedule.releases_at)},
        )


def _patient_facts(patient: Patient, schedule: Schedule, now: dt.datetime) -> dict:
    """Lock the patient's row and read what the patient rules need, in one statement.

    The lock makes a patient's bookings go one at a time, so the open-booking limit holds under
    concurrency; the unique index on (patient, doctor, date) holds the one-per-day rule regardless.
    Every booking runs it, so it is a fixed statement prepared once per connection (`hcrm.rows`).
    """
    quote = connection.ops.quote_name
    moment = connection.ops.adapt_datetimefield_value(now)
    day = connection.ops.adapt_datefield_value(schedule.date)
    lock = " FOR NO KEY UPDATE OF t" if connection.features.has_select_for_no_key_update else ""
    active = ", ".join(["%s"] * len(ACTIVE_STATUSES))
    sql = (
        "SELECT t.is_deceased, "  # noqa: S608 (model metadata)
        f"EXISTS(SELECT 1 FROM {quote(BookingRestriction._meta.db_table)} r WHERE r.patient_id = t.id "
        "AND r.starts_at <= %s AND r.ends_at > %s AND r.lifted_at IS NULL), "
        f"(SELECT COUNT(*) FROM {quote(Appointment._meta.db_table)} a JOIN {quote(Slot._meta.db_table)} s "
        "ON s.id = a.slot_id WHERE a.patient_id = t.id AND a.status IN (%s, %s) AND s.ends_at > %s), "
        f"EXISTS(SELECT 1 FROM {quote(Appointment._meta.db_table)} a WHERE a.patient_id = t.id "
        f"AND a.doctor_id = %s AND a.date = %s AND a.status IN ({active})) "
        f"FROM {quote(Patient._meta.db_table)} t WHERE t.id = %s{lock}"
    )
    params = [
        moment,
        moment,
        AppointmentStatus.HELD,
        AppointmentStatus.BOOKED,
        moment,
        schedule.doctor_id,
        day,
        *ACTIVE_STATUSES,
        patient.pk,
    ]
    with connection.cursor() as cursor:
        statement_run(cursor, sql, params)
        deceased, restricted, open_count, same_day = cursor.fetchone()
    return {
        "is_deceased": bool(deceased),
        "restricted": bool(restricted),
        "open_count": open_count,
        "same_day": bool(same_day),
    }


def patient_rules_check(
    *, patient: Patient, facts: dict, door: BookingDoor, policy: BookingPolicy, now: dt.datetime
) -> None:
    """Raise BookingRefused for the first rule about the patient this booking breaks."""
    if facts["is_deceased"]:
        raise BookingRefused("deceased", _("This patient is recorded as deceased and cannot be booked."), "patient")
    if door.channel == BookingChannel.ONLINE and facts["restricted"]:
        restriction = active_restriction(patient, now)
        raise BookingRefused(
            "restricted",
            _(
                "Online booking is blocked until %(moment)s after missed appointments; please call or come to the window."
            )
            % {"moment": _local(restriction.ends_at if restriction else now)},
            "patient",
        )
    if facts["open_count"] >= policy.max_open_bookings:
        raise BookingRefused(
            "too_many_open",
            _("At most %(count)d open appointments are allowed; cancel one first.")
            % {"count": policy.max_open_bookings},
            "patient",
        )
    if facts["same_day"]:
        raise _one_per_doctor_day()


def _one_per_doctor_day() -> BookingRefused:
    return BookingRefused("one_per_doctor_day", _("This patient already has an appointment with this doctor that day."))


def cancel_deadline(appointment: Appointment, policy: BookingPolicy) -> dt.datetime:
    """The last moment the patient may cancel: N days before the visit, at the configured time."""
    day = appointment.date - dt.timedelta(days=policy.cancel_days_before)
    deadline = timezone.make_aware(dt.datetime.combine(day, policy.cancel_time), timezone.get_default_timezone())
    return min(deadline, appointment.slot.starts_at)


# --- Places and numbers --------------------------------------------------------------------------


def _take_place(slot: Slot, pools: list[str]) -> str | None:
    """Take one place from the first pool that has one; the pool taken, or None when all are full."""
    table = connection.ops.quote_name(Slot._meta.db_table)
    # The slot's updated_at is set here so FHIR _lastUpdated sees the change.
    moment = connection.ops.adapt_datetimefield_value(timezone.now())
    for pool in pools:
        taken, capacity = f"taken_{pool}", f"capacity_{pool}"
        with connection.cursor() as cursor:
            statement_run(
                cursor,
                f"UPDATE {table} SET {taken} = {taken} + 1, updated_at = %s WHERE id = %s AND {taken} < {capacity}",  # noqa: S608 (pools are the channel names)
                [moment, slot.pk],
            )
            if cursor.rowcount:
                return pool
    return None


def _give_back_place(slot_id: int, pool: str) -> None:
    taken = f"taken_{pool}"
    Slot.objects.filter(pk=slot_id, **{f"{taken}__gt": 0}).update(**{taken: F(taken) - 1}, updated_at=timezone.now())


def _next_visit_number(schedule_id: int) -> int | None:
    """The session's next visit number, or None when the session has been stopped.

    The row lock this takes lasts until commit, so numbers never repeat and a rolled-back booking gives
    its number back; the status test sees a stop committed while this booking waited for its place.
    """
    table = connection.ops.quote_name(Schedule._meta.db_table)
    with connection.cursor() as cursor:
        statement_run(
            cursor,
            f"UPDATE {table} SET issued_numbers = issued_numbers + 1 WHERE id = %s AND status = %s "  # noqa: S608
            "RETURNING issued_numbers",
            [schedule_id, ScheduleStatus.OPEN.value],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _still_open(schedule_id: int) -> bool:
    """Whether the session is open now (read again: a stop may have committed while this waited for its place)."""
    table = connection.ops.quote_name(Schedule._meta.db_table)
    with connection.cursor() as cursor:
        statement_run(cursor, f"SELECT status FROM {table} WHERE id = %s", [schedule_id])  # noqa: S608
        return cursor.fetchone()[0] == ScheduleStatus.OPEN


def _stopped() -> BookingRefused:
    return BookingRefused("stopped", _("This clinic session has been stopped (停诊); choose another."))


def _full() -> BookingRefused:
    return BookingRefused("full", _("This time slot is fully booked; choose another or join the waitlist."))


# --- Hold, confirm, book --------------------------------------------------------------------------


def appointment_hold(
    *,
    patient: Patient,
    slot: Slot,
    door: BookingDoor,
    now: dt.datetime | None = None,
    minutes: int | None = None,
    offer: bool = False,
) -> Appointment:
    """Hold a place in `slot` for a few minutes while the patient confirms.

    `offer` is the waitlist handing on a freed place: it is the hospital's to give, so any channel's
    share may carry it, released or not. A slot loaded with its session is taken as read (see `_take`).
    """
    return _take(patient=patient, slot=slot, door=door, now=now, book=False, minutes=minutes, offer=offer)


def appointment_book(*, patient: Patient, slot: Slot, door: BookingDoor, now: dt.datetime | None = None) -> Appointment:
    """Book a place with the session's next visit number in one step, and tell the patient.

    A slot loaded with its session is taken as read (see `_take`).
    """
    return _take(patient=patient, slot=slot, door=door, now=now, book=True)


def _take(
    *,
    patient: Patient,
    slot: Slot,
    door: BookingDoor,
    now: dt.datetime | None,
    book: bool,
    minutes: int | None = None,
    offer: bool = False,
) -> Appointment:
    """Hold or book one place of `slot`.

    A `slot` loaded with its session (`select_related("schedule")`, in this request) is not read again:
    the rules that depend on it and the quick "full" answer use that read, and the conditional update
    and the session's status read under its lock decide in the end. A slot without its session is read.
    """
    now = now or timezone.now()
    policy = booking_policy()
    if not Slot.schedule.is_cached(slot):
        slot = Slot.objects.select_related("schedule").get(pk=slot.pk)
    schedule = slot.schedule
    rules_door = BookingDoor(channel=BookingChannel.WINDOW) if offer else door
    slot_rules_check(slot=slot, door=rules_door, now=now)
    pools = list(BookingChannel.values) if offer else pools_for(door.channel, schedule, policy, now)
    if not any(slot.free(pool) > 0 for pool in pools):
        # Most refusals in a release storm: answered from the row just read, without taking any lock.
        raise _full()
    with transaction.atomic():
        facts = _patient_facts(patient, schedule, now)
        patient_rules_check(patient=patient, facts=facts, door=rules_door, policy=policy, now=now)
        pool = _take_place(slot, pools)
        if pool is None:
            raise _full()
        appointment = Appointment(
            patient=patient,
            slot=slot,
            schedule=schedule,
            doctor_id=schedule.doctor_id,
            date=schedule.date,
            channel=door.channel,
            pool=pool,
            booked_by=door.staff,
            portal_account=door.portal_account,
        )
        if Schedule.doctor.is_cached(schedule):  # the confirmation names the doctor
            appointment.doctor = schedule.doctor
        # A stop (停诊) takes the session's slots before its status: a booking that waited for its place
        # behind a stop reads the status again here and gives up.
        if book:
            appointment.status = AppointmentStatus.BOOKED
            appointment.visit_number = _next_visit_number(schedule.pk)
            if appointment.visit_number is None:
                raise _stopped()
            appointment.booked_at = now
        else:
            if not _still_open(schedule.pk):
                raise _stopped()
            appointment.status = AppointmentStatus.HELD
            appointment.hold_expires_at = now + dt.timedelta(minutes=minutes or policy.hold_minutes)
        try:
            # No savepoint: a refusal ends the whole booking anyway.
            with transaction.atomic(savepoint=False):
                appointment.save(force_insert=True)
        except IntegrityError:
            raise _one_per_doctor_day() from None
        if book:
            from appointments.services.notices import notices_after_booking

            notices_after_booking(appointment, actor=door.staff)
    return appointment


def appointment_confirm(*, appointment: Appointment, door: BookingDoor, now: dt.datetime | None = None) -> Appointment:
    """Turn a hold into a booking with the session's next visit number, and tell the patient."""
    now = now or timezone.now()
    expired = stopped = False
    with transaction.atomic():
        held = (
            Appointment.objects.select_for_update(of=("self",), no_key=True)
            .select_related("slot", "schedule")
            .get(pk=appointment.pk)
        )
        if held.status != AppointmentStatus.HELD:
            raise BookingRefused(
                "not_held", _("This place is no longer held; choose a slot again."), field="appointment"
            )
        number = None
        if held.schedule.status != ScheduleStatus.STOPPED and held.hold_expires_at > now:
            number = _next_visit_number(held.schedule_id)
        if number is None and held.hold_expires_at > now:
            # A hold that took its place while the clinic was being stopped.
            held.schedule.refresh_from_db(fields=["stopped_reason"])
            held.cancelled_by = CancelledBy.HOSPITAL
            held.cancel_reason = held.schedule.stopped_reason
            _release(held, status=AppointmentStatus.CANCELLED, now=now)
            stopped = True
        elif held.hold_expires_at <= now:
            _expire(held, now)
            expired = True
        else:
            held.visit_number = number
            held.status = AppointmentStatus.BOOKED
            held.booked_at = now
            held.booked_by = held.booked_by or door.staff
            held.hold_expires_at = None
            held.save(
                update_fields=["visit_number", "status", "booked_at", "booked_by", "hold_expires_at", "updated_at"]
            )
            from appointments.services.notices import notices_after_booking

            notices_after_booking(held, actor=door.staff)
    if stopped:
        raise _stopped()
    if expired:
        raise BookingRefused(
            "hold_expired", _("The hold on this place has expired; choose a slot again."), "appointment"
        )
    return held


# --- Cancel, reschedule, expire --------------------------------------------------------------------


def _release(appointment: Appointment, *, status: str, now: dt.datetime) -> None:
    """Give the place back and leave the appointment in `status` (caller holds the row lock)."""
    _give_back_place(appointment.slot_id, appointment.pool)
    appointment.status = status
    fields = ["status", "updated_at"]
    if status == AppointmentStatus.CANCELLED:
        appointment.cancelled_at = now
        fields.append("cancelled_at")
    appointment.save(update_fields=[*fields, "cancelled_by", "cancel_reason", "hold_expires_at"])


def _expire(appointment: Appointment, now: dt.datetime) -> None:
    _release(appointment, status=AppointmentStatus.EXPIRED, now=now)
    from appointments.services.waitlist import waitlist_offer_on_commit

    waitlist_offer_on_commit(appointment.schedule_id)


def appointment_cancel(
    *,
    appointment: Appointment,
    by: str,
    actor=None,
    reason: str = "",
    now: dt.datetime | None = None,
    notify: bool = True,
) -> Appointment:
    """Cancel a hold or a booking: the place goes back (to the waitlist first) and the reminder is withdrawn.

    A patient may not cancel after the deadline; staff and the hospital may.
    """
    now = now or timezone.now()
    if by not in CancelledBy.values:
        raise BookingRefused("cancelled_by", _("Unknown canceller."), field="cancelled_by")
    with transaction.atomic():
        current = (
            Appointment.objects.select_for_update(of=("self",), no_key=True)
            .select_related("slot", "schedule")
            .get(pk=appointment.pk)
        )
        if current.status not in (AppointmentStatus.HELD, AppointmentStatus.BOOKED):
            raise BookingRefused(
                "not_cancellable",
                _("Only a held or booked appointment can be cancelled; this one is %(status)s.")
                % {"status": current.get_status_display()},
                field="appointment",
            )
        was_booked = current.status == AppointmentStatus.BOOKED
        if by == CancelledBy.PATIENT and was_booked and now > cancel_deadline(current, booking_policy()):
            raise BookingRefused(
                "cancel_deadline",
                _("Appointments can be cancelled online until %(moment)s; please call the hospital.")
                % {"moment": _local(cancel_deadline(current, booking_policy()))},
                field="appointment",
            )
        current.cancelled_by = by
        current.cancel_reason = reason[:200]
        _release(current, status=AppointmentStatus.CANCELLED, now=now)
        if was_booked:
            from appointments.services.notices import notices_after_cancel

            notices_after_cancel(current, actor=actor, notify=notify and by != CancelledBy.RESCHEDULE)
        from appointments.services.waitlist import waitlist_offer_on_commit

        waitlist_offer_on_commit(current.schedule_id)
    return current


def appointment_reschedule(
    *, appointment: Appointment, slot: Slot, door: BookingDoor, now: dt.datetime | None = None
) -> Appointment:
    """Move a booking to another slot in one transaction: if the new place cannot be had, nothing changes."""
    now = now or timezone.now()
    with transaction.atomic():
        old = (
            Appointment.objects.select_for_update(of=("self",), no_key=True)
            .select_related("slot", "schedule")
            .get(pk=appointment.pk)
        )
        if old.status != AppointmentStatus.BOOKED:
            raise BookingRefused("not_booked", _("Only a booked appointment can be moved."), field="appointment")
        if door.staff is None and now > cancel_deadline(old, booking_policy()):
            raise BookingRefused(
                "cancel_deadline",
                _("Appointments can be changed online until %(moment)s; please call the hospital.")
                % {"moment": _local(cancel_deadline(old, booking_policy()))},
                field="appointment",
            )
        appointment_cancel(appointment=old, by=CancelledBy.RESCHEDULE, actor=door.staff, now=now, notify=False)
        # Read after the cancel: moving within the same slot counts the place just given back.
        slot = Slot.objects.select_related("schedule").get(pk=slot.pk)
        new = appointment_book(patient=old.patient, slot=slot, door=door, now=now)
        old.rescheduled_to = new
        old.save(update_fields=["rescheduled_to", "updated_at"])
        from appointments.services.notices import notices_after_reschedule

        notices_after_reschedule(old, new, actor=door.staff)
    return new


def holds_expire(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Free the places of holds nobody confirmed in time; safe to run in several workers at once."""
    now = now or timezone.now()
    expired = 0
    candidates = list(
        Appointment.objects.filter(status=AppointmentStatus.HELD, hold_expires_at__lte=now)
        .order_by("hold_expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in candidates:
        with transaction.atomic():
            expired += hold_expire(appointment_id=pk, now=now)
    return expired


def hold_expire(*, appointment_id: int, now: dt.datetime) -> bool:
    """Free the place of one hold if its time is up (skipped when another worker holds the row)."""
    held = (
        Appointment.objects.select_for_update(skip_locked=True, no_key=True)
        .filter(pk=appointment_id, status=AppointmentStatus.HELD, hold_expires_at__lte=now)
        .first()
    )
    if held is None:
        return False
    _expire(held, now)
    return True


# --- Arrival -------------------------------------------------------------------------------------


def appointment_check_in(*, appointment: Appointment, actor, now: dt.datetime | None = None) -> Appointment:
    """Record the patient's arrival on the day."""
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            Appointment.objects.select_for_update(of=("self",), no_key=True)
            .select_related("slot")
            .get(pk=appointment.pk)
        )
        if current.status != AppointmentStatus.BOOKED:
            raise BookingRefused(
                "not_booked",
                _("Only a booked appointment can be checked in; this one is %(status)s.")
                % {"status": current.get_status_display()},
                field="appointment",
            )
        if timezone.localdate(now, timezone.get_default_timezone()) != current.date:
            raise BookingRefused("not_today", _("Patients check in on the day of their appointment."), "appointment")
        current.status = AppointmentStatus.CHECKED_IN
        current.checked_in_at = now
        current.save(update_fields=["status", "checked_in_at", "updated_at"])
    return current


def no_shows_mark(*, now: dt.datetime | None = None) -> int:
    """After a session ends, bookings nobody checked in become no-shows; repeat offenders lose online booking."""
    now = now or timezone.now()
    marked = 0
    for schedule_id in Schedule.objects.filter(ends_at__lte=now, no_shows_marked_at__isnull=True).values_list(
        "pk", flat=True
    )[:500]:
        with transaction.atomic():
            if not Schedule.objects.filter(pk=schedule_id, no_shows_marked_at__isnull=True).update(
                no_shows_marked_at=now
            ):
                continue  # another worker claimed it
            missed = list(
                Appointment.objects.select_for_update(of=("self",), no_key=True)
                .filter(schedule_id=schedule_id, status=AppointmentStatus.BOOKED)
                .select_related("patient")
            )
            for appointment in missed:
                appointment.status = AppointmentStatus.NO_SHOW
                appointment.save(update_fields=["status", "updated_at"])
                _restrict_after_no_shows(appointment.patient, now)
            marked += len(missed)
    return marked


def _restrict_after_no_shows(patient: Patient, now: dt.datetime) -> None:
    policy = booking_policy()
    since = now - dt.timedelta(days=policy.no_show_window_days)
    if policy.no_show_limit == 0 or active_restriction(patient, now) is not None:
        return
    from appointments.selectors import no_show_count

    # A restriction staff lifted is not imposed again for the same no-shows.
    lifted_since = BookingRestriction.objects.filter(patient=patient, lifted_at__gte=since).order_by("-lifted_at")
    counted_from = max(since, lifted_since[0].lifted_at) if lifted_since else since
    if no_show_count(patient, since=counted_from) >= policy.no_show_limit:
        BookingRestriction.objects.create(
            patient=patient,
            reason=str(
                _("%(count)d missed appointments in %(days)d days")
                % {"count": policy.no_show_limit, "days": policy.no_show_window_days}
            ),
            starts_at=now,
            ends_at=now + dt.timedelta(days=policy.no_show_block_days),
        )


def restriction_lift(*, restriction: BookingRestriction, actor, reason: str) -> BookingRestriction:
    """Staff give a patient online booking back before the restriction ends (audited)."""
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the restriction is lifted.")})
    with transaction.atomic():
        current = BookingRestriction.objects.select_for_update().get(pk=restriction.pk)
        if current.lifted_at is not None:
            return current
        current.lifted_at = timezone.now()
        current.lifted_by = actor
        current.lift_reason = reason.strip()[:200]
        current.save(update_fields=["lifted_at", "lifted_by", "lift_reason", "updated_at"])
    return current
