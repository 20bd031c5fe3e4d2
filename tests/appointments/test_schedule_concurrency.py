"""Races schedules must win, on PostgreSQL with real connections: generation twice at once, a clinic stopped
while patients book."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from appointments.models import ACTIVE_STATUSES, Appointment, Schedule, Slot
from appointments.services import (
    BookingDoor,
    BookingRefused,
    appointment_book,
    schedule_stop,
    schedule_template_save,
    schedules_generate,
)
from tests.appointments.factories import session
from tests.factories import PatientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent connections need PostgreSQL")


def _in_threads(count: int, work) -> list:
    """Run `work(i)` in `count` threads released together; each thread has its own database connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:  # reported to the test, not swallowed
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_generation_run_by_several_workers_at_once_creates_each_session_once(staff, internal_medicine):
    for weekday in range(7):
        schedule_template_save(
            actor=None,
            data={
                "doctor": staff["doctor"], "department": internal_medicine, "weekday": weekday, "session": "morning",
                "start_time": "08:00", "end_time": "09:00", "slot_minutes": 15, "capacity_online": 1,
                "valid_from": timezone.localdate(),
            },
        )  # fmt: skip
    start = timezone.localdate() + dt.timedelta(days=1)

    created = _in_threads(4, lambda _i: schedules_generate(start=start, weeks=2))

    assert sum(created) == 14
    assert Schedule.objects.count() == 14
    assert Slot.objects.count() == 14 * 4


def test_no_booking_survives_a_clinic_stopped_while_patients_book(staff, internal_medicine):
    clinic = session(doctor=staff["doctor"], department=internal_medicine, slots=6, online=1)
    slots = list(clinic.slots.order_by("starts_at"))
    patients = [PatientFactory() for _ in slots]
    appointment_book(patient=patients[0], slot=slots[0], door=BookingDoor(channel="online"))

    def work(index: int):
        if index == 0:
            return schedule_stop(schedule=clinic, actor=staff["department_head"], reason="医生外出会诊").status
        try:
            return appointment_book(
                patient=patients[index], slot=slots[index], door=BookingDoor(channel="online")
            ).status
        except BookingRefused as refusal:
            return refusal.rule

    results = _in_threads(len(slots), work)

    assert results[0] == "stopped"
    assert set(results[1:]) <= {"booked", "stopped"}
    assert not Appointment.objects.filter(schedule=clinic, status__in=ACTIVE_STATUSES).exists()
    assert list(Slot.objects.filter(schedule=clinic).values_list("taken_online", flat=True)) == [0] * len(slots)
    assert Schedule.objects.get(pk=clinic.pk).status == "stopped"
