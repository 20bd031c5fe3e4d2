"""The questionnaire builder in a real browser: add items with a condition and a score, preview with branching."""

from __future__ import annotations

import pytest

from followups.models import Questionnaire
from followups.services import questionnaire_save
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def head(internal_medicine):
    return UserFactory(
        username="head_li", full_name="李主任", roles=["department_head"], departments=[internal_medicine]
    )


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def _add_item(page, **fields) -> None:
    page.click("a[href$='/items/new/']")
    page.wait_for_selector("form.item-form")
    for name, value in fields.items():
        if name == "kind":
            page.select_option("#id_kind", value)
        elif name == "required":
            page.check("#id_required")
        else:
            page.fill(f"#id_{name}", value)
    page.click("form.item-form .form-actions button.primary")
    page.wait_for_selector("table.items")


def test_a_department_head_builds_a_branching_questionnaire_and_previews_it(
    browser, live_server, head, internal_medicine, output_dir
):
    questionnaire = questionnaire_save(
        actor=head,
        data={"code": "pain-check", "title": "疼痛随访", "purpose": "clinical", "departments": [internal_medicine]},
    )
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    _sign_in(page, live_server, head.username)
    page.goto(f"{live_server.url}/followups/questionnaires/{questionnaire.uuid}/")

    _add_item(page, link_id="pain", kind="boolean", text="是否疼痛?", required=True)
    _add_item(
        page,
        link_id="level",
        kind="choice",
        text="疼痛程度",
        options="1 | 轻 | 1\n2 | 中 | 2\n3 | 重 | 3",
        conditions="pain = true",
        required=True,
    )
    page.click("a[href$='/scores/new/']")
    page.fill("#id_code", "pain_score")
    page.fill("#id_label", "疼痛分")
    page.check("input[name=items][value=level]")
    page.fill("#id_bands", "0 | 1 | 轻\n2 | | 重 | Severe | alert")
    page.click("form .form-actions button.primary")
    page.wait_for_selector("table.scores code")
    page.screenshot(path=output_dir / "builder.png", full_page=True)

    page.click("a[href$='/preview/']")
    page.wait_for_selector("[data-questionnaire-form][data-ready]", state="attached")
    level = page.locator("[data-link-id=level]")
    assert level.is_hidden()
    page.check("input[name=q-pain][value=true]")
    assert level.is_visible()
    page.check("input[name=q-pain][value=false]")
    assert level.is_hidden()
    page.check("input[name=q-pain][value=true]")
    page.check("input[name=q-level][value='3']")
    page.screenshot(path=output_dir / "preview.png", full_page=True)
    page.click("form .form-actions button.primary")
    page.wait_for_selector("[data-score=pain_score]")

    assert page.locator("[data-score=pain_score]").inner_text().startswith("3.0 · 重")
    version = Questionnaire.objects.get().current_version
    assert [item["linkId"] for item in version.items] == ["pain", "level"]
    assert version.scoring["scores"][0]["bands"][1] == {
        "min": 2,
        "max": None,
        "label": "重",
        "label_en": "Severe",
        "flag": "alert",
    }
    page.screenshot(path=output_dir / "scored.png", full_page=True)
