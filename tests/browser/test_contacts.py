"""The contact log in a real browser: a nurse logs a call from the patient page; a department head plays and scores it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from hcrm.models import AuditEntry
from patients.models import ContactEntry, ContactReview
from patients.services.contacts import contact_record
from tests.factories import PatientFactory, UserFactory, wav_recording

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ward(internal_medicine):
    nurse = UserFactory(username="nurse_wang", full_name="王护士", roles=["nurse"], departments=[internal_medicine])
    head = UserFactory(
        username="head_zhao", full_name="赵主任", roles=["department_head"], departments=[internal_medicine]
    )
    patient = PatientFactory(name="张三", departments=[internal_medicine])
    return nurse, head, patient


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_nurse_logs_a_phone_call_from_the_patient_page(browser, live_server, ward, output_dir):
    nurse, _head, patient = ward
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    patient_url = f"{live_server.url}/patients/{patient.uuid}/"

    _sign_in(page, live_server, nurse.username)
    page.goto(patient_url)
    page.click("#log-contact > summary")
    page.wait_for_selector("form.contact-form")
    # the usual case is already chosen: an outgoing follow-up call that reached the patient
    assert page.locator("select[name=channel]").input_value() == "phone"
    assert page.locator("select[name=purpose]").input_value() == "follow_up"
    assert page.locator("select[name=outcome]").input_value() == "reached"
    assert page.locator("input[name=direction][value=out]").is_checked()
    page.fill("input[name=duration]", "4:30")
    page.fill("textarea[name=summary]", "术后第3天随访，无发热，按时服药")
    page.screenshot(path=output_dir / "log-form.png", full_page=True)

    page.click("form.contact-form button[type=submit]")
    page.wait_for_url(patient_url)

    entry = page.locator(".timeline .kind-contact")
    assert entry.count() == 1
    assert "术后第3天随访，无发热，按时服药" in entry.inner_text()
    assert "王护士" in entry.inner_text()
    page.screenshot(path=output_dir / "timeline.png", full_page=True)
    contact = ContactEntry.objects.get()
    assert (contact.staff, contact.channel, contact.duration_seconds) == (nurse, "phone", 270)
    assert (output_dir / "timeline.png").stat().st_size > 10_000
    page.close()


def test_department_head_plays_and_scores_a_call(browser, live_server, ward, output_dir):
    nurse, head, patient = ward
    call = contact_record(
        actor=nurse,
        patient=patient,
        channel="phone",
        direction="out",
        purpose="follow_up",
        outcome="reached",
        occurred_at=timezone.now() - dt.timedelta(hours=2),
        duration_seconds=95,
        summary="提醒复诊，患者同意周五来院",
        recording=wav_recording(seconds=2),
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")

    _sign_in(page, live_server, head.username)
    page.click("a[href='/patients/contacts/review/']")
    page.wait_for_selector("table.contacts")
    assert "提醒复诊" in page.locator("table.contacts tbody").inner_text()
    page.screenshot(path=output_dir / "review-list.png", full_page=True)

    with page.expect_response(lambda response: response.url.endswith(f"/contacts/{call.uuid}/recording/")) as loaded:
        page.click("a.contact-link")
    assert loaded.value.status == 200
    assert loaded.value.headers["content-type"] == "audio/wav"
    page.wait_for_function("document.querySelector('audio.recording').readyState >= 1")
    assert page.evaluate("document.querySelector('audio.recording').duration") == pytest.approx(2.0, abs=0.05)
    page.evaluate(
        "(() => { const audio = document.querySelector('audio.recording'); audio.muted = true; return audio.play(); })()"
    )
    page.wait_for_function("document.querySelector('audio.recording').currentTime > 0")
    page.screenshot(path=output_dir / "contact.png", full_page=True)

    page.check("input[name=score][value='4']")
    page.fill("textarea[name=comment]", "开场白规范，未复述复诊时间")
    page.click("form.review-form button[type=submit]")
    page.wait_for_selector("ul.reviews .score")

    assert "4/5" in page.locator("ul.reviews").inner_text()
    page.screenshot(path=output_dir / "reviewed.png", full_page=True)
    review = ContactReview.objects.get()
    assert (review.contact, review.reviewer, review.score, review.comment) == (
        call,
        head,
        4,
        "开场白规范，未复述复诊时间",
    )
    assert AuditEntry.objects.filter(actor=head, event="view", additional_data__part="recording").exists()
    page.close()
