"""The booking service: holds, visit numbers, rules, cancellation, rescheduling, the waitlist, no-shows."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone

from appointments.models import (
    Appointment,
    BookingRestriction,
    FamilyMember,
    PortalAccount,
    Schedule,
    Slot,
    WaitlistEntry,
)
from appointments.selectors import booking_policy, member_slot_to_book, slot_to_book
from appointments.services import (
    BookingDoor,
    BookingRefused,
    appointment_book,
    appointment_cancel,
    appointment_confirm,
    appointment_hold,
    appointment_reschedule,
    cancel_deadline,
    holds_expire,
    no_shows_mark,
    waitlist_accept,
    waitlist_join,
)
from appointments.services.notices import reminder_moment_for, reminders_queue
from patients.models import OutboundMessage, Patient
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

ONLINE = BookingDoor(channel="online")
BOOKING_STATEMENTS = 9


@pytest.fixture
def doctor(staff):
    return staff["doctor"]


@pytest.fixture
def clinic(doctor, internal_medicine):
    return session(doctor=doctor, department=internal_medicine, slots=2, online=1)


def test_hold_then_confirm_books_with_the_next_visit_number_and_queues_the_confirmation(clinic, patient):
    slot = clinic.slots.first()

    held = appointment_hold(patient=patient, slot=slot, door=ONLINE)
    booked = appointment_confirm(appointment=held, door=ONLINE)

    assert (booked.status, booked.visit_number, booked.pool) == ("booked", 1, "online")
    slot.refresh_from_db()
    assert slot.taken_online == 1
    keys = sorted(OutboundMessage.objects.values_list("idempotency_key", flat=True))
    assert keys == [f"appointment:{booked.uuid}:confirmed"]


def test_reminders_go_out_the_day_before_at_the_reminder_hour_once_and_not_for_late_bookings(clinic, patient):
    early = appointment_book(patient=patient, slot=clinic.slots.first(), door=ONLINE)
    moment = reminder_moment_for(clinic.date)
    late = appointment_book(patient=PatientFactory(), slot=clinic.slots.last(), door=ONLINE, now=moment)

    assert reminders_queue(now=moment - dt.timedelta(minutes=1)) == 0
    assert reminders_queue(now=moment) == 1
    assert reminders_queue(now=moment + dt.timedelta(minutes=5)) == 0

    reminder = OutboundMessage.objects.get(idempotency_key=f"appointment:{early.uuid}:reminder")
    assert (reminder.patient, reminder.purpose) == (patient, "appointment")
    assert not OutboundMessage.objects.filter(idempotency_key=f"appointment:{late.uuid}:reminder").exists()


def test_a_full_slot_is_refused_and_nothing_changes(clinic, patient):
    slot = clinic.slots.first()
    appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)

    with pytest.raises(BookingRefused) as refusal:
        appointment_book(patient=patient, slot=slot, door=ONLINE)

    assert refusal.value.rule == "full"
    assert Appointment.objects.filter(patient=patient).count() == 0
    slot.refresh_from_db()
    assert slot.taken_online == 1


def test_one_booking_per_doctor_per_day(clinic, patient):
    first, second = clinic.slots.all()
    appointment_book(patient=patient, slot=first, door=ONLINE)

    with pytest.raises(BookingRefused) as refusal:
        appointment_book(patient=patient, slot=second, door=ONLINE)

    assert refusal.value.rule == "one_per_doctor_day"
    second.refresh_from_db()
    assert second.taken_online == 0


def test_unreleased_and_deceased_are_refused(doctor, internal_medicine, patient):
    later = session(doctor=doctor, department=internal_medicine, released=False, window=1)
    with pytest.raises(BookingRefused) as refusal:
        appointment_book(patient=patient, slot=later.slots.first(), door=ONLINE)
    assert refusal.value.rule == "not_released"
    # The window is not bound by the online release.
    assert appointment_book(patient=patient, slot=later.slots.first(), door=BookingDoor(channel="window")) is not None

    patient.is_deceased = True
    patient.save()
    other = session(doctor=doctor, department=internal_medicine, date=later.date + dt.timedelta(days=1))
    with pytest.raises(BookingRefused) as refusal:
        appointment_book(patient=patient, slot=other.slots.first(), door=ONLINE)
    assert refusal.value.rule == "deceased"


def test_cancel_gives_the_place_back_and_withdraws_the_reminder(clinic, patient):
    booked = appointment_book(patient=patient, slot=clinic.slots.first(), door=ONLINE)
    reminders_queue(now=reminder_moment_for(clinic.date))

    appointment_cancel(appointment=booked, by="patient")

    booked.refresh_from_db()
    assert booked.status == "cancelled"
    assert Slot.objects.get(pk=booked.slot_id).taken_online == 0
    reminder = OutboundMessage.objects.get(idempotency_key=f"appointment:{booked.uuid}:reminder")
    assert reminder.status == "withdrawn"
    assert OutboundMessage.objects.filter(idempotency_key=f"appointment:{booked.uuid}:cancelled").exists()


def test_reschedule_moves_the_booking_or_changes_nothing(clinic, patient):
    first, second = clinic.slots.all()
    booked = appointment_book(patient=patient, slot=first, door=ONLINE)
    appointment_book(patient=PatientFactory(), slot=second, door=ONLINE)

    with pytest.raises(BookingRefused):
        appointment_reschedule(appointment=booked, slot=second, door=ONLINE)
    booked.refresh_from_db()
    assert booked.status == "booked"

    third = session(doctor=clinic.doctor, department=clinic.department, date=clinic.date + dt.timedelta(days=1))
    moved = appointment_reschedule(appointment=booked, slot=third.slots.first(), door=ONLINE)
    booked.refresh_from_db()
    assert (booked.status, booked.cancelled_by, booked.rescheduled_to) == ("cancelled", "reschedule", moved)
    assert (moved.status, moved.visit_number) == ("booked", 1)


def test_an_expired_hold_frees_its_place(clinic, patient):
    slot = clinic.slots.first()
    held = appointment_hold(patient=patient, slot=slot, door=ONLINE)

    assert holds_expire(now=timezone.now() + dt.timedelta(minutes=10)) == 1

    held.refresh_from_db()
    assert held.status == "expired"
    slot.refresh_from_db()
    assert slot.taken_online == 0


def test_a_cancellation_offers_the_place_to_the_first_waiting_patient(
    clinic, patient, django_capture_on_commit_callbacks
):
    slot = clinic.slots.first()
    clinic.slots.exclude(pk=slot.pk).delete()
    booked = appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    entry = waitlist_join(schedule=clinic, patient=patient, door=ONLINE)
    later = waitlist_join(schedule=clinic, patient=PatientFactory(), door=ONLINE)

    with django_capture_on_commit_callbacks(execute=True):
        appointment_cancel(appointment=booked, by="patient")

    entry.refresh_from_db()
    later.refresh_from_db()
    assert (entry.status, later.status) == ("offered", "waiting")
    assert entry.appointment.status == "held"
    assert OutboundMessage.objects.filter(idempotency_key__startswith=f"waitlist:{entry.uuid}:offer").exists()
    appointment = waitlist_accept(entry=entry, door=ONLINE)
    assert (appointment.status, appointment.visit_number) == ("booked", 2)
    assert WaitlistEntry.objects.get(pk=entry.pk).status == "booked"


def test_no_shows_are_marked_after_the_session_and_three_block_online_booking(doctor, internal_medicine, patient):
    today = timezone.localdate()
    for days in (3, 2, 1):
        clinic = session(doctor=doctor, department=internal_medicine, date=today + dt.timedelta(days=days))
        appointment_book(patient=patient, slot=clinic.slots.first(), door=ONLINE)

    assert no_shows_mark(now=timezone.now() + dt.timedelta(days=5)) == 3

    assert Appointment.objects.filter(patient=patient, status="no_show").count() == 3
    restriction = BookingRestriction.objects.get(patient=patient)
    assert restriction.lifted_at is None


def test_accepting_a_lapsed_waitlist_offer_is_refused_and_the_place_passes_on(
    clinic, patient, django_capture_on_commit_callbacks
):
    slot = clinic.slots.first()
    clinic.slots.exclude(pk=slot.pk).delete()
    booked = appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    entry = waitlist_join(schedule=clinic, patient=patient, door=ONLINE)
    following = waitlist_join(schedule=clinic, patient=PatientFactory(), door=ONLINE)
    with django_capture_on_commit_callbacks(execute=True):
        appointment_cancel(appointment=booked, by="patient")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(BookingRefused) as refusal:
        waitlist_accept(entry=entry, door=ONLINE, now=timezone.now() + dt.timedelta(hours=1))

    assert refusal.value.rule == "hold_expired"
    entry.refresh_from_db()
    following.refresh_from_db()
    assert (entry.status, entry.appointment.status) == ("expired", "expired")
    assert following.status == "offered"


def test_bookings_are_right_when_the_server_runs_in_utc(doctor, internal_medicine, patient):
    # 07:00 in Shanghai is 23:00 UTC the day before: dates and times must be the hospital's, not UTC's.
    day = timezone.localdate() + dt.timedelta(days=3)
    clinic = session(doctor=doctor, department=internal_medicine, date=day, start=dt.time(7, 0), slots=1)
    slot = clinic.slots.get()

    with timezone.override("UTC"):
        booked = appointment_book(patient=patient, slot=slot, door=ONLINE)
        deadline = cancel_deadline(booked, booking_policy())
        message = OutboundMessage.objects.get(idempotency_key=f"appointment:{booked.uuid}:confirmed")

    assert booked.date == day
    assert message.context["appointment_time"] == f"{day:%Y-%m-%d} 07:00"
    shanghai = timezone.get_default_timezone()
    assert timezone.localtime(deadline, shanghai) == timezone.make_aware(
        dt.datetime.combine(day - dt.timedelta(days=1), dt.time(18, 0)), shanghai
    )
    assert timezone.localtime(slot.starts_at, dt.UTC).hour == 23


# --- The cost of a try at release time (放号) -------------------------------------------------------------


def test_the_slot_to_book_comes_with_its_session_and_the_online_places_left_that_day(doctor, internal_medicine):
    clinic = session(doctor=doctor, department=internal_medicine, slots=3, online=2)
    other_doctor = UserFactory(roles=["doctor"], departments=[internal_medicine])
    same_day = {"department": internal_medicine, "date": clinic.date}
    neighbour = session(doctor=other_doctor, session_name="afternoon", slots=2, online=1, **same_day)
    stopped = session(doctor=UserFactory(roles=["doctor"]), slots=2, online=1, **same_day)
    Schedule.objects.filter(pk=stopped.pk).update(status="stopped")
    session(doctor=UserFactory(roles=["doctor"]), slots=2, online=1, released=False, **same_day)
    slot = clinic.slots.first()
    appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    appointment_book(patient=PatientFactory(), slot=neighbour.slots.first(), door=ONLINE)

    found = slot_to_book(slot.uuid)

    assert (found.pk, found.taken_online, found.free_in_session, found.free_that_day) == (slot.pk, 1, 5, 6)
    assert (found.schedule, found.schedule.department, found.schedule.doctor) == (clinic, internal_medicine, doctor)
    assert slot_to_book(uuid.uuid4()) is None


def test_the_patient_and_the_slot_to_book_are_read_together_for_a_portal_account(
    doctor, internal_medicine, django_assert_num_queries
):
    clinic = session(doctor=doctor, department=internal_medicine, slots=3, online=2)
    slot = clinic.slots.first()
    appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    account = PortalAccount.objects.create(mobile="+8613800000001")
    member = PatientFactory()
    FamilyMember.objects.create(account=account, patient=member, relationship="self")
    stranger = PatientFactory()

    with django_assert_num_queries(1):
        patient, found = member_slot_to_book(account.pk, member.uuid, slot.uuid)

    alone = slot_to_book(slot.uuid)
    assert patient == member
    assert [getattr(patient, field.attname) for field in Patient._meta.concrete_fields] == [
        getattr(member, field.attname) for field in Patient._meta.concrete_fields
    ]
    assert (found.pk, found.taken_online, found.free_in_session, found.free_that_day) == (slot.pk, 1, 5, 5)
    assert (found.free_in_session, found.free_that_day) == (alone.free_in_session, alone.free_that_day)
    assert (found.schedule, found.schedule.department, found.schedule.doctor) == (clinic, internal_medicine, doctor)
    # No such slot: the patient all the same, and no slot.
    assert member_slot_to_book(account.pk, member.uuid, uuid.uuid4()) == (member, None)
    # Not the account's patient: nothing, whatever the slot.
    assert member_slot_to_book(account.pk, stranger.uuid, slot.uuid) is None
    assert member_slot_to_book(account.pk, stranger.uuid, uuid.uuid4()) is None


def test_a_try_on_a_full_slot_reads_the_slot_once_and_nothing_else(clinic, patient, django_assert_num_queries):
    taken = clinic.slots.first()
    appointment_book(patient=PatientFactory(), slot=taken, door=ONLINE)
    booking_policy()

    with django_assert_num_queries(1), pytest.raises(BookingRefused) as refusal:
        appointment_book(patient=patient, slot=slot_to_book(taken.uuid), door=ONLINE)

    assert refusal.value.rule == "full"
    assert not Appointment.objects.filter(patient=patient).exists()


def test_a_second_booking_with_the_doctor_that_day_is_refused_by_the_patient_lock_alone(
    clinic, patient, django_assert_num_queries
):
    first, second = clinic.slots.all()
    appointment_book(patient=patient, slot=first, door=ONLINE)
    slot = slot_to_book(second.uuid)

    # the savepoint, the patient's row locked with the facts of the rules, back to the savepoint and release it
    with django_assert_num_queries(4), pytest.raises(BookingRefused) as refusal:
        appointment_book(patient=patient, slot=slot, door=ONLINE)

    assert refusal.value.rule == "one_per_doctor_day"
    second.refresh_from_db()
    assert second.taken_online == 0


def test_a_booking_takes_its_place_number_and_confirmation_in_a_fixed_number_of_statements(
    clinic, patient, warm_caches, django_assert_num_queries
):
    appointment_book(patient=PatientFactory(), slot=clinic.slots.first(), door=ONLINE)
    slot = slot_to_book(clinic.slots.last().uuid)

    # savepoint; patient lock and facts; place; visit number; appointment and its audit entry; the confirmation
    # (consent read, then inserted unless its key is taken: the template and sending settings are kept); release
    with django_assert_num_queries(BOOKING_STATEMENTS):
        booked = appointment_book(patient=patient, slot=slot, door=ONLINE)

    assert (booked.visit_number, booked.slot, booked.doctor) == (2, slot, clinic.doctor)
    assert OutboundMessage.objects.filter(idempotency_key=f"appointment:{booked.uuid}:confirmed").exists()
