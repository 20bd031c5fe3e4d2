"""A patient answers a follow-up questionnaire from the SMS link, on a phone: branching, submit, thank-you."""

from __future__ import annotations

import importlib
import re

import pytest
from django.apps import apps

from followups.models import FollowUpTask, QuestionnaireResponse
from followups.services import followup_link_send, questionnaire_save, questionnaire_version_save
from integrations.channels.backends import MemoryBackend
from patients.models import OutboundMessage
from patients.services.messages import message_deliver
from tests.factories import PatientFactory
from tests.followups import samples
from tests.followups.factories import task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MOBILE = "+8613812345678"
PHONE = {"width": 390, "height": 844}


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
def sms_task(internal_medicine):
    for module in (
        "patients.migrations.0003_default_message_templates",
        "followups.migrations.0005_followup_message_templates",
    ):
        importlib.import_module(module).add_templates(apps, None)
    questionnaire = questionnaire_save(
        actor=None, data={"code": "post-discharge", "title": "出院随访", "purpose": "clinical", "status": "active"}
    )
    questionnaire_version_save(
        actor=None, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )
    questionnaire.refresh_from_db()
    patient = PatientFactory(name="王芳", mobile=MOBILE, preferred_language="zh-hans", departments=[internal_medicine])
    return task(patient=patient, department=internal_medicine, questionnaire=questionnaire, channel="sms")


def test_a_patient_answers_from_the_sms_link_on_a_phone(
    browser, live_server, settings, memory_sms, sms_task, output_dir
):
    settings.PUBLIC_BASE_URL = live_server.url
    followup_link_send(task=sms_task)
    message_deliver(message_id=OutboundMessage.objects.get().pk)
    [sms] = [sent for sent in memory_sms.sent if sent.to == MOBILE]
    link = re.search(r"https?://\S+/f/[\w.-]+/", sms.body).group()
    context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()

    page.goto(link)
    level = page.locator('[data-link-id="pain_level"]')
    assert level.is_hidden()
    page.screenshot(path=output_dir / "opened.png", full_page=True)
    page.check('input[name="q-pain"][value="true"]')
    level.wait_for(state="visible")
    page.check('input[name="q-pain_level"][value="8"]')
    page.check('input[name="q-sleep"][value="poor"]')
    page.locator('[data-link-id="notes"] textarea').wait_for(state="visible")
    page.fill('[data-link-id="notes"] textarea', "夜间痛醒")
    page.screenshot(path=output_dir / "answered.png", full_page=True)
    page.click('button[value="submit"]')
    page.wait_for_selector('.link-gone[data-kind="thanks"]')
    page.screenshot(path=output_dir / "thanks.png", full_page=True)
    context.close()

    sms_task.refresh_from_db()
    response = QuestionnaireResponse.objects.get()
    assert (sms_task.status, sms_task.response_id) == (FollowUpTask.Status.COMPLETED, response.pk)
    assert response.answers == {"pain": True, "pain_level": 8, "sleep": "poor", "notes": "夜间痛醒"}
    assert sorted(path.name for path in output_dir.iterdir()) == ["answered.png", "opened.png", "thanks.png"]
