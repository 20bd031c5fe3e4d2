"""The patient portal on a phone: sign in with the SMS code, book a slot, find it in my appointments, cancel it."""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps

from appointments.models import Appointment
from integrations.channels.backends import MemoryBackend
from patients.models import OutboundMessage
from patients.services.messages import message_deliver
from tests.appointments.factories import session
from tests.factories import PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MOBILE = "+8613812345678"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def message_templates(db):
    """Tests run without migrations: load the built-in templates the data migrations add."""
    for module in (
        "patients.migrations.0003_default_message_templates",
        "appointments.migrations.0003_booking_message_templates",
    ):
        importlib.import_module(module).add_templates(apps, None)


@pytest.fixture
def memory_sms(settings):
    from hcrm.channels import channel_backend

    settings.CHANNEL_BACKENDS = {**settings.CHANNEL_BACKENDS, "sms": "integrations.channels.backends.MemoryBackend"}
    channel_backend.cache_clear()
    MemoryBackend.sent.clear()
    yield MemoryBackend
    MemoryBackend.sent.clear()
    channel_backend.cache_clear()


@pytest.fixture
def clinic(staff, internal_medicine, message_templates):
    doctor = staff["doctor"]
    doctor.full_name, doctor.title, doctor.specialties, doctor.is_renowned_expert = (
        "李时珍", "chief_physician", "脾胃病、失眠", True
    )  # fmt: skip
    doctor.save()
    schedule = session(doctor=doctor, department=internal_medicine, slots=4, online=2)
    schedule.fee = "50.00"
    schedule.save()
    return schedule


def _code_from_sms(memory_sms) -> str:
    """The code as the patient's phone received it (a worker sends it; without one, the test does)."""
    message = OutboundMessage.objects.get(purpose="verification")
    message_deliver(message_id=message.pk)
    [sms] = [sent for sent in memory_sms.sent if sent.to == MOBILE]
    return re.search(r"\d{6}", sms.body).group()


def test_a_patient_signs_in_books_sees_and_cancels_on_a_phone(browser, live_server, clinic, memory_sms, output_dir):
    patient = PatientFactory(name="王芳", mobile=MOBILE)
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()

    page.goto(f"{live_server.url}/portal/")
    page.wait_for_url(re.compile(r"/portal/sign-in/"))
    page.fill("#id_mobile", "138 1234 5678")
    page.screenshot(path=output_dir / "sign-in.png", full_page=True)
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/portal/sign-in/code/"))
    page.fill("#id_code", _code_from_sms(memory_sms))
    page.screenshot(path=output_dir / "code.png", full_page=True)
    page.click("button.primary")
    page.wait_for_url(f"{live_server.url}/portal/")

    page.click("a.tile.primary")
    page.click(f"a[href='/portal/book/department/{clinic.department.uuid}/']")
    page.wait_for_selector("a.doctor-card")
    assert "李时珍" in page.locator("a.doctor-card").inner_text()
    page.screenshot(path=output_dir / "doctors.png", full_page=True)
    page.click("a.doctor-card")
    page.click("a.choice.session")
    page.wait_for_selector("button.slot")
    page.screenshot(path=output_dir / "slots.png", full_page=True)
    page.locator("button.slot").first.click()
    page.wait_for_selector("p.countdown")
    page.screenshot(path=output_dir / "confirm.png", full_page=True)
    page.click("button[name=confirm]")
    page.wait_for_selector("p.visit-number")
    assert page.locator("p.visit-number").inner_text() == "1"
    page.screenshot(path=output_dir / "booked.png", full_page=True)

    appointment = Appointment.objects.get(patient=patient)
    assert (appointment.status, appointment.visit_number, appointment.channel) == ("booked", 1, "online")
    assert appointment.slot == clinic.slots.order_by("starts_at").first()

    page.click("nav.tabs a[href='/portal/appointments/']")
    page.wait_for_selector("ul.upcoming a.appointment")
    assert "李时珍" in page.locator("ul.upcoming").inner_text()
    page.screenshot(path=output_dir / "my-appointments.png", full_page=True)
    page.click("ul.upcoming a.appointment")
    page.click("button.danger")
    page.wait_for_url(f"{live_server.url}/portal/appointments/")
    page.screenshot(path=output_dir / "cancelled.png", full_page=True)

    assert page.locator("ul.messages li.success").count() == 1
    assert page.locator("ul.upcoming a.appointment").count() == 0
    assert page.locator("ul.past a.appointment").count() == 1
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancelled_by) == ("cancelled", "patient")
    assert (output_dir / "booked.png").stat().st_size > 10_000
    context.close()
