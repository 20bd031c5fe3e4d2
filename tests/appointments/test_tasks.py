"""Periodic tasks of the appointments app and the generate_schedules command."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from appointments import tasks
from appointments.models import Appointment, Schedule, WaitlistEntry
from appointments.services import (
    BookingDoor,
    appointment_book,
    appointment_cancel,
    appointment_hold,
    holds_expire,
    schedule_template_save,
    waitlist_join,
    waitlist_offer,
)
from hcrm.celery import app
from tests.appointments.factories import session
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

ONLINE = BookingDoor(channel="online")


@pytest.fixture
def every_weekday(staff, internal_medicine):
    for weekday in range(7):
        schedule_template_save(
            actor=None,
            data={
                "doctor": staff["doctor"],
                "department": internal_medicine,
                "weekday": weekday,
                "session": "morning",
                "start_time": "08:00",
                "end_time": "08:30",
                "slot_minutes": 15,
                "capacity_online": 1,
                "valid_from": timezone.localdate(),
            },
        )


def test_every_beat_entry_names_a_registered_task():
    import appointments.tasks  # noqa: F401

    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert {
        "appointments.tasks.schedules_generate_ahead",
        "appointments.tasks.holds_expire",
        "appointments.tasks.no_shows_mark",
        "appointments.tasks.waitlist_offers_lapsed",
    } <= names
    assert {name for name in names if name.startswith("appointments.")} <= set(app.tasks)
    assert settings.CELERY_BEAT_SCHEDULE["appointments-holds-expire"]["schedule"] == dt.timedelta(minutes=1)
    assert settings.CELERY_BEAT_SCHEDULE["appointments-no-shows-mark"]["schedule"] == dt.timedelta(minutes=15)


def test_sessions_are_generated_the_configured_weeks_ahead_once(settings, every_weekday):
    settings.SCHEDULE_WEEKS_AHEAD = 2

    created = tasks.schedules_generate_ahead.apply().get()
    again = tasks.schedules_generate_ahead()

    today = timezone.localdate()
    assert (created, again) == (14, 0)
    assert sorted(Schedule.objects.values_list("date", flat=True)) == [today + dt.timedelta(days=n) for n in range(14)]


def test_the_command_generates_the_weeks_asked_for(every_weekday):
    out = io.StringIO()

    call_command("generate_schedules", "--weeks", "1", "--start", "2027-01-04", stdout=out)

    assert out.getvalue() == "7 sessions created from 2027-01-04 for 1 weeks.\n"
    assert Schedule.objects.count() == 7
    with pytest.raises(CommandError, match="--weeks must be at least 1."):
        call_command("generate_schedules", weeks=0)


def test_holds_nobody_confirmed_expire_once(staff, internal_medicine, patient):
    clinic = session(doctor=staff["doctor"], department=internal_medicine, slots=1)
    held = appointment_hold(
        patient=patient, slot=clinic.slots.get(), door=ONLINE, now=timezone.now() - dt.timedelta(minutes=10)
    )

    assert tasks.holds_expire_due() == 1
    assert tasks.holds_expire_due() == 0
    held.refresh_from_db()
    assert held.status == "expired"
    assert clinic.slots.get().taken_online == 0


def test_bookings_of_a_past_session_become_no_shows_once(staff, internal_medicine, patient):
    clinic = session(doctor=staff["doctor"], department=internal_medicine, slots=1)
    booked = appointment_book(patient=patient, slot=clinic.slots.get(), door=ONLINE)
    Schedule.objects.filter(pk=clinic.pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=3), ends_at=timezone.now() - dt.timedelta(hours=2)
    )

    assert tasks.no_shows_mark_due() == 1
    assert tasks.no_shows_mark_due() == 0
    booked.refresh_from_db()
    assert booked.status == "no_show"


def test_a_lapsed_waitlist_offer_passes_to_the_next_patient(staff, internal_medicine):
    clinic = session(doctor=staff["doctor"], department=internal_medicine, slots=1)
    booked = appointment_book(patient=PatientFactory(), slot=clinic.slots.get(), door=ONLINE)
    first = waitlist_join(schedule=clinic, patient=PatientFactory(), door=ONLINE)
    second = waitlist_join(schedule=clinic, patient=PatientFactory(), door=ONLINE)
    appointment_cancel(appointment=booked, by="patient")  # its offer to the waitlist would run after commit
    waitlist_offer(schedule_id=clinic.pk, now=timezone.now() - dt.timedelta(hours=1))
    holds_expire()  # the first patient's offer lapsed; the worker stopped before offering it again

    offers = tasks.waitlist_offers_lapsed()

    first.refresh_from_db()
    second.refresh_from_db()
    assert offers == 1
    assert (first.status, second.status) == ("expired", "offered")
    assert Appointment.objects.get(pk=second.appointment_id).status == "held"
    assert tasks.waitlist_offers_lapsed() == 0
    assert WaitlistEntry.objects.filter(status="offered").count() == 1
