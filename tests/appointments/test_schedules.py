"""The schedule services: weekly templates, holidays, generating sessions, stopping a clinic, extra places, rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from appointments.models import Appointment, BookingPolicy, Holiday, Schedule, ScheduleTemplate, Slot
from appointments.selectors import booking_policy
from appointments.services import (
    BookingDoor,
    BookingRefused,
    appointment_book,
    appointment_confirm,
    appointment_hold,
    booking_policy_update,
    holiday_delete,
    holiday_save,
    schedule_add_capacity,
    schedule_stop,
    schedule_template_delete,
    schedule_template_save,
    schedules_generate,
    waitlist_join,
)
from appointments.services.notices import reminder_moment_for, reminders_queue
from appointments.services.schedules import booking_link
from hcrm.models import AuditEntry
from patients.models import OutboundMessage
from tests.appointments.factories import session
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
ONLINE = BookingDoor(channel="online")


def next_monday(after_days: int = 14) -> dt.date:
    day = timezone.localdate() + dt.timedelta(days=after_days)
    return day + dt.timedelta(days=(7 - day.weekday()) % 7)


def weekly(actor, doctor, department, **overrides) -> ScheduleTemplate:
    data = {
        "doctor": doctor,
        "department": department,
        "weekday": 1,  # Tuesday
        "session": "morning",
        "clinic_level": "general",
        "location": "门诊楼 2 楼 205",
        "fee": "35",
        "start_time": "08:00",
        "end_time": "09:00",
        "slot_minutes": 15,
        "capacity_online": 2,
        "capacity_phone": 1,
        "capacity_window": 1,
        "valid_from": timezone.localdate(),
        **overrides,
    }
    return schedule_template_save(actor=actor, data=data)


@pytest.fixture
def head(staff):
    return staff["department_head"]


@pytest.fixture
def doctor(staff):
    return staff["doctor"]


@pytest.fixture
def tuesdays(head, doctor, internal_medicine):
    return weekly(head, doctor, internal_medicine)


# --- Weekly templates -----------------------------------------------------------------------------------


def test_a_weekly_template_is_saved_with_its_values_and_audited(head, doctor, internal_medicine):
    template = weekly(head, doctor, internal_medicine)

    template.refresh_from_db()
    assert (template.weekday, template.session, template.start_time, template.end_time) == (
        1,
        "morning",
        dt.time(8),
        dt.time(9),
    )
    assert (template.capacity_online, template.capacity_phone, template.capacity_window, template.fee) == (
        2,
        1,
        1,
        Decimal("35"),
    )
    entry = AuditEntry.objects.get(content_type__model="scheduletemplate", object_pk=str(template.pk))
    assert entry.actor == head


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"slot_minutes": 25}, "slot_minutes", "25-minute slots do not divide a session of 60 minutes."),
        ({"end_time": "07:30"}, "end_time", "The session must end after it starts."),
        ({"capacity_online": 0, "capacity_phone": 0, "capacity_window": 0}, "capacity_online",
         "Give each slot at least one place (online, phone or window)."),
        ({"capacity_phone": -1}, "capacity_phone", "Enter a number from 0 to 999."),
        ({"weekday": 7}, "weekday", "Enter a number from 0 to 6."),
        ({"start_time": "8 o'clock"}, "start_time", "Enter a time as HH:MM."),
        ({"valid_from": "2026-02-30"}, "valid_from", "Enter a date as YYYY-MM-DD."),
        ({"valid_until": "2000-01-01"}, "valid_until", "The last day cannot be before the first."),
        ({"session": "night"}, "session", "Choose one of: morning, afternoon, evening."),
        ({"fee": "-5"}, "fee", "Enter an amount from 0 to 999999.99 yuan."),
        ({"colour": "red"}, "colour", "This field cannot be set here."),
    ],
)  # fmt: skip
def test_a_bad_template_is_refused_naming_the_field_and_nothing_is_saved(
    head, doctor, internal_medicine, overrides, field, message
):
    with pytest.raises(ValidationError) as error:
        weekly(head, doctor, internal_medicine, **overrides)

    assert error.value.message_dict[field] == [message]
    assert ScheduleTemplate.objects.count() == 0


def test_a_doctor_of_another_department_cannot_be_given_a_template_there(head, staff, internal_medicine):
    with pytest.raises(ValidationError) as error:
        weekly(head, staff["other_doctor"], internal_medicine)

    assert error.value.message_dict == {"doctor": ["This doctor does not work in this department."]}


def test_two_active_templates_for_the_same_weekly_session_clash(head, doctor, internal_medicine, tuesdays):
    with pytest.raises(ValidationError) as error:
        weekly(head, doctor, internal_medicine, start_time="10:00", end_time="11:00")

    assert error.value.message_dict == {
        "session": ["This doctor already has an active weekly session on this day and session."]
    }
    ended = schedule_template_save(actor=head, data={"valid_until": timezone.localdate()}, template=tuesdays)
    later = weekly(head, doctor, internal_medicine, valid_from=timezone.localdate() + dt.timedelta(days=1))
    assert ScheduleTemplate.objects.filter(pk__in=[ended.pk, later.pk]).count() == 2


def test_deleting_a_template_keeps_the_sessions_it_generated(head, tuesdays):
    schedules_generate(start=next_monday(), weeks=1)

    schedule_template_delete(actor=head, template=tuesdays)

    assert ScheduleTemplate.objects.count() == 0
    assert list(Schedule.objects.values_list("template", flat=True)) == [None]


# --- Generating sessions ----------------------------------------------------------------------------------


def test_generation_creates_sessions_and_slots_from_the_template_in_the_hospital_zone(tuesdays):
    monday = next_monday()

    created = schedules_generate(start=monday, weeks=2)

    assert created == 2
    first = Schedule.objects.order_by("date").first()
    tuesday = monday + dt.timedelta(days=1)
    assert (first.date, first.session, first.location, first.fee, first.template_id) == (
        tuesday,
        "morning",
        "门诊楼 2 楼 205",
        Decimal("35.00"),
        tuesdays.pk,
    )
    assert first.starts_at == dt.datetime.combine(tuesday, dt.time(8), SHANGHAI)
    assert first.ends_at == dt.datetime.combine(tuesday, dt.time(9), SHANGHAI)
    assert first.releases_at == dt.datetime.combine(tuesday - dt.timedelta(days=7), dt.time(8), SHANGHAI)
    assert (first.capacity_online, first.capacity_phone, first.capacity_window) == (8, 4, 4)
    slots = list(
        first.slots.values_list("starts_at", "ends_at", "capacity_online", "capacity_phone", "capacity_window")
    )
    assert [(start.astimezone(SHANGHAI).time(), end.astimezone(SHANGHAI).time()) for start, end, *_ in slots] == [
        (dt.time(8, 0), dt.time(8, 15)),
        (dt.time(8, 15), dt.time(8, 30)),
        (dt.time(8, 30), dt.time(8, 45)),
        (dt.time(8, 45), dt.time(9, 0)),
    ]
    assert {tuple(row[2:]) for row in slots} == {(2, 1, 1)}


def test_generation_is_right_when_the_process_runs_in_utc(tuesdays):
    monday = next_monday()

    with timezone.override(dt.UTC):
        schedules_generate(start=monday, weeks=1)

    schedule = Schedule.objects.get()
    tuesday = monday + dt.timedelta(days=1)
    assert schedule.starts_at == dt.datetime.combine(tuesday, dt.time(0), dt.UTC)
    assert schedule.releases_at == dt.datetime.combine(tuesday - dt.timedelta(days=7), dt.time(0), dt.UTC)
    assert schedule.slots.order_by("starts_at").first().starts_at == dt.datetime.combine(tuesday, dt.time(0), dt.UTC)


def test_generation_follows_the_settings_time_zone(settings, tuesdays):
    settings.TIME_ZONE = "UTC"
    monday = next_monday()

    schedules_generate(start=monday, weeks=1)

    schedule = Schedule.objects.get()
    assert schedule.starts_at == dt.datetime.combine(monday + dt.timedelta(days=1), dt.time(8), dt.UTC)


def test_generation_skips_hospital_and_department_holidays(
    head, doctor, staff, internal_medicine, acupuncture, tuesdays
):
    weekly(staff["administrator"], staff["other_doctor"], acupuncture)
    monday = next_monday()
    holiday_save(actor=head, data={"date": monday + dt.timedelta(days=1), "name": "院庆"})
    holiday_save(
        actor=head, data={"date": monday + dt.timedelta(days=8), "name": "科室培训", "department": internal_medicine}
    )

    created = schedules_generate(start=monday, weeks=3)

    assert created == 3
    assert sorted(Schedule.objects.values_list("department__code", "date")) == [
        ("NK", monday + dt.timedelta(days=15)),
        ("ZJ", monday + dt.timedelta(days=8)),
        ("ZJ", monday + dt.timedelta(days=15)),
    ]


def test_running_generation_again_creates_nothing_and_changes_nothing(tuesdays):
    monday = next_monday()
    schedules_generate(start=monday, weeks=2)
    before = (list(Schedule.objects.order_by("date").values()), list(Slot.objects.order_by("pk").values()))

    again = schedules_generate(start=monday, weeks=2)
    overlapping = schedules_generate(start=monday + dt.timedelta(days=7), weeks=2)

    assert again == 0
    assert overlapping == 1
    assert list(Schedule.objects.order_by("date").values())[:2] == before[0]
    assert list(Slot.objects.order_by("pk").values())[:8] == before[1]
    assert Slot.objects.count() == 12


def test_generation_respects_validity_and_skips_inactive_templates_and_doctors(head, doctor, staff, internal_medicine):
    monday = next_monday()
    weekly(head, doctor, internal_medicine, valid_from=monday + dt.timedelta(days=7))
    weekly(head, doctor, internal_medicine, weekday=2, valid_from=monday, valid_until=monday + dt.timedelta(days=7))
    weekly(head, doctor, internal_medicine, weekday=3, is_active=False)
    gone = staff["other_doctor"]
    weekly(staff["administrator"], gone, gone.departments.get())
    gone.is_active = False
    gone.save(update_fields=["is_active"])

    schedules_generate(start=monday, weeks=3)

    assert sorted(Schedule.objects.values_list("date", flat=True)) == [
        monday + dt.timedelta(days=2),
        monday + dt.timedelta(days=8),
        monday + dt.timedelta(days=15),
    ]


def test_a_session_made_by_hand_is_not_duplicated(doctor, internal_medicine, tuesdays):
    monday = next_monday()
    session(doctor=doctor, department=internal_medicine, date=monday + dt.timedelta(days=1), slots=2)

    created = schedules_generate(start=monday, weeks=1)

    assert created == 0
    assert Slot.objects.count() == 2


# --- Holidays --------------------------------------------------------------------------------------------


def test_a_day_can_be_a_holiday_once_for_the_hospital_and_once_per_department(head, internal_medicine):
    day = next_monday()
    holiday_save(actor=head, data={"date": day, "name": "春节"})
    holiday_save(actor=head, data={"date": day, "name": "科室团建", "department": internal_medicine})

    with pytest.raises(ValidationError) as error:
        holiday_save(actor=head, data={"date": day.isoformat(), "name": "又一个"})

    assert error.value.message_dict == {"date": ["This day is already a holiday here."]}
    assert Holiday.objects.count() == 2


def test_a_holiday_needs_a_valid_date_and_a_name(head):
    with pytest.raises(ValidationError) as error:
        holiday_save(actor=head, data={"date": "2026-13-01", "name": "  "})

    assert error.value.message_dict == {
        "date": ["Enter a date as YYYY-MM-DD."],
        "name": ["This field is required."],
    }


def test_deleting_a_holiday_lets_the_next_run_generate_that_day(head, tuesdays):
    monday = next_monday()
    holiday = holiday_save(actor=head, data={"date": monday + dt.timedelta(days=1), "name": "院庆"})
    assert schedules_generate(start=monday, weeks=1) == 0

    holiday_delete(actor=head, holiday=holiday)

    assert schedules_generate(start=monday, weeks=1) == 1


# --- Stopping a clinic --------------------------------------------------------------------------------------


@pytest.fixture
def full_clinic(doctor, internal_medicine):
    return session(doctor=doctor, department=internal_medicine, slots=2, online=1)


def test_stopping_a_clinic_cancels_every_booking_gives_places_back_and_tells_each_patient(head, full_clinic, patient):
    first, second = full_clinic.slots.all()
    booked = appointment_book(patient=patient, slot=first, door=ONLINE)
    other = PatientFactory()
    held = appointment_hold(patient=other, slot=second, door=ONLINE)
    waiting = waitlist_join(schedule=full_clinic, patient=PatientFactory(), door=ONLINE)
    assert reminders_queue(now=reminder_moment_for(full_clinic.date)) == 1

    stopped = schedule_stop(schedule=full_clinic, actor=head, reason="医生外出会诊")

    assert (stopped.status, stopped.stopped_reason) == ("stopped", "医生外出会诊")
    assert stopped.stopped_at is not None
    booked.refresh_from_db()
    held.refresh_from_db()
    assert [(a.status, a.cancelled_by, a.cancel_reason) for a in (booked, held)] == [
        ("cancelled", "hospital", "医生外出会诊"),
        ("cancelled", "hospital", "医生外出会诊"),
    ]
    assert list(Slot.objects.filter(schedule=full_clinic).values_list("taken_online", flat=True)) == [0, 0]
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
    messages = OutboundMessage.objects.filter(idempotency_key__endswith=":stopped")
    assert sorted(messages.values_list("patient_id", flat=True)) == sorted([patient.pk, other.pk])
    link = booking_link(full_clinic.doctor)
    assert link.startswith(settings.PUBLIC_BASE_URL + "/portal/")
    assert {message.context["link"] for message in messages} == {link}
    assert all(link in message.body for message in messages if message.status != "suppressed")
    reminder = OutboundMessage.objects.get(idempotency_key=f"appointment:{booked.uuid}:reminder")
    assert reminder.status == "withdrawn"
    assert not OutboundMessage.objects.filter(idempotency_key=f"appointment:{booked.uuid}:cancelled").exists()


def test_stopping_a_stopped_clinic_changes_nothing(head, full_clinic, patient):
    appointment_book(patient=patient, slot=full_clinic.slots.first(), door=ONLINE)
    schedule_stop(schedule=full_clinic, actor=head, reason="医生外出会诊")
    before = (list(Schedule.objects.values()), list(Appointment.objects.values()), OutboundMessage.objects.count())

    schedule_stop(schedule=full_clinic, actor=head, reason="另一个原因")

    assert (
        list(Schedule.objects.values()),
        list(Appointment.objects.values()),
        OutboundMessage.objects.count(),
    ) == before


def test_stopping_needs_a_reason_and_changes_nothing_without_one(head, full_clinic, patient):
    appointment_book(patient=patient, slot=full_clinic.slots.first(), door=ONLINE)

    with pytest.raises(ValidationError) as error:
        schedule_stop(schedule=full_clinic, actor=head, reason="   ")

    assert error.value.message_dict == {"reason": ["Say why the clinic is stopped."]}
    full_clinic.refresh_from_db()
    assert full_clinic.status == "open"
    assert Appointment.objects.get().status == "booked"


def test_a_session_that_is_over_cannot_be_stopped(head, full_clinic):
    Schedule.objects.filter(pk=full_clinic.pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=2), ends_at=timezone.now() - dt.timedelta(hours=1)
    )

    with pytest.raises(ValidationError) as error:
        schedule_stop(schedule=full_clinic, actor=head, reason="医生外出会诊")

    assert error.value.message_dict == {"schedule": ["This clinic session is over."]}
    assert Schedule.objects.get(pk=full_clinic.pk).status == "open"


def test_a_hold_confirmed_after_its_clinic_stopped_is_refused_and_gives_its_place_back(full_clinic, patient):
    slot = full_clinic.slots.first()
    held = appointment_hold(patient=patient, slot=slot, door=ONLINE)
    Schedule.objects.filter(pk=full_clinic.pk).update(status="stopped", stopped_reason="医生外出会诊")

    with pytest.raises(BookingRefused) as refusal:
        appointment_confirm(appointment=held, door=ONLINE)

    assert refusal.value.rule == "stopped"
    held.refresh_from_db()
    assert (held.status, held.cancelled_by, held.visit_number) == ("cancelled", "hospital", None)
    slot.refresh_from_db()
    assert slot.taken_online == 0


# --- Extra places (加号) ------------------------------------------------------------------------------------


def test_extra_places_go_to_the_last_slot_and_the_session_totals(head, full_clinic):
    first, last = full_clinic.slots.all()

    slot = schedule_add_capacity(schedule=full_clinic, actor=head, channel="window", count=2)

    assert slot.pk == last.pk
    assert (slot.capacity_online, slot.capacity_window) == (1, 2)
    full_clinic.refresh_from_db()
    assert (full_clinic.capacity_online, full_clinic.capacity_window, full_clinic.extra_capacity) == (2, 2, 2)
    first.refresh_from_db()
    assert first.capacity_window == 0
    entry = AuditEntry.objects.get(
        content_type__model="schedule", object_pk=str(full_clinic.pk), action=AuditEntry.Action.UPDATE
    )
    assert (entry.actor, entry.additional_data) == (
        head,
        {"extra_places": 2, "channel": "window", "slot": str(last.uuid)},
    )


def test_extra_places_in_a_chosen_slot_go_first_to_the_waitlist(
    head, full_clinic, patient, django_capture_on_commit_callbacks
):
    first, second = full_clinic.slots.all()
    appointment_book(patient=PatientFactory(), slot=first, door=ONLINE)
    appointment_book(patient=PatientFactory(), slot=second, door=ONLINE)
    entry = waitlist_join(schedule=full_clinic, patient=patient, door=ONLINE)

    with django_capture_on_commit_callbacks(execute=True):
        schedule_add_capacity(schedule=full_clinic, actor=head, channel="online", count=1, slot=first)

    entry.refresh_from_db()
    assert entry.status == "offered"
    assert (entry.appointment.slot_id, entry.appointment.status) == (first.pk, "held")


@pytest.mark.parametrize(
    ("channel", "count", "errors"),
    [
        ("fax", 1, {"channel": ["Choose online, phone or window."]}),
        ("online", 0, {"count": ["Enter a number from 1 to 50."]}),
        ("online", "lots", {"count": ["Enter a whole number."]}),
    ],
)
def test_bad_extra_places_are_refused_and_nothing_changes(head, full_clinic, channel, count, errors):
    with pytest.raises(ValidationError) as error:
        schedule_add_capacity(schedule=full_clinic, actor=head, channel=channel, count=count)

    assert error.value.message_dict == errors
    assert list(Slot.objects.values_list("capacity_online", "capacity_phone", "capacity_window")) == [(1, 0, 0)] * 2


def test_no_extra_places_in_a_stopped_session_or_a_slot_of_another(head, full_clinic, doctor, internal_medicine):
    other = session(doctor=doctor, department=internal_medicine, date=full_clinic.date + dt.timedelta(days=1))
    with pytest.raises(ValidationError) as error:
        schedule_add_capacity(schedule=full_clinic, actor=head, channel="online", count=1, slot=other.slots.first())
    assert error.value.message_dict == {"slot": ["This time slot belongs to another session."]}

    schedule_stop(schedule=full_clinic, actor=head, reason="停诊")
    with pytest.raises(ValidationError) as error:
        schedule_add_capacity(schedule=full_clinic, actor=head, channel="online", count=1)

    assert error.value.message_dict == {"schedule": ["This clinic session has been stopped."]}
    full_clinic.refresh_from_db()
    assert (full_clinic.capacity_online, full_clinic.extra_capacity) == (2, 0)
    assert list(full_clinic.slots.values_list("capacity_online", flat=True)) == [1, 1]


# --- Booking rules ------------------------------------------------------------------------------------------


def test_the_booking_rules_are_changed_and_audited(staff):
    admin = staff["administrator"]

    row = booking_policy_update(actor=admin, data={"hold_minutes": "10", "cancel_time": "20:00", "no_show_limit": 0})

    row.refresh_from_db()
    assert (row.hold_minutes, row.cancel_time, row.no_show_limit, row.updated_by) == (10, dt.time(20), 0, admin)
    entry = AuditEntry.objects.get(content_type__model="bookingpolicy", action=AuditEntry.Action.UPDATE)
    assert entry.actor == admin


def test_bad_booking_rules_are_all_reported_and_nothing_changes(staff):
    booking_policy()
    before = list(BookingPolicy.objects.values())

    with pytest.raises(ValidationError) as error:
        booking_policy_update(
            actor=staff["administrator"],
            data={"hold_minutes": "0", "release_time": "25:00", "max_open_bookings": "many", "colour": "red"},
        )

    assert error.value.message_dict == {
        "colour": ["This field cannot be set here."],
        "hold_minutes": ["Enter a number from 1 to 60."],
        "max_open_bookings": ["Enter a whole number."],
        "release_time": ["Enter a time as HH:MM."],
    }
    assert list(BookingPolicy.objects.values()) == before


def test_a_new_release_rule_moves_sessions_not_yet_released_only(staff, doctor, internal_medicine):
    waiting = session(
        doctor=doctor, department=internal_medicine, date=timezone.localdate() + dt.timedelta(days=20), released=False
    )
    released = session(doctor=doctor, department=internal_medicine, date=timezone.localdate() + dt.timedelta(days=2))
    released_at = released.releases_at

    booking_policy_update(actor=staff["administrator"], data={"release_days_ahead": 14, "release_time": "07:30"})

    waiting.refresh_from_db()
    released.refresh_from_db()
    assert waiting.releases_at == dt.datetime.combine(waiting.date - dt.timedelta(days=14), dt.time(7, 30), SHANGHAI)
    assert released.releases_at == released_at
    moved = AuditEntry.objects.get(content_type__model="bookingpolicy", additional_data__isnull=False)
    assert moved.additional_data == {"sessions_release_moved": 1}
