"""A nurse completes a phone follow-up from her worklist in a real browser: claim, call, answer, record."""

from __future__ import annotations

import pytest

from followups.models import FollowUpTask, QuestionnaireResponse
from followups.services import questionnaire_save, questionnaire_version_save
from patients.models import ContactEntry
from tests.factories import PatientFactory, UserFactory
from tests.followups import samples
from tests.followups.factories import task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def phone_task(internal_medicine):
    UserFactory(username="nurse_wang", full_name="王护士", roles=["nurse"], departments=[internal_medicine])
    questionnaire = questionnaire_save(
        actor=None, data={"code": "post-discharge", "title": "出院随访", "purpose": "clinical", "status": "active"}
    )
    questionnaire_version_save(
        actor=None, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )
    questionnaire.refresh_from_db()
    patient = PatientFactory(name="张三", departments=[internal_medicine])
    return task(patient=patient, department=internal_medicine, questionnaire=questionnaire)


def test_a_nurse_completes_a_phone_follow_up_from_the_worklist(browser, live_server, phone_task, output_dir):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "nurse_wang")
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/followups/")
    row = page.locator(f"#task-{phone_task.uuid}")
    row.locator("button.primary").click()
    page.wait_for_url(f"{live_server.url}/followups/")
    page.screenshot(path=output_dir / "worklist.png", full_page=True)
    page.locator(f"#task-{phone_task.uuid} a[href$='/call/']").click()
    page.wait_for_selector("section.patient-summary")
    page.check('input[name="q-pain"][value="true"]')
    page.locator('[data-link-id="pain_level"]').wait_for(state="visible")
    page.check('input[name="q-pain_level"][value="4"]')
    page.check('input[name="q-sleep"][value="good"]')
    page.check('input[name="outcome"][value="reached"]')
    page.fill("#id_notes", "恢复良好")
    page.screenshot(path=output_dir / "call.png", full_page=True)
    page.click("form button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/followups/")
    page.screenshot(path=output_dir / "recorded.png", full_page=True)
    page.close()

    phone_task.refresh_from_db()
    response = QuestionnaireResponse.objects.get()
    assert (phone_task.status, phone_task.response_id, phone_task.attempts) == (
        FollowUpTask.Status.COMPLETED,
        response.pk,
        1,
    )
    assert response.answers == {"pain": True, "pain_level": 4, "sleep": "good"}
    assert list(ContactEntry.objects.values_list("outcome", "summary")) == [("reached", "恢复良好")]
