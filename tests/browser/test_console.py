"""The staff console in a real browser: sign in, find a patient by pinyin initials, read the timeline."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.factories import DiagnosisFactory, EncounterFactory, LabResultFactory, PatientFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clinic(internal_medicine):
    doctor = UserFactory(username="dr_li", full_name="李医生", roles=["doctor"], departments=[internal_medicine])
    patient = PatientFactory(name="张三", departments=[internal_medicine])
    PatientFactory(name="王五", departments=[internal_medicine])
    visit = EncounterFactory(
        patient=patient,
        department=internal_medicine,
        chief_complaint="头痛3天",
        started_at=timezone.now() - dt.timedelta(days=2),
    )
    DiagnosisFactory(patient=patient, encounter=visit, code="G43.9", name="偏头痛", diagnosed_at=visit.started_at)
    LabResultFactory(patient=patient, encounter=visit, observed_at=visit.started_at)
    return doctor, patient


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_doctor_finds_patient_by_pinyin_initials_and_reads_timeline(browser, live_server, clinic, output_dir):
    doctor, patient = clinic
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")

    _sign_in(page, live_server, doctor.username)
    page.fill("input[name=q]", "zhs")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("table.patients")
    rows = page.locator("table.patients tbody tr")
    assert rows.count() == 1
    assert "张三" in rows.first.inner_text()
    page.screenshot(path=output_dir / "search.png", full_page=True)

    page.click("a.patient-name")
    page.wait_for_selector(".timeline")
    assert page.locator("h1").first.inner_text().startswith("张三")
    timeline = page.locator(".timeline").inner_text()
    assert "偏头痛" in timeline
    assert "头痛3天" in timeline
    assert page.locator(".timeline .flag-warning").count() == 1  # the high glucose
    assert "********" in page.locator("code.national-id").inner_text()
    page.screenshot(path=output_dir / "patient.png", full_page=True)

    assert (output_dir / "search.png").stat().st_size > 10_000
    assert (output_dir / "patient.png").stat().st_size > 10_000
    page.close()


def test_patient_page_fits_a_tablet(browser, live_server, clinic, output_dir):
    doctor, patient = clinic
    page = browser.new_page(viewport={"width": 768, "height": 1024}, locale="zh-CN")

    _sign_in(page, live_server, doctor.username)
    page.goto(f"{live_server.url}/patients/{patient.uuid}/")
    page.wait_for_selector(".timeline")

    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 768
    page.screenshot(path=output_dir / "patient-tablet.png", full_page=True)
    page.close()
