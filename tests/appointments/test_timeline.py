"""Bookings and HIS appointments in the patient's timeline."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from appointments.models import HisAppointment
from appointments.services import BookingDoor, appointment_book, appointment_cancel, appointment_hold
from patients.timeline import patient_timeline
from tests.appointments.factories import session

pytestmark = pytest.mark.django_db

PHONE = BookingDoor(channel="phone")


@pytest.fixture
def history(staff, internal_medicine, acupuncture, patient):
    """A booking in three days, one cancelled the day after, a hold never confirmed, and two HIS appointments,
    one of them mirroring the first booking."""
    today = timezone.localdate()
    first = session(doctor=staff["doctor"], department=internal_medicine, date=today + dt.timedelta(days=3), phone=1)
    second = session(doctor=staff["other_doctor"], department=acupuncture, date=today + dt.timedelta(days=4), phone=1)
    third = session(doctor=staff["doctor"], department=internal_medicine, date=today + dt.timedelta(days=5), phone=1)
    booked = appointment_book(patient=patient, slot=first.slots.order_by("starts_at")[0], door=PHONE)
    cancelled = appointment_book(patient=patient, slot=second.slots.order_by("starts_at")[0], door=PHONE)
    appointment_cancel(appointment=cancelled, by="staff", reason="患者来电")
    appointment_hold(patient=patient, slot=third.slots.order_by("starts_at")[0], door=PHONE)
    mirrored = HisAppointment.objects.create(
        patient=patient, source_system="HIS", external_id="A1", start=booked.slot.starts_at, status="booked"
    )
    booked.his_appointment = mirrored
    booked.save()
    HisAppointment.objects.create(
        patient=patient,
        source_system="HIS",
        external_id="A2",
        start=timezone.now() - dt.timedelta(days=10),
        department=internal_medicine,
        doctor_name="李时珍",
        status="noshow",
        reason="复诊",
    )
    return booked, cancelled


def _entries(patient, user):
    return [
        (entry.kind, entry.title, entry.detail, entry.flag, entry.lines)
        for entry in patient_timeline(patient, user)
        if entry.kind in ("appointment", "his_appointment")
    ]


def test_bookings_and_his_appointments_are_in_the_timeline_newest_first(patient, staff, history):
    booked, cancelled = history

    assert _entries(patient, staff["nurse"]) == [
        (
            "appointment",
            f"Appointment · Acupuncture · {staff['other_doctor']}",
            "Cancelled · visit number 1 · 门诊楼 3 楼 301 · booked through Phone",
            "",
            ["Cancelled by Staff: 患者来电"],
        ),
        (
            "appointment",
            f"Appointment · Internal medicine · {staff['doctor']}",
            "Booked · visit number 1 · 门诊楼 3 楼 301 · booked through Phone",
            "",
            [],
        ),
        ("his_appointment", "HIS appointment · Internal medicine · 李时珍", "No-show · 复诊", "warning", []),
    ]


def test_roles_without_appointments_see_none_of_them(patient, staff, history):
    assert _entries(patient, staff["analyst"]) == []
