"""Segments in a real browser: build one with a live count, save it, read its members, download the CSV export."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import PatientFactory, TagFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def clinic(internal_medicine):
    doctor = UserFactory(username="dr_chen", full_name="陈医生", roles=["doctor"], departments=[internal_medicine])
    tag = TagFactory(name="高血压")
    canton = {"province": "广东省", "city": "广州市", "district": "越秀区"}
    first = PatientFactory(
        name="黄秀英", sex="female", birth_date=dt.date(1948, 2, 3), departments=[internal_medicine], **canton
    )
    second = PatientFactory(
        name="梁玉兰", sex="female", birth_date=dt.date(1955, 7, 9), departments=[internal_medicine], **canton
    )
    PatientFactory(name="陈国强", sex="male", birth_date=dt.date(1950, 1, 1), departments=[internal_medicine], **canton)
    PatientFactory(name="王丽", sex="female", birth_date=dt.date(1990, 1, 1), departments=[internal_medicine])
    for patient in (first, second):
        patient.tags.add(tag)
    return doctor, [first, second]


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def _live_count(page, expected: int) -> None:
    page.wait_for_selector(f'#live-count .live-count[data-count="{expected}"]', timeout=10_000)


def test_doctor_builds_a_segment_sees_its_count_and_exports_it(browser, live_server, clinic, output_dir):
    doctor, members = clinic
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    _sign_in(page, live_server, doctor.username)

    # Selectors, not captions: the console speaks the browser's language once the translation catches up.
    page.click("nav.mainnav a[href='/patients/segments/']")
    page.wait_for_selector("table.segments")
    page.click("a[href='/patients/segments/new/']")
    page.wait_for_selector("form.segment-builder")
    _live_count(page, 4)  # no filter yet: every living patient

    page.fill("#id_name", "广州老年女性")
    page.fill("#id_cities", "广州市")
    _live_count(page, 3)
    page.check("input[name=sexes][value=female]")
    _live_count(page, 2)
    page.fill("#id_age_min", "65")
    page.locator("#id_age_min").blur()
    _live_count(page, 2)
    page.check("input[name=tags][value=高血压]")
    _live_count(page, 2)
    page.screenshot(path=output_dir / "builder.png", full_page=True)

    page.click("form.segment-builder .form-actions button.primary")
    page.wait_for_selector("table.members")
    assert page.locator("h1").first.inner_text() == "广州老年女性"
    names = sorted(page.locator("table.members a.patient-name").all_inner_texts())
    assert names == sorted(patient.name for patient in members)
    assert all("*" in text for text in page.locator("table.members code.national-id").all_inner_texts())
    page.wait_for_selector(".segment-total .segment-count strong")
    assert page.locator(".segment-total .segment-count strong").inner_text() == "2"
    page.screenshot(path=output_dir / "members.png", full_page=True)

    with page.expect_download() as download_info:
        page.click("a.export-csv")
    download = download_info.value
    path = output_dir / download.suggested_filename
    download.save_as(path)
    text = path.read_text(encoding="utf-8-sig")
    assert sorted(line.split(",")[1] for line in text.strip().splitlines()[1:]) == sorted(p.name for p in members)
    assert all(patient.national_id not in text for patient in members)

    page.goto(f"{live_server.url}/patients/segments/")
    page.wait_for_selector("#rfm-overview .loading", state="detached")
    assert "广州老年女性" in page.locator("table.segments").inner_text()
    page.screenshot(path=output_dir / "segments.png", full_page=True)

    for name in ("builder.png", "members.png", "segments.png"):
        assert (output_dir / name).stat().st_size > 10_000
    page.close()


def test_administrator_changes_rfm_boundaries_and_sees_the_bands(browser, live_server, internal_medicine, output_dir):
    UserFactory(username="it_admin", roles=["administrator"], departments=[internal_medicine])
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")  # the bands are read as text
    _sign_in(page, live_server, "it_admin")

    page.click("nav.mainnav a[href='/patients/segments/settings/']")
    page.wait_for_selector("table.bands")
    page.fill("#id_rfm_recency_days", "15, 60, 120, 300")
    page.click("form .form-actions button.primary")
    page.wait_for_selector(".messages .success")

    bands = page.locator("table.bands tbody tr").all_inner_texts()
    assert bands[0].split("\t")[:2] == ["5", "≤ 15 days since the last visit"]
    assert bands[4].split("\t")[:2] == ["1", "> 300 days since the last visit"]
    page.screenshot(path=output_dir / "settings.png", full_page=True)
    page.close()
