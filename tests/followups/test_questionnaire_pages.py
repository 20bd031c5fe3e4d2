"""Console pages for questionnaires: list, metadata, the item builder, scores, JSON, preview, versions, FHIR files."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from followups.fhir import questionnaire_resource
from followups.models import Questionnaire, QuestionnaireVersion
from followups.services import questionnaire_save, questionnaire_version_save, response_save
from tests.followups import samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def questionnaire(internal_medicine):
    questionnaire = questionnaire_save(
        actor=None,
        data={
            "code": "post-discharge",
            "title": "出院随访",
            "purpose": "clinical",
            "status": "active",
            "departments": [internal_medicine],
        },
    )
    questionnaire_version_save(
        actor=None, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )
    questionnaire.refresh_from_db()
    return questionnaire


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def head(staff):
    return signed_in(staff["department_head"])


def url(questionnaire: Questionnaire, tail: str = "") -> str:
    return f"/followups/questionnaires/{questionnaire.uuid}/{tail}"


def current(questionnaire: Questionnaire) -> QuestionnaireVersion:
    questionnaire.refresh_from_db()
    return questionnaire.current_version


def item_post(**overrides) -> dict:
    data = {
        "link_id": "appetite",
        "kind": "choice",
        "text": "食欲",
        "parent": "",
        "options": "good | 好 | 1\npoor | 差 | 3",
        "conditions": "",
        "enable_behavior": "all",
    }
    data.update(overrides)
    return data


# --- List and metadata ----------------------------------------------------------------------------------


def test_the_list_filters_by_purpose_department_and_status(staff, questionnaire, acupuncture):
    questionnaire_save(actor=None, data={"code": "satisfaction", "title": "满意度调查", "purpose": "satisfaction"})
    questionnaire_save(
        actor=None, data={"code": "needling", "title": "针刺反应", "purpose": "clinical", "departments": [acupuncture]}
    )
    client = signed_in(staff["nurse"])

    everything = client.get("/followups/questionnaires/").content.decode()
    internal = client.get("/followups/questionnaires/?department=NK").content.decode()
    drafts = client.get("/followups/questionnaires/?status=draft&purpose=clinical").content.decode()

    assert ("出院随访" in everything, "满意度调查" in everything, "针刺反应" in everything) == (True, True, True)
    assert ("出院随访" in internal, "满意度调查" in internal, "针刺反应" in internal) == (True, True, False)
    assert ("出院随访" in drafts, "满意度调查" in drafts, "针刺反应" in drafts) == (False, False, True)


def test_pages_need_the_right_role(staff, questionnaire, client):
    anonymous = client.get("/followups/questionnaires/")
    analyst = signed_in(staff["analyst"]).get("/followups/questionnaires/")
    nurse_builder = signed_in(staff["nurse"]).post(url(questionnaire, "items/new/"), item_post())
    nurse_create = signed_in(staff["nurse"]).post("/followups/questionnaires/new/", {"code": "x", "title": "x"})

    assert anonymous.status_code == 302
    assert (analyst.status_code, nurse_builder.status_code, nurse_create.status_code) == (403, 403, 403)
    assert current(questionnaire).items == samples.ITEMS
    assert Questionnaire.objects.count() == 1


def test_a_questionnaire_is_created_then_gets_its_first_item(head, internal_medicine):
    created = head.post(
        "/followups/questionnaires/new/",
        {
            "code": "hypertension",
            "title": "高血压随访",
            "purpose": "clinical",
            "status": "draft",
            "departments": [internal_medicine.pk],
            "disease_codes": "I10, I11",
        },
    )
    questionnaire = Questionnaire.objects.get()

    added = head.post(
        url(questionnaire, "items/new/"),
        item_post(link_id="sbp", kind="integer", text="收缩压", min_value="60", max_value="260", options=""),
    )

    assert created.status_code == 302
    assert (questionnaire.code, questionnaire.disease_codes, list(questionnaire.departments.all())) == (
        "hypertension",
        ["I10", "I11"],
        [internal_medicine],
    )
    assert added.status_code == 302
    assert current(questionnaire).items == [
        {
            "linkId": "sbp",
            "type": "integer",
            "text": "收缩压",
            "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 60},
                {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 260},
            ],
        }
    ]


# --- The builder ----------------------------------------------------------------------------------------


def test_the_builder_lists_items_scores_and_versions(head, questionnaire):
    page = head.get(url(questionnaire)).content.decode()

    for link_id in ("intro", "general", "pain", "pain_level", "sleep", "symptoms", "notes"):
        assert f'id="item-{link_id}"' in page
    assert "<code>burden</code>" in page
    assert "Download FHIR JSON" in page


def test_an_item_with_options_scores_and_a_condition_is_added_inside_a_group(head, questionnaire):
    response = head.post(
        url(questionnaire, "items/new/"),
        item_post(parent="general", conditions="pain = true\npain_level >= 5", enable_behavior="any", required="on"),
    )

    assert response.status_code == 302
    group = current(questionnaire).items[1]
    assert [child["linkId"] for child in group["item"]] == ["pain", "pain_level", "appetite"]
    assert group["item"][2] == {
        "linkId": "appetite",
        "type": "choice",
        "text": "食欲",
        "required": True,
        "answerOption": [
            {
                "valueCoding": {"code": "good", "display": "好"},
                "extension": [{"url": samples.ORDINAL, "valueDecimal": 1}],
            },
            {
                "valueCoding": {"code": "poor", "display": "差"},
                "extension": [{"url": samples.ORDINAL, "valueDecimal": 3}],
            },
        ],
        "enableWhen": [
            {"question": "pain", "operator": "=", "answerBoolean": True},
            {"question": "pain_level", "operator": ">=", "answerInteger": 5},
        ],
        "enableBehavior": "any",
    }


def test_a_refused_item_shows_the_problem_next_to_the_field_and_saves_nothing(head, questionnaire):
    response = head.post(url(questionnaire, "items/new/"), item_post(link_id="sleep", options="a | A\na | B"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "The linkId sleep is used twice." in page
    assert "The answer option code a is used twice." in page
    assert current(questionnaire).items == samples.ITEMS


def test_an_item_is_edited_keeping_what_the_form_does_not_show(head, questionnaire):
    form = head.get(url(questionnaire, "items/pain_level/"))
    assert form.context["form"].initial["kind"] == "scale"
    assert form.context["form"].initial["conditions"] == "pain = true"

    response = head.post(
        url(questionnaire, "items/pain_level/"),
        item_post(
            link_id="pain_level",
            kind="scale",
            text="疼痛评分",
            parent="general",
            options="",
            min_value="0",
            max_value="5",
            conditions="pain = true",
            required="on",
        ),
    )

    assert response.status_code == 302
    item = current(questionnaire).items[1]["item"][1]
    assert (item["text"], item["extension"][-1]["valueCodeableConcept"]["coding"][0]["code"]) == ("疼痛评分", "slider")
    assert [ext.get("valueInteger") for ext in item["extension"][:2]] == [0, 5]


def test_items_are_moved_and_removed(head, questionnaire):
    head.post(url(questionnaire, "items/weight/move/"), {"direction": "up"})
    head.post(url(questionnaire, "items/visit/remove/"))

    assert [item["linkId"] for item in current(questionnaire).items] == [
        "intro",
        "general",
        "sleep",
        "weight",
        "symptoms",
        "name",
        "notes",
    ]


def test_an_item_others_depend_on_is_not_removed(head, questionnaire):
    response = head.post(url(questionnaire, "items/sleep/remove/"), follow=True)

    assert "notes.enableWhen[0].question" in response.content.decode()
    assert current(questionnaire).items == samples.ITEMS


def test_editing_an_answered_version_makes_the_next_one(head, questionnaire, patient):
    first = current(questionnaire)
    response_save(version=first, patient=patient, answers={"pain": False}, source="phone", complete=True)

    response = head.post(url(questionnaire, "items/new/"), item_post(), follow=True)

    second = current(questionnaire)
    first.refresh_from_db()
    assert (second.number, len(second.items), len(first.items)) == (2, 9, 8)
    assert "so the change was saved as version 2" in response.content.decode()


def test_a_score_with_bands_is_added_and_overlaps_are_shown(head, questionnaire):
    overlapping = head.post(
        url(questionnaire, "scores/new/"),
        {
            "code": "sleep_score",
            "label": "睡眠",
            "method": "sum",
            "items": ["sleep"],
            "bands": "0 | 2 | 好\n2 | | 差 | Poor | alert",
        },
    )
    saved = head.post(
        url(questionnaire, "scores/new/"),
        {
            "code": "sleep_score",
            "label": "睡眠",
            "method": "sum",
            "items": ["sleep"],
            "bands": "0 | 1 | 好\n2 | | 差 | Poor | alert",
        },
    )

    assert "This band overlaps band 1." in overlapping.content.decode()
    assert saved.status_code == 302
    assert current(questionnaire).scoring["scores"][1] == {
        "code": "sleep_score",
        "label": "睡眠",
        "method": "sum",
        "items": ["sleep"],
        "bands": [
            {"min": 0, "max": 1, "label": "好"},
            {"min": 2, "max": None, "label": "差", "label_en": "Poor", "flag": "alert"},
        ],
    }


def test_the_json_editor_saves_and_names_problems(head, questionnaire):
    items = samples.items()
    items[0]["text"] = "新说明"
    bad = samples.items()
    bad[2]["type"] = "video"

    refused = head.post(url(questionnaire, "json/"), {"items": json.dumps(bad), "scoring": "{}"})
    saved = head.post(url(questionnaire, "json/"), {"items": json.dumps(items), "scoring": ""})

    assert "sleep.type" in refused.content.decode()
    assert saved.status_code == 302
    assert (current(questionnaire).items[0]["text"], current(questionnaire).scoring) == ("新说明", {})


# --- Preview, export, import ----------------------------------------------------------------------------


def test_the_preview_renders_every_item_type(staff, questionnaire):
    page = signed_in(staff["doctor"]).get(url(questionnaire, "preview/")).content.decode()

    assert 'name="q-pain" value="true"' in page
    assert page.count('name="q-pain_level" value=') == 11
    assert 'type="radio" name="q-sleep" value="poor"' in page
    assert 'type="checkbox" name="q-symptoms" value="fever"' in page
    assert 'name="q-weight" type="number" step="any"' in page
    assert 'name="q-visit" type="date"' in page
    assert '<textarea id="id_q-notes" name="q-notes"' in page
    assert "data-enable-when=" in page


def test_the_preview_checks_answers_and_shows_scores_without_saving(staff, questionnaire):
    client = signed_in(staff["doctor"])

    missing = client.post(url(questionnaire, "preview/"), {"q-pain": "true"})
    scored = client.post(
        url(questionnaire, "preview/"),
        {"q-pain": "true", "q-pain_level": "7", "q-sleep": "poor", "q-symptoms": ["cough"]},
    )

    assert "This question needs an answer." in missing.content.decode()
    assert scored.context["scores"]["burden"]["value"] == 10.0
    assert 'data-score="burden">10.0 · 重' in scored.content.decode()
    assert questionnaire.versions.get().responses.count() == 0


def test_a_version_is_downloaded_as_fhir_json(staff, questionnaire):
    response = signed_in(staff["nurse"]).get(url(questionnaire, "export/?version=1"))

    assert response["Content-Disposition"] == 'attachment; filename="post-discharge-v1.json"'
    assert json.loads(response.content) == json.loads(json.dumps(questionnaire_resource(current(questionnaire))))


def test_an_uploaded_fhir_questionnaire_is_imported(head, questionnaire):
    resource = questionnaire_resource(current(questionnaire))
    resource["identifier"][0]["value"] = "copied"
    resource["url"] = "urn:hcrm:Questionnaire:copied"
    upload = SimpleUploadedFile("q.json", json.dumps(resource).encode(), content_type="application/json")

    response = head.post("/followups/questionnaires/import/", {"file": upload})

    copied = Questionnaire.objects.get(code="copied")
    assert response.status_code == 302
    assert copied.current_version.items == samples.ITEMS


def test_an_invalid_upload_names_the_element(head):
    resource = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [{"linkId": "a", "type": "boolean"}],
        "name": "X",
    }
    upload = SimpleUploadedFile("q.json", json.dumps(resource).encode(), content_type="application/json")

    response = head.post("/followups/questionnaires/import/", {"file": upload})

    assert "Questionnaire.item[0].text: A question needs its text." in response.content.decode()
    assert Questionnaire.objects.count() == 0


# --- The reusable form helpers --------------------------------------------------------------------------


def test_answers_are_read_from_a_posted_form_by_linkid():
    from django.http import QueryDict

    from followups.forms import answers_from_post

    data = QueryDict(mutable=True)
    data.update({"q-pain": "是", "q-pain_level": " 7 ", "q-sleep": "", "q-name": "张三", "q-intro": "x", "csrf": "t"})
    data.setlist("q-symptoms", ["cough", "", "fever"])

    assert answers_from_post(samples.ITEMS, data) == {
        "pain": True,
        "pain_level": "7",
        "symptoms": ["cough", "fever"],
        "name": "张三",
    }


def test_form_rows_carry_values_choices_and_errors():
    from followups.forms import form_rows

    rows = form_rows(
        samples.ITEMS, {"pain": True, "symptoms": ["fever"], "sleep": "fair"}, {"pain_level": ["At most 10."]}
    )

    general, sleep, symptoms = rows[1], rows[2], rows[3]
    pain, level = general["children"]
    assert (pain["kind"], pain["value"], pain["required"]) == ("boolean", "true", True)
    assert (level["kind"], level["steps"][:3], level["error"]) == ("slider", ["0", "1", "2"], "At most 10.")
    assert json.loads(level["enable_when"]) == {
        "behavior": "all",
        "conditions": [{"question": "pain", "operator": "=", "answerBoolean": True}],
    }
    assert [(option["code"], option["checked"]) for option in sleep["options"]] == [
        ("good", False),
        ("fair", True),
        ("poor", False),
    ]
    assert (symptoms["kind"], [option["checked"] for option in symptoms["options"]]) == (
        "multiple",
        [False, True, False],
    )


def test_a_department_head_cannot_change_a_questionnaire_meant_for_every_department(head, staff):
    shared = questionnaire_save(actor=None, data={"code": "satisfaction", "title": "满意度", "purpose": "satisfaction"})
    questionnaire_version_save(actor=None, questionnaire=shared, items=samples.items(), scoring={})

    page = head.get(url(shared)).content.decode()
    added = head.post(url(shared, "items/new/"), item_post())
    renamed = head.post(url(shared, "edit/"), {"code": "satisfaction", "title": "改", "purpose": "satisfaction"})
    by_administrator = signed_in(staff["administrator"]).post(url(shared, "items/new/"), item_post())

    assert ("Add item" in page, "Edit details" in page) == (False, False)
    assert (added.status_code, renamed.status_code, by_administrator.status_code) == (403, 403, 302)
    assert len(current(shared).items) == 9
    assert Questionnaire.objects.get(pk=shared.pk).title == "满意度"
