"""SIU^S12–S15 from the HIS take, move and give back places in our clinic slots through the booking service."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest
from django.utils import timezone

from appointments.models import Appointment, HisAppointment, Slot
from appointments.services import BookingDoor, appointment_book
from integrations.hl7v2.pipeline import hl7_receive
from integrations.models import InboundMessage
from tests.appointments.conftest import booking_templates  # noqa: F401  (autouse: the booking message templates)
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory
from tests.integrations.hl7v2.messages import message, pid

pytestmark = pytest.mark.django_db

DAY = timezone.localdate() + dt.timedelta(days=3)
NINE = f"{DAY:%Y%m%d}090000"
NINE_FIFTEEN = f"{DAY:%Y%m%d}091500"
TEN = f"{DAY:%Y%m%d}100000"


def siu(control_id: str, event: str, start: str, *, doctor: str = "D0012^李^时珍", status: str = "Booked") -> bytes:
    return message(
        f"SCH||A100||||||||||||||||||||||||{status}",
        f"TQ1|1||||||{start}|",
        pid(),
        f"AIP|1||{doctor}",
        control_id=control_id,
        trigger=f"SIU^{event}",
    ).encode("utf-8")


def receive(raw: bytes) -> hl7.Message:
    return hl7.parse(hl7_receive(raw, transport="mllp").decode("utf-8"))


def warnings(ack: hl7.Message) -> list[tuple[str, str, str]]:
    """(location, severity, text) of each ERR segment."""
    return [(str(err(2)), str(err(4)), str(err(8))) for err in ack.segments("ERR")] if "ERR" in str(ack) else []


@pytest.fixture
def doctor(db):
    return UserFactory(full_name="李时珍", employee_number="D0012")


@pytest.fixture
def clinic(doctor, internal_medicine):
    """09:00–09:30 on DAY: two 15-minute slots with one window place and one online place each."""
    return session(
        doctor=doctor, department=internal_medicine, date=DAY, start=dt.time(9, 0), slots=2, online=1, window=1
    )


def taken(clinic) -> list[tuple[int, int]]:
    return list(clinic.slots.order_by("starts_at").values_list("taken_window", "taken_online"))


def test_an_s12_in_one_of_our_slots_books_a_window_place_linked_to_the_mirror(clinic):
    ack = receive(siu("S1", "S12", NINE))

    assert (str(ack.segment("MSA")(1)), warnings(ack)) == ("AA", [])
    booking = Appointment.objects.get()
    mirror = HisAppointment.objects.get()
    assert (booking.status, booking.channel, booking.pool, booking.visit_number) == ("booked", "window", "window", 1)
    assert (booking.his_appointment, booking.patient, booking.slot.starts_at) == (
        mirror,
        mirror.patient,
        timezone.make_aware(dt.datetime.combine(DAY, dt.time(9, 0))),
    )
    assert taken(clinic) == [(1, 0), (0, 0)]


def test_a_time_inside_a_slot_finds_it_and_the_doctor_is_found_by_name_when_the_number_is_unknown(clinic):
    receive(siu("S1", "S12", f"{DAY:%Y%m%d}092000", doctor="X999^李^时珍"))

    assert Appointment.objects.get().slot == clinic.slots.order_by("starts_at").last()


def test_an_unknown_doctor_keeps_the_mirror_unlinked_with_a_warning(clinic):
    ack = receive(siu("S1", "S12", NINE, doctor="X999^王^五"))

    assert str(ack.segment("MSA")(1)) == "AA"
    assert warnings(ack) == [
        (
            "AIP^1^3",
            "W",
            "No member of staff has the employee number or the name of the doctor X999 王五. "
            "The HIS appointment A100 is kept without a place in the clinic schedule.",
        )
    ]
    assert (HisAppointment.objects.count(), Appointment.objects.count()) == (1, 0)
    assert InboundMessage.objects.get().status == "applied"
    assert taken(clinic) == [(0, 0), (0, 0)]


def test_a_time_without_a_slot_keeps_the_mirror_unlinked_with_a_warning(clinic):
    ack = receive(siu("S1", "S12", TEN))

    moment = f"{DAY:%Y-%m-%d} 10:00"
    assert warnings(ack) == [
        (
            "SCH^1^2",
            "W",
            f"李时珍 has no clinic slot at {moment}. "
            "The HIS appointment A100 is kept without a place in the clinic schedule.",
        )
    ]
    assert (HisAppointment.objects.count(), Appointment.objects.count()) == (1, 0)


def test_a_full_slot_keeps_the_mirror_unlinked_and_takes_nothing(clinic):
    first = clinic.slots.order_by("starts_at").first()
    earlier = appointment_book(patient=PatientFactory(), slot=first, door=BookingDoor(channel="window"))

    ack = receive(siu("S1", "S12", NINE))

    (location, severity, text) = warnings(ack)[0]
    assert (str(ack.segment("MSA")(1)), location, severity) == ("AA", "SCH^1^2", "W")
    assert text == (
        f"The slot at {DAY:%Y-%m-%d} 09:00 could not be booked: "
        "This time slot is fully booked; choose another or join the waitlist. "
        "The HIS appointment A100 is kept without a place in the clinic schedule."
    )
    assert list(Appointment.objects.values_list("pk", flat=True)) == [earlier.pk]
    assert Appointment.objects.filter(his_appointment__isnull=False).count() == 0
    assert taken(clinic) == [(1, 0), (0, 0)]


def test_redelivered_or_repeated_s12_books_once(clinic):
    receive(siu("S1", "S12", NINE))
    receive(siu("S1", "S12", NINE))
    receive(siu("S2", "S12", NINE))

    assert Appointment.objects.count() == 1
    assert taken(clinic) == [(1, 0), (0, 0)]


def test_s13_reschedules_the_booking_to_the_new_slot(clinic):
    receive(siu("S1", "S12", NINE))
    first = Appointment.objects.get()

    ack = receive(siu("S2", "S13", NINE_FIFTEEN))

    first.refresh_from_db()
    moved = Appointment.objects.get(status="booked")
    assert warnings(ack) == []
    assert (first.status, first.cancelled_by, first.rescheduled_to, first.his_appointment) == (
        "cancelled",
        "reschedule",
        moved,
        None,
    )
    assert (moved.his_appointment, moved.visit_number) == (HisAppointment.objects.get(), 2)
    assert taken(clinic) == [(0, 0), (1, 0)]


def test_s14_with_the_same_time_changes_nothing_and_with_a_new_time_moves_the_place(clinic):
    receive(siu("S1", "S12", NINE))
    booking = Appointment.objects.get()

    receive(siu("S2", "S14", NINE))
    unchanged = list(Appointment.objects.values_list("pk", "status"))
    receive(siu("S3", "S14", NINE_FIFTEEN))

    assert unchanged == [(booking.pk, "booked")]
    assert Appointment.objects.get(status="booked").slot == clinic.slots.order_by("starts_at").last()
    assert taken(clinic) == [(0, 0), (1, 0)]


def test_s13_to_a_time_without_a_slot_gives_the_place_back_with_a_warning(clinic):
    receive(siu("S1", "S12", NINE))

    ack = receive(siu("S2", "S13", TEN))

    booking = Appointment.objects.get()
    assert (booking.status, booking.cancelled_by) == ("cancelled", "staff")
    assert [severity for _location, severity, _text in warnings(ack)] == ["W"]
    assert taken(clinic) == [(0, 0), (0, 0)]


def test_s15_cancels_the_booking_as_staff_and_frees_the_place(clinic):
    receive(siu("S1", "S12", NINE))

    ack = receive(siu("S2", "S15", NINE))

    booking = Appointment.objects.get()
    assert (str(ack.segment("MSA")(1)), warnings(ack)) == ("AA", [])
    assert (booking.status, booking.cancelled_by, booking.cancel_reason) == (
        "cancelled",
        "staff",
        "Cancelled in the HIS",
    )
    assert HisAppointment.objects.get().status == "cancelled"
    assert Slot.objects.filter(schedule=clinic).values_list("taken_window", flat=True).distinct().get() == 0


def test_a_cancelled_his_appointment_booked_again_takes_a_new_place(clinic):
    receive(siu("S1", "S12", NINE))
    receive(siu("S2", "S15", NINE))

    receive(siu("S3", "S14", NINE_FIFTEEN))

    booked = Appointment.objects.get(status="booked")
    assert (booked.his_appointment, booked.slot) == (
        HisAppointment.objects.get(),
        clinic.slots.order_by("starts_at").last(),
    )
    assert Appointment.objects.filter(his_appointment__isnull=False).count() == 1


def test_an_s12_for_a_place_the_patient_already_booked_here_links_that_booking(clinic):
    receive(siu("S0", "S12", TEN))  # registers the patient; no slot at ten
    patient = HisAppointment.objects.get().patient
    portal = appointment_book(
        patient=patient, slot=clinic.slots.order_by("starts_at").first(), door=BookingDoor(channel="online")
    )

    ack = receive(siu("S1", "S14", NINE))

    assert (warnings(ack), list(Appointment.objects.values_list("pk", flat=True))) == ([], [portal.pk])
    portal.refresh_from_db()
    assert (portal.his_appointment, portal.channel) == (HisAppointment.objects.get(), "online")
    assert taken(clinic) == [(0, 1), (0, 0)]
