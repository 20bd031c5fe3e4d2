"""Duplicate review in a real browser: a department head opens the queue, compares two records, merges, undoes."""

from __future__ import annotations

import datetime as dt

import pytest

from patients.models import MatchCandidate, Patient, PatientMerge
from tests.factories import EncounterFactory, PatientFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def review(internal_medicine):
    head = UserFactory(
        username="head_zhao", full_name="赵主任", roles=["department_head"], departments=[internal_medicine]
    )
    born = dt.date(1975, 6, 1)
    first = PatientFactory(name="张伟", birth_date=born, departments=[internal_medicine])
    second = PatientFactory(name="张伟", birth_date=born, mobile="+8613911112222", departments=[internal_medicine])
    EncounterFactory(patient=second, department=internal_medicine)
    candidate = MatchCandidate.objects.create(patient_a=first, patient_b=second, reason="name_birth", score=85)
    return head, first, second, candidate


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_a_department_head_compares_merges_and_undoes(browser, live_server, review, output_dir):
    head, first, second, candidate = review
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")

    _sign_in(page, live_server, head.username)
    page.click("nav.mainnav a[href='/patients/identity/']")
    page.wait_for_selector("table.candidates")
    queue = page.locator("table.candidates tbody").inner_text()
    assert first.mrn in queue and second.mrn in queue
    assert first.national_id not in queue  # masked for a department head
    page.screenshot(path=output_dir / "queue.png", full_page=True)

    page.click("a.compare")
    page.wait_for_selector("table.comparison")
    assert page.locator("table.comparison tr.differs").count() >= 3  # MRN, national ID, mobile, registered
    assert page.locator(f"input[name=survivor][value='{first.uuid}']").is_checked()
    page.check(f"input[name=survivor][value='{second.uuid}']")
    page.fill("textarea[name=reason]", "同一患者重复建档")
    page.screenshot(path=output_dir / "compare.png", full_page=True)
    page.click("button.merge")
    page.wait_for_url(f"{live_server.url}/patients/identity/")

    assert page.locator("ul.messages li.success").count() == 1
    assert page.locator("p.empty").count() == 1
    merge = PatientMerge.objects.get()
    assert (merge.survivor, merge.prior, merge.actor, merge.reason) == (second, first, head, "同一患者重复建档")
    assert Patient.objects.get(pk=first.pk).merged_into == second

    page.goto(f"{live_server.url}/patients/identity/merges/")
    page.click("button.undo")
    page.wait_for_url(f"{live_server.url}/patients/identity/merges/")
    page.screenshot(path=output_dir / "undone.png", full_page=True)

    assert page.locator("ul.messages li.success").count() == 1
    assert Patient.objects.get(pk=first.pk).merged_into is None
    assert MatchCandidate.objects.get().status == "open"
    assert (output_dir / "compare.png").stat().st_size > 10_000
    page.close()
