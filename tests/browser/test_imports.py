"""Spreadsheet import in a real browser: upload, dry-run report, import the good rows, see the result."""

from __future__ import annotations

import pytest

from hcrm.celery import app as celery_app
from patients.models import Patient, PatientImport
from tests.factories import UserFactory
from tests.patients.imports_files import LI_ID, WANG_ID, csv_bytes, good_rows

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager_tasks():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the import task runs in the live server's request
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def agent(internal_medicine, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return UserFactory(username="agent_liu", full_name="刘客服", roles=["agent"], departments=[internal_medicine])


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_agent_uploads_sees_the_dry_run_report_and_imports_the_good_rows(
    browser, live_server, agent, eager_tasks, output_dir
):
    sheet = output_dir / "patients.csv"
    sheet.write_bytes(csv_bytes([*good_rows(), ["", "男", "1980-01-02", "", "", "C0100", "", ""]], encoding="gb18030"))
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    _sign_in(page, live_server, agent.username)

    page.click("nav.mainnav a[href='/patients/imports/']")
    page.wait_for_selector("form.import-upload")
    page.set_input_files("#id_file", str(sheet))
    page.click("form.import-upload button.primary")

    page.wait_for_selector("table.import-report")
    assert page.locator("h1").first.inner_text() == "patients.csv"
    assert page.locator("dd.total-rows").inner_text() == "4"
    assert page.locator("dd.bad-rows").inner_text() == "1"
    row = page.locator("table.import-report tbody tr")
    assert row.count() == 1
    assert (row.get_attribute("data-row"), row.get_attribute("data-field"), row.get_attribute("data-code")) == (
        "5",
        "name",
        "required",
    )
    assert row.locator("td").nth(1).inner_text() == "姓名"
    assert page.locator("input[name=mode][value=good_rows_only]").is_checked()
    assert Patient.objects.count() == 0
    page.screenshot(path=output_dir / "dry_run.png", full_page=True)

    page.click("form.import-run button.primary")
    page.wait_for_selector("section.import-result")
    assert page.locator(".import-status").get_attribute("data-status") == "imported"
    assert page.locator("dd.created").inner_text() == "3"
    assert page.locator("dd.skipped").inner_text() == "1"
    assert page.locator("form.import-run").count() == 0
    page.screenshot(path=output_dir / "result.png", full_page=True)

    assert sorted(Patient.objects.values_list("national_id", flat=True))[:2] == sorted([WANG_ID, LI_ID])[:2]
    assert Patient.objects.count() == 3
    assert PatientImport.objects.get().imported_by == agent

    page.click("a[href='/patients/imports/']")
    page.wait_for_selector("table.imports")
    assert page.locator("table.imports a.import-name").all_inner_texts() == ["patients.csv"]
    page.close()
