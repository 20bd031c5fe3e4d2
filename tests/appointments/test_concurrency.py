"""No double booking under real concurrency: threads with their own PostgreSQL connections racing for places."""

from __future__ import annotations

import datetime as dt
import queue
import random
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.db.models import Count, Q
from django.utils import timezone

from appointments.models import ACTIVE_STATUSES, Appointment, BookingChannel, Slot
from appointments.services import (
    BookingDoor,
    BookingRefused,
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_hold,
    holds_expire,
)
from patients.models import Patient
from tests.appointments.factories import session

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Connections each test opens at once: the PostgreSQL server is shared, so a pool of threads works through
# the attempts rather than one thread (and one connection) per attempt.
WORKERS = 16
ONLINE = BookingDoor(channel=BookingChannel.ONLINE)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("racing transactions need PostgreSQL's concurrent connections")


@pytest.fixture
def doctor(staff):
    return staff["doctor"]


def patients(count: int) -> list[Patient]:
    Patient.objects.bulk_create(
        Patient(mrn=f"C{index:05d}", name=f"并发{index}", sex="female") for index in range(count)
    )
    return list(Patient.objects.filter(mrn__startswith="C").order_by("mrn"))


def run_in_threads(tasks: list, work: Callable, workers: int = WORKERS) -> list:
    """Hand `tasks` to `workers` threads that start together; each task's result or exception, in task order."""
    pending: queue.Queue = queue.Queue()
    for index, task in enumerate(tasks):
        pending.put((index, task))
    results: list = [None] * len(tasks)
    start = threading.Barrier(workers, timeout=30)

    def worker() -> None:
        try:
            start.wait()
            while True:
                try:
                    index, task = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = work(task)
                except Exception as error:  # reported to the test, not swallowed
                    results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def outcome(result) -> str:
    if isinstance(result, BookingRefused):
        return f"refused:{result.rule}"
    if isinstance(result, Exception):
        return f"error:{type(result).__name__}:{result}"
    return "booked"


def test_two_hundred_attempts_on_one_place_make_exactly_one_booking(doctor, internal_medicine):
    schedule = session(doctor=doctor, department=internal_medicine, slots=1, online=1)
    slot = schedule.slots.get()
    people = patients(200)

    results = run_in_threads(people, lambda patient: appointment_book(patient=patient, slot=slot, door=ONLINE))

    assert Counter(outcome(result) for result in results) == {"booked": 1, "refused:full": 199}
    slot.refresh_from_db()
    assert slot.taken_online == 1
    assert list(Appointment.objects.values_list("status", "visit_number")) == [("booked", 1)]


def test_thirty_places_among_five_hundred_patients_give_visit_numbers_one_to_thirty(doctor, internal_medicine):
    schedule = session(doctor=doctor, department=internal_medicine, slots=2, online=15)
    slots = list(schedule.slots.order_by("starts_at"))
    people = patients(500)

    def book_any(patient: Patient):
        """A patient tries the slots in their own order until one takes them or all are full."""
        order = slots if patient.pk % 2 else slots[::-1]
        for slot in order:
            try:
                return appointment_book(patient=patient, slot=slot, door=ONLINE)
            except BookingRefused as refusal:
                if refusal.rule != "full":
                    raise
        raise BookingRefused("full", "every slot is full")

    results = run_in_threads(people, book_any)

    assert Counter(outcome(result) for result in results) == {"booked": 30, "refused:full": 470}
    numbers = sorted(Appointment.objects.filter(status="booked").values_list("visit_number", flat=True))
    assert numbers == list(range(1, 31))
    assert list(
        Slot.objects.filter(schedule=schedule).order_by("starts_at").values_list("taken_online", flat=True)
    ) == [
        15,
        15,
    ]
    assert Appointment.objects.values("patient").distinct().count() == 30


def test_cancelling_booking_holding_and_expiring_at_once_keep_every_count_true(doctor, internal_medicine):
    schedule = session(doctor=doctor, department=internal_medicine, slots=3, online=2, phone=1, window=1)
    slots = list(schedule.slots.order_by("starts_at"))
    people = patients(66)
    doors = [BookingDoor(channel=channel) for channel in BookingChannel.values]
    lapsed_at = timezone.now() - dt.timedelta(minutes=5)
    # Holds already lapsed when the race starts: expiry and cancelling both reach for them.
    lapsed = [
        appointment_hold(patient=patient, slot=slots[index % 3], door=doors[0], now=lapsed_at, minutes=1)
        for index, patient in enumerate(people[60:])
    ]
    people = people[:60]
    rng = random.Random(7)
    steps = [rng.choice(("book", "book", "hold", "hold_confirm", "cancel", "expire")) for _index in range(240)]
    picks = [(rng.choice(people), rng.choice(slots), rng.choice(doors)) for _index in steps]

    def step(index: int):
        action = steps[index]
        patient, slot, door = picks[index]
        if action == "book":
            return appointment_book(patient=patient, slot=slot, door=door)
        if action == "hold":
            # A hold that lapses at once: the next expiry run frees it, racing with everything else.
            return appointment_hold(patient=patient, slot=slot, door=door, now=lapsed_at, minutes=1)
        if action == "hold_confirm":
            return appointment_confirm(appointment=appointment_hold(patient=patient, slot=slot, door=door), door=door)
        if action == "cancel":
            victim = (
                Appointment.objects.filter(status__in=["held", "booked"], slot__schedule=schedule).order_by("?").first()
            )
            return victim and appointment_cancel(appointment=victim, by="staff")
        return holds_expire()

    results = run_in_threads(list(range(len(steps))), step)

    unexpected = [outcome(result) for result in results if isinstance(result, Exception)]
    assert [text for text in unexpected if not text.startswith("refused:")] == []
    active = Q(appointments__status__in=[status.value for status in ACTIVE_STATUSES])
    counts = Slot.objects.filter(schedule=schedule).annotate(
        **{
            f"active_{pool}": Count("appointments", filter=active & Q(appointments__pool=pool))
            for pool in BookingChannel.values
        }
    )
    for slot in counts:
        for pool in BookingChannel.values:
            assert getattr(slot, f"taken_{pool}") == getattr(slot, f"active_{pool}"), (slot.pk, pool)
            assert getattr(slot, f"taken_{pool}") <= getattr(slot, f"capacity_{pool}")
    booked = list(Appointment.objects.exclude(visit_number=None).values_list("visit_number", flat=True))
    assert len(booked) == len(set(booked))
    ended = Counter(Appointment.objects.filter(pk__in=[hold.pk for hold in lapsed]).values_list("status", flat=True))
    assert (set(ended) <= {"expired", "cancelled"}, ended.total()) == (True, len(lapsed))
