"""Doctor schedules: weekly templates, holidays, generating sessions, stopping a clinic (停诊) and extra places (加号).

Stopping a clinic locks what it changes in the order the booking and waitlist services do: the session's
waitlist entries, its held and booked appointments, its slots (a hold taking a place finishes first; one
that comes later waits, and is refused when confirmed), then the session row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from appointments.models import (
    Appointment,
    AppointmentStatus,
    BookingChannel,
    CancelledBy,
    ClinicLevel,
    ClinicSession,
    Holiday,
    Schedule,
    ScheduleStatus,
    ScheduleTemplate,
    Slot,
    WaitlistEntry,
    WaitlistStatus,
)
from appointments.selectors import booking_policy, release_moment
from appointments.services import inputs
from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.models import Department, StaffDepartment, User

MAX_SLOT_PLACES = 999
MAX_EXTRA_PLACES = 50

# --- Weekly templates ---------------------------------------------------------------------------------

TEMPLATE_PARSERS = {
    "doctor": inputs.instance(User),
    "department": inputs.instance(Department),
    "weekday": lambda value: inputs.whole(value, minimum=0, maximum=6),
    "session": inputs.choice(ClinicSession),
    "clinic_level": inputs.choice(ClinicLevel),
    "location": inputs.text(100),
    "fee": inputs.fee,
    "start_time": inputs.time,
    "end_time": inputs.time,
    "slot_minutes": lambda value: inputs.whole(value, minimum=5, maximum=240),
    "capacity_online": lambda value: inputs.whole(value, minimum=0, maximum=MAX_SLOT_PLACES),
    "capacity_phone": lambda value: inputs.whole(value, minimum=0, maximum=MAX_SLOT_PLACES),
    "capacity_window": lambda value: inputs.whole(value, minimum=0, maximum=MAX_SLOT_PLACES),
    "valid_from": inputs.date,
    "valid_until": inputs.optional_date,
    "is_active": inputs.boolean,
}
TEMPLATE_REQUIRED = ("doctor", "department", "weekday", "session", "start_time", "end_time", "valid_from")


def _template_errors(template: ScheduleTemplate) -> dict[str, str]:
    """What is wrong with the template as a whole, by field."""
    errors: dict[str, str] = {}
    if not StaffDepartment.objects.filter(user_id=template.doctor_id, department_id=template.department_id).exists():
        errors["doctor"] = _("This doctor does not work in this department.")
    start, end = inputs.minutes(template.start_time), inputs.minutes(template.end_time)
    if end <= start:
        errors["end_time"] = _("The session must end after it starts.")
    elif (end - start) % template.slot_minutes:
        errors["slot_minutes"] = _("%(minutes)d-minute slots do not divide a session of %(length)d minutes.") % {
            "minutes": template.slot_minutes,
            "length": end - start,
        }
    if template.capacity_total == 0:
        errors["capacity_online"] = _("Give each slot at least one place (online, phone or window).")
    if template.valid_until is not None and template.valid_until < template.valid_from:
        errors["valid_until"] = _("The last day cannot be before the first.")
    if template.is_active and "doctor" not in errors:
        clash = ScheduleTemplate.objects.filter(
            doctor_id=template.doctor_id, weekday=template.weekday, session=template.session, is_active=True
        ).exclude(pk=template.pk)
        if template.valid_until is not None:
            clash = clash.filter(valid_from__lte=template.valid_until)
        clash = clash.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=template.valid_from))
        if clash.exists():
            errors["session"] = _("This doctor already has an active weekly session on this day and session.")
    return errors


def schedule_template_save(
    *, actor, data: dict[str, Any], template: ScheduleTemplate | None = None
) -> ScheduleTemplate:
    """Create a weekly template or change one; sessions already generated keep their old pattern."""
    values = inputs.parse(data, TEMPLATE_PARSERS)
    if template is None:
        missing = [field for field in TEMPLATE_REQUIRED if field not in values]
        if missing:
            raise ValidationError(
                {field: ValidationError(_("This field is required."), code="required") for field in missing}
            )
        template = ScheduleTemplate()
    for field, value in values.items():
        setattr(template, field, value)
    errors = _template_errors(template)
    if errors:
        raise ValidationError({field: ValidationError(message, code="invalid") for field, message in errors.items()})
    with transaction.atomic(), audit_acting_as(actor):
        template.save()
    return template


def schedule_template_delete(*, actor, template: ScheduleTemplate) -> None:
    """Remove a weekly template; the sessions it generated stay (they lose only the link)."""
    with transaction.atomic(), audit_acting_as(actor):
        template.delete()


# --- Holidays -------------------------------------------------------------------------------------------

HOLIDAY_PARSERS = {
    "date": inputs.date,
    "name": inputs.text(100, required=True),
    "department": lambda value: None if value in (None, "") else inputs.instance(Department)(value),
}


def holiday_save(*, actor, data: dict[str, Any], holiday: Holiday | None = None) -> Holiday:
    """Add a day without clinics (for the hospital or one department), or change one; generation skips it."""
    values = inputs.parse(data, HOLIDAY_PARSERS)
    if holiday is None:
        missing = [field for field in ("date", "name") if field not in values]
        if missing:
            raise ValidationError(
                {field: ValidationError(_("This field is required."), code="required") for field in missing}
            )
        holiday = Holiday()
    for field, value in values.items():
        setattr(holiday, field, value)
    same_day = Holiday.objects.filter(date=holiday.date, department_id=holiday.department_id).exclude(pk=holiday.pk)
    if same_day.exists():
        raise ValidationError({"date": ValidationError(_("This day is already a holiday here."), code="unique")})
    with transaction.atomic(), audit_acting_as(actor):
        holiday.save()
    return holiday


def holiday_delete(*, actor, holiday: Holiday) -> None:
    """Remove a holiday; sessions for that day are generated on the next run."""
    with transaction.atomic(), audit_acting_as(actor):
        holiday.delete()


# --- Generating sessions ----------------------------------------------------------------------------


def _slices(date: dt.date, template: ScheduleTemplate, zone) -> list[tuple[dt.datetime, dt.datetime]]:
    """The session's slots as aware (start, end) pairs in the hospital's zone."""
    first = dt.datetime.combine(date, template.start_time)
    last = dt.datetime.combine(date, template.end_time)
    step = dt.timedelta(minutes=template.slot_minutes)
    edges = []
    moment = first
    while moment < last:
        edges.append(moment)
        moment += step
    edges.append(last)
    aware = [timezone.make_aware(edge, zone) for edge in edges]
    return list(zip(aware, aware[1:], strict=False))


def schedules_generate(*, start: dt.date, weeks: int, actor=None) -> int:
    """Create the sessions and slots of active weekly templates from `start` for `weeks` weeks; the sessions created.

    Holidays (the hospital's and each department's) and sessions that exist already are skipped, so
    running it again, or in two workers at once, creates nothing twice.
    """
    if weeks < 1:
        raise ValidationError({"weeks": _("Generate at least one week.")})
    end = start + dt.timedelta(days=7 * weeks)  # exclusive
    zone = timezone.get_default_timezone()  # the hospital's, whatever zone the process is in
    policy = booking_policy()
    templates = list(
        ScheduleTemplate.objects.filter(
            is_active=True, valid_from__lt=end, doctor__is_active=True, department__is_active=True
        )
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=start))
        .order_by("pk")
    )
    if not templates:
        return 0
    hospital_holidays = set(
        Holiday.objects.filter(date__gte=start, date__lt=end, department__isnull=True).values_list("date", flat=True)
    )
    department_holidays = set(
        Holiday.objects.filter(date__gte=start, date__lt=end, department__isnull=False).values_list(
            "department_id", "date"
        )
    )
    existing = set(Schedule.objects.filter(date__gte=start, date__lt=end).values_list("doctor_id", "date", "session"))
    planned: list[tuple[Schedule, ScheduleTemplate, list[tuple[dt.datetime, dt.datetime]]]] = []
    for offset in range((end - start).days):
        date = start + dt.timedelta(days=offset)
        if date in hospital_holidays:
            continue
        for template in templates:
            if template.weekday != date.weekday() or date < template.valid_from:
                continue
            if template.valid_until is not None and date > template.valid_until:
                continue
            key = (template.doctor_id, date, template.session)
            if key in existing or (template.department_id, date) in department_holidays:
                continue
            existing.add(key)
            slices = _slices(date, template, zone)
            count = len(slices)
            schedule = Schedule(
                uuid=uuid.uuid4(),
                doctor_id=template.doctor_id,
                department_id=template.department_id,
                template=template,
                date=date,
                session=template.session,
                clinic_level=template.clinic_level,
                location=template.location,
                fee=template.fee,
                starts_at=slices[0][0],
                ends_at=slices[-1][1],
                releases_at=release_moment(date, policy),
                capacity_online=template.capacity_online * count,
                capacity_phone=template.capacity_phone * count,
                capacity_window=template.capacity_window * count,
            )
            planned.append((schedule, template, slices))
    if not planned:
        return 0
    with transaction.atomic():
        # A session another run created meanwhile is skipped by the unique (doctor, date, session) constraint;
        # the sessions this run wrote are the ones found again by the ids given them here.
        Schedule.objects.bulk_create([schedule for schedule, _t, _s in planned], ignore_conflicts=True, batch_size=500)
        ids = {}
        wanted = [schedule.uuid for schedule, _t, _s in planned]
        for index in range(0, len(wanted), 500):
            ids.update(Schedule.objects.filter(uuid__in=wanted[index : index + 500]).values_list("uuid", "pk"))
        slots = []
        created = []
        for schedule, template, slices in planned:
            pk = ids.get(schedule.uuid)
            if pk is None:
                continue
            schedule.pk = schedule.id = pk
            created.append(schedule)
            slots.extend(
                Slot(
                    schedule_id=pk,
                    starts_at=slot_start,
                    ends_at=slot_end,
                    capacity_online=template.capacity_online,
                    capacity_phone=template.capacity_phone,
                    capacity_window=template.capacity_window,
                )
                for slot_start, slot_end in slices
            )
        Slot.objects.bulk_create(slots, batch_size=1000)
        if actor is not None:
            with audit_acting_as(actor):
                for schedule in created:
                    audit_write(event=Event.CREATE, instance=schedule, details={"generated": True})
    return len(created)


# --- Stopping a clinic ----------------------------------------------------------------------------------


def booking_link(doctor) -> str:
    """Where a patient whose clinic was stopped books again: the doctor's page of the portal."""
    try:
        path = reverse("portal:book-doctor", kwargs={"doctor": doctor.uuid})
    except NoReverseMatch:
        path = "/portal/"
    return settings.PUBLIC_BASE_URL + path


