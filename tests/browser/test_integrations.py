"""The integration console in a real browser: overview, error queue, a refused message, fix its source, reprocess."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("integrations.hl7v2.pipeline", reason="the HL7 pipeline is not installed")

from integrations.models import InboundMessage  # noqa: E402
from tests.factories import UserFactory  # noqa: E402
from tests.integrations.console_fixtures import inbound, source  # noqa: E402
from tests.integrations.test_console_reprocess_pipeline import UNKNOWN_SEX  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def refused(internal_medicine):
    UserFactory(username="it_wang", full_name="王工", roles=["administrator"], departments=[internal_medicine])
    his = source("HIS", "ZYY", name="HIS 中医院", mrn_assigner="ZYY")
    for number in range(3):
        inbound(profile=his, control_id=f"OK{number}", message_type="ADT^A08")
    message = inbound(
        profile=his,
        raw=UNKNOWN_SEX,
        control_id="SX1",
        message_type="ADT^A04",
        version="2.5",
        status="failed",
        error_code="103",
        error_location="PID^1^8",
        error="PID-8: sex code X is not in this source's sex codes.",
        patient_identifiers="M0815",
    )
    return his, message


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_an_administrator_finds_a_refused_message_fixes_the_source_and_reprocesses_it(
    browser, live_server, refused, output_dir
):
    his, message = refused
    page = browser.new_page(viewport={"width": 1366, "height": 1000}, locale="zh-CN")
    _sign_in(page, live_server, "it_wang")

    page.click("nav.mainnav a[href='/integrations/']")
    page.wait_for_selector("table.sources")
    row = page.locator("table.sources tbody tr[data-sender='HIS^ZYY']")
    assert row.locator("td.received").inner_text() == "4"
    assert row.locator("td.applied").inner_text() == "3"
    assert row.locator("td.failed").inner_text() == "1"
    assert page.locator("svg.hourly rect:not(.empty)").count() == 2  # the source's bar and the total's
    page.screenshot(path=output_dir / "overview.png", full_page=True)

    page.click("a.errors-waiting")
    page.wait_for_selector("table.errors")
    assert page.locator("table.errors tbody tr").count() == 1
    page.screenshot(path=output_dir / "error-queue.png", full_page=True)

    page.click("table.errors a.message-link")
    page.wait_for_selector("pre.raw")
    assert page.locator("pre.raw").inner_text().splitlines()[2] == "PID|1||M0815^^^ZYY^MR||李^四||19600101|X"
    assert "PID^1^8" in page.locator("dd.error-location").inner_text()
    page.screenshot(path=output_dir / "message.png", full_page=True)

    page.goto(f"{live_server.url}/integrations/sources/{his.uuid}/")
    page.fill("#id_sex_codes", json.dumps({**his.sex_codes, "X": "unknown"}))
    page.click("form.profile-form .form-actions button.primary")
    page.wait_for_selector("ul.messages li.success")

    page.goto(f"{live_server.url}/integrations/messages/{message.uuid}/")
    page.click("form.reprocess button")
    page.wait_for_selector("ul.messages li.success")
    assert page.locator("h1 .badge").inner_text() != ""
    page.screenshot(path=output_dir / "reprocessed.png", full_page=True)

    message.refresh_from_db()
    assert message.status == InboundMessage.Status.APPLIED
    assert page.locator("form.reprocess").count() == 0
