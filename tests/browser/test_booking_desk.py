"""The booking desk in a real browser: an agent finds a caller, books a slot by phone, and the doctor's day shows it."""

from __future__ import annotations

import pytest

from appointments.models import Appointment
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def booking_templates(transactional_db):
    """Tests run without migrations: load the built-in message templates the confirmation uses."""
    from tests.appointments.conftest import load_booking_templates

    load_booking_templates()


@pytest.fixture
def desk(internal_medicine):
    agent = UserFactory(username="agent_li", full_name="李客服", roles=["agent"])
    doctor = UserFactory(username="doctor_sun", full_name="孙医生", roles=["doctor"], departments=[internal_medicine])
    patient = PatientFactory(name="张三", departments=[internal_medicine])
    clinic = session(doctor=doctor, department=internal_medicine, slots=2, online=0, phone=1)
    return agent, doctor, patient, clinic


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_an_agent_books_a_caller_by_phone_at_the_desk(browser, live_server, desk, output_dir):
    agent, doctor, patient, clinic = desk
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")

    _sign_in(page, live_server, agent.username)
    page.goto(f"{live_server.url}/appointments/desk/")
    page.fill("input[name=q]", "张三")
    page.click("form[role=search] button[type=submit]")
    page.click(f"a[href='?patient={patient.uuid}']")
    page.select_option("select[name=department]", "NK")
    assert page.locator("select[name=channel]").input_value() == "phone"
    page.click("form.filters button[type=submit]")
    second = clinic.slots.order_by("starts_at")[1]
    page.click(f"button[name=slot][value='{second.uuid}']")
    page.wait_for_selector(".messages")
    page.screenshot(path=output_dir / "booked.png", full_page=True)

    assert "visit number 1" in page.locator(".messages").inner_text()
    booked = Appointment.objects.get()
    assert (booked.patient_id, booked.slot_id, booked.channel, booked.booked_by_id) == (
        patient.pk,
        second.pk,
        "phone",
        agent.pk,
    )
    assert page.locator(f"#booking-{booked.uuid}").count() == 1