def _open_entries(schedule_id: int) -> list[WaitlistEntry]:
    return list(
        WaitlistEntry.objects.select_for_update()
        .filter(schedule_id=schedule_id, status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED])
        .order_by("pk")
    )


def _active_appointments(schedule_id: int) -> list[Appointment]:
    return list(
        Appointment.objects.select_for_update(of=("self",))
        .filter(schedule_id=schedule_id, status__in=[AppointmentStatus.HELD, AppointmentStatus.BOOKED])
        .order_by("pk")
    )


def schedule_stop(*, schedule: Schedule, actor, reason: str, now: dt.datetime | None = None) -> Schedule:
    """Stop a clinic session (停诊): every hold and booking is cancelled and its patient told, with a link to
    book again; the waitlist is closed. Stopping a stopped session changes nothing."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ValidationError(_("Say why the clinic is stopped."), code="required")})
    if len(reason) > 200:
        raise ValidationError({"reason": ValidationError(_("Use at most 200 characters."), code="invalid")})
    now = now or timezone.now()
    from appointments.services.booking import appointment_cancel
    from appointments.services.notices import notice_schedule_stopped

    with transaction.atomic(), audit_acting_as(actor):
        current = Schedule.objects.select_related("doctor", "department").get(pk=schedule.pk)
        if current.status == ScheduleStatus.STOPPED:
            return current
        if current.ends_at <= now:
            raise ValidationError({"schedule": ValidationError(_("This clinic session is over."), code="past")})
        # Locks in the order the booking and waitlist services take them, so none of them waits for us
        # while holding what we wait for.
        list(_open_entries(current.pk))
        list(_active_appointments(current.pk))
        list(
            Slot.objects.select_for_update().filter(schedule_id=current.pk).order_by("pk").values_list("pk", flat=True)
        )
        status = Schedule.objects.select_for_update(of=("self",)).filter(pk=current.pk).values_list("status", flat=True)
        if status.get() == ScheduleStatus.STOPPED:
            return Schedule.objects.get(pk=current.pk)  # another stop went first
        current.status = ScheduleStatus.STOPPED
        current.stopped_at = now
        current.stopped_reason = reason
        current.save(update_fields=["status", "stopped_at", "stopped_reason", "updated_at"])
        for entry in _open_entries(current.pk):
            entry.status = WaitlistStatus.CANCELLED
            entry.save(update_fields=["status", "updated_at"])
        link = booking_link(current.doctor)
        # Read again: a hold that took its place before we had the slots is found here.
        for appointment in _active_appointments(current.pk):
            cancelled = appointment_cancel(
                appointment=appointment, by=CancelledBy.HOSPITAL, actor=actor, reason=reason, now=now, notify=False
            )
            notice_schedule_stopped(cancelled, link=link, actor=actor)
    return current


# --- Extra places (加号) -----------------------------------------------------------------------------------


def schedule_add_capacity(
    *, schedule: Schedule, actor, channel: str, count: Any, slot: Slot | None = None, now: dt.datetime | None = None
) -> Slot:
    """Add places to a slot of an open session (the last slot unless one is named) for one channel.

    The caller has checked that `actor` may: the session's doctor, or a manager of its department. New
    places go to the session's waitlist first.
    """
    now = now or timezone.now()
    errors = {}
    if channel not in BookingChannel.values:
        errors["channel"] = ValidationError(_("Choose online, phone or window."), code="invalid")
    try:
        count = inputs.whole(count, minimum=1, maximum=MAX_EXTRA_PLACES)
    except ValidationError as error:
        errors["count"] = error
    if slot is not None and slot.schedule_id != schedule.pk:
        errors["slot"] = ValidationError(_("This time slot belongs to another session."), code="invalid")
    if errors:
        raise ValidationError(errors)
    from appointments.services.waitlist import waitlist_offer_on_commit

    with transaction.atomic(), audit_acting_as(actor):
        slots = Slot.objects.filter(schedule_id=schedule.pk)
        target = slot or slots.order_by("-starts_at").first()
        if target is None:
            raise ValidationError({"slot": ValidationError(_("This session has no time slots."), code="invalid")})
        capacity = f"capacity_{channel}"
        # Slot first, then the session row: the order bookings lock them in.
        Slot.objects.filter(pk=target.pk).update(**{capacity: F(capacity) + count, "updated_at": now})
        current = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if current.status != ScheduleStatus.OPEN:
            raise ValidationError(
                {"schedule": ValidationError(_("This clinic session has been stopped."), code="stopped")}
            )
        if current.ends_at <= now:
            raise ValidationError({"schedule": ValidationError(_("This clinic session is over."), code="past")})
        Schedule.objects.filter(pk=current.pk).update(
            **{capacity: F(capacity) + count, "extra_capacity": F("extra_capacity") + count, "updated_at": now}
        )
        audit_write(
            event=Event.UPDATE,
            instance=current,
            details={"extra_places": count, "channel": channel, "slot": str(target.uuid)},
        )
        waitlist_offer_on_commit(current.pk)
    target.refresh_from_db()
    return target
