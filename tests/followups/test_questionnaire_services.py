"""Questionnaire services: metadata, item checks naming the item, versions, responses and their scores."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from followups.models import Questionnaire, QuestionnaireResponse, QuestionnaireVersion
from followups.services import questionnaire_save, questionnaire_version_save, response_save
from hcrm.models import AuditEntry
from tests.factories import PatientFactory
from tests.followups import samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def head(staff):
    return staff["department_head"]


@pytest.fixture
def questionnaire(head, internal_medicine):
    return questionnaire_save(
        actor=head,
        data={
            "code": "post-discharge",
            "title": "出院随访",
            "purpose": "clinical",
            "departments": [internal_medicine],
            "disease_codes": "i10, e11",
        },
    )


@pytest.fixture
def version(head, questionnaire):
    return questionnaire_version_save(
        actor=head, questionnaire=questionnaire, items=samples.items(), scoring=samples.scoring()
    )


def errors_of(call, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call(**kwargs)
    return caught.value.message_dict


def check(items, scoring=None) -> dict[str, list[str]]:
    return errors_of(
        questionnaire_version_save, actor=None, questionnaire=Questionnaire(), items=items, scoring=scoring
    )


# --- Metadata -------------------------------------------------------------------------------------------


def test_a_questionnaire_is_saved_with_its_scope(questionnaire, internal_medicine):
    questionnaire.refresh_from_db()

    assert (questionnaire.code, questionnaire.title, questionnaire.purpose, questionnaire.status) == (
        "post-discharge",
        "出院随访",
        "clinical",
        "draft",
    )
    assert questionnaire.disease_codes == ["I10", "E11"]
    assert list(questionnaire.departments.all()) == [internal_medicine]


def test_a_questionnaire_needs_a_known_purpose_and_a_unique_code(head, questionnaire):
    errors = errors_of(
        questionnaire_save,
        actor=head,
        data={"code": "post-discharge", "title": "x", "purpose": "marketing", "departments": ["NK"]},
    )

    assert set(errors) == {"code", "purpose"}
    assert Questionnaire.objects.count() == 1


def test_changing_a_questionnaire_is_audited(head, questionnaire):
    questionnaire_save(actor=head, questionnaire=questionnaire, data={"status": "active"})

    entry = (
        AuditEntry.objects.filter(
            object_pk=str(questionnaire.pk), content_type__model="questionnaire", action=AuditEntry.Action.UPDATE
        )
        .order_by("pk")
        .last()
    )
    assert entry.actor == head
    assert entry.changes_dict == {"status": ["draft", "active"]}


# --- Item checks ----------------------------------------------------------------------------------------


def test_the_sample_items_are_accepted_as_version_one(version, questionnaire):
    questionnaire.refresh_from_db()

    assert (version.number, questionnaire.current_version) == (1, version)
    assert version.items == samples.ITEMS
    assert version.scoring == samples.SCORING


def test_a_linkid_used_twice_is_named():
    items = samples.items()
    items[2]["linkId"] = "pain"

    assert check(items) == {
        "pain.linkId": ["The linkId pain is used twice."],
        "notes.enableWhen[0].question": ["The condition refers to sleep, which is not an earlier item."],
    }


def test_an_unsupported_type_is_named_with_its_path():
    items = samples.items()
    items[1]["item"].append({"linkId": "photo", "type": "attachment", "text": "照片"})

    errors = check(items)

    assert list(errors) == ["general/photo.type"]
    assert errors["general/photo.type"][0].startswith("Type attachment is not supported")


def test_answer_option_codes_are_unique():
    items = samples.items()
    items[2]["answerOption"][1]["valueCoding"]["code"] = "good"

    assert check(items) == {"sleep.answerOption[1]": ["The answer option code good is used twice."]}


def test_a_score_that_is_not_a_number_is_named_by_its_element():
    items = samples.items()
    items[2]["answerOption"][2]["extension"][0]["valueDecimal"] = "many"

    assert list(check(items)) == ["sleep.answerOption[2].extension[0].valueDecimal"]


def test_a_condition_must_refer_to_an_earlier_item():
    items = samples.items()
    items[1]["item"][1]["enableWhen"][0]["question"] = "sleep"

    errors = check(items)

    assert errors == {
        "general/pain_level.enableWhen[0].question": ["The condition refers to sleep, which is not an earlier item."]
    }


def test_a_condition_answer_must_fit_the_question():
    items = samples.items()
    items[1]["item"][1]["enableWhen"][0] = {"question": "pain", "operator": "=", "answerInteger": 3}
    items[-1]["enableWhen"][0]["answerCoding"] = {"code": "awful"}

    assert check(items) == {
        "general/pain_level.enableWhen[0].answer": ["answerInteger does not fit the boolean item pain."],
        "notes.enableWhen[0].answer": ["awful is not an option of sleep."],
    }


def test_ordering_operators_need_numbers_or_dates_and_unknown_operators_are_refused():
    items = samples.items()
    items[1]["item"][1]["enableWhen"][0]["operator"] = ">"
    items[-1]["enableWhen"][1]["operator"] = "~"

    errors = check(items)

    assert errors["general/pain_level.enableWhen[0].operator"] == [
        "> compares numbers or dates; pain is a boolean item."
    ]
    assert errors["notes.enableWhen[1].operator"][0].startswith("Operator ~ is not supported")


def test_two_conditions_need_any_or_all():
    items = samples.items()
    del items[-1]["enableBehavior"]

    assert check(items) == {"notes.enableBehavior": ["With more than one condition, say whether any or all must hold."]}


def test_a_slider_integer_needs_its_range_and_a_slider_choice_needs_scores():
    items = samples.items()
    items[1]["item"][1]["extension"] = [samples.SLIDER]
    items[2]["extension"] = [samples.SLIDER]
    del items[2]["answerOption"][0]["extension"]

    assert check(items) == {
        "general/pain_level.extension": ["A scale needs a minimum and a maximum."],
        "sleep.answerOption": ["Every option of a scale needs a score."],
    }


def test_scoring_rules_refer_to_scored_items_and_known_methods():
    scoring = samples.scoring()
    scoring["scores"][0]["items"] = ["pain_level", "name", "nothing"]
    scoring["scores"][0]["method"] = "median"

    errors = check(samples.items(), scoring)

    assert errors["scoring.scores[0].items"] == [
        "name carries no score.",
        "nothing is not an item of this questionnaire.",
    ]
    assert errors["scoring.scores[0].method"][0].startswith("Method median is not supported")


def test_bands_may_not_overlap():
    scoring = samples.scoring()
    scoring["scores"][0]["bands"][1]["min"] = 5

    assert check(samples.items(), scoring) == {"scoring.scores[0].bands[1]": ["This band overlaps band 1."]}


def test_refused_items_leave_the_version_as_it_was(head, questionnaire, version):
    items = samples.items()
    items[0]["type"] = "video"

    with pytest.raises(ValidationError):
        questionnaire_version_save(actor=head, questionnaire=questionnaire, items=items, scoring={})

    version.refresh_from_db()
    assert version.items == samples.ITEMS
    assert QuestionnaireVersion.objects.count() == 1


# --- Versions -------------------------------------------------------------------------------------------


def test_a_version_without_responses_is_edited_in_place(head, questionnaire, version):
    items = samples.items()
    items[0]["text"] = "谢谢配合"

    saved = questionnaire_version_save(actor=head, questionnaire=questionnaire, items=items, scoring={})

    assert saved.pk == version.pk
    assert (saved.number, saved.items[0]["text"], saved.scoring) == (1, "谢谢配合", {})


def test_a_version_with_responses_is_kept_and_the_next_one_becomes_current(head, questionnaire, version, patient):
    answered = response_save(version=version, patient=patient, answers={"pain": False}, source="phone", complete=True)
    items = samples.items()
    items[0]["text"] = "谢谢配合"

    saved = questionnaire_version_save(actor=head, questionnaire=questionnaire, items=items, scoring={})

    questionnaire.refresh_from_db()
    version.refresh_from_db()
    answered.refresh_from_db()
    assert (saved.number, questionnaire.current_version, saved.created_by) == (2, saved, head)
    assert version.items[0]["text"] == "请回答以下问题"
    assert answered.version == version


# --- Responses ------------------------------------------------------------------------------------------


def test_a_complete_response_is_scored_and_answers_to_hidden_items_are_dropped(version, patient, staff):
    response = response_save(
        version=version,
        patient=patient,
        answers={
            "pain": False,
            "pain_level": 9,
            "sleep": "poor",
            "symptoms": ["cough", "fatigue"],
            "weight": "61.5",
            "visit": "2026-12-01",
            "name": " 张三 ",
            "notes": "夜间易醒",
        },
        source="phone",
        actor=staff["nurse"],
        complete=True,
    )

    response.refresh_from_db()
    assert response.answers == {
        "pain": False,
        "sleep": "poor",
        "symptoms": ["cough", "fatigue"],
        "weight": 61.5,
        "visit": "2026-12-01",
        "name": "张三",
        "notes": "夜间易醒",
    }
    assert response.scores == {
        "burden": {"value": 3.0, "raw": 3.0, "answered": 1, "band": "轻", "band_en": "", "flag": ""}
    }
    assert (response.status, response.answered_by, response.source) == ("completed", staff["nurse"], "phone")
    assert response.completed_at is not None


def test_an_enabled_required_item_must_be_answered_to_complete(version, patient):
    errors = errors_of(
        response_save, version=version, patient=patient, answers={"pain": True}, source="sms", complete=True
    )

    assert errors == {"pain_level": ["This question needs an answer."]}
    assert QuestionnaireResponse.objects.count() == 0


def test_an_unfinished_response_is_kept_without_scores_and_completed_later(version, patient):
    draft = response_save(version=version, patient=patient, answers={"pain": True}, source="sms", complete=False)

    done = response_save(
        version=version,
        patient=patient,
        answers={"pain": True, "pain_level": 8, "sleep": "fair"},
        source="sms",
        complete=True,
        response=draft,
    )

    assert (draft.status, draft.scores, draft.completed_at) == ("completed", done.scores, done.completed_at)
    assert done.scores["burden"]["value"] == 10.0
    assert done.scores["burden"]["flag"] == "alert"
    assert QuestionnaireResponse.objects.count() == 1


def test_answers_that_do_not_fit_are_named_by_linkid(version, patient):
    errors = errors_of(
        response_save,
        version=version,
        patient=patient,
        answers={
            "pain": "maybe",
            "pain_level": 11,
            "sleep": "great",
            "symptoms": "cough",
            "weight": "heavy",
            "visit": "12/01/2026",
            "intro": "x",
            "ghost": 1,
        },
        source="phone",
        complete=False,
    )

    assert errors == {
        "pain": ["Answer yes or no."],
        "pain_level": ["At most 10."],
        "sleep": ["great is not one of the options."],
        "weight": ["Give a number."],
        "visit": ["Give a date as YYYY-MM-DD."],
        "intro": ["intro is not a question of this questionnaire."],
        "ghost": ["ghost is not a question of this questionnaire."],
    }


def test_a_completed_response_cannot_change(version, patient):
    done = response_save(version=version, patient=patient, answers={"pain": False}, source="phone", complete=True)

    errors = errors_of(
        response_save,
        version=version,
        patient=patient,
        answers={"pain": True, "pain_level": 2},
        source="phone",
        complete=True,
        response=done,
    )

    done.refresh_from_db()
    assert errors == {"answers": ["This response is complete and can no longer change."]}
    assert done.answers == {"pain": False}


def test_recording_a_response_is_audited_under_the_patient(version, patient, staff):
    response = response_save(
        version=version, patient=patient, answers={"pain": False}, source="staff", actor=staff["doctor"], complete=True
    )

    entry = AuditEntry.objects.get(
        object_pk=str(response.pk), content_type__model="questionnaireresponse", action=AuditEntry.Action.CREATE
    )
    assert (entry.actor, entry.patient_uuid) == (staff["doctor"], patient.uuid)


@pytest.mark.django_db(transaction=True)
def test_an_edit_waits_for_a_response_being_recorded_and_then_makes_the_next_version(staff, internal_medicine):
    import threading

    from django.db import connection, connections, transaction

    if connection.vendor != "postgresql":
        pytest.skip("racing transactions need PostgreSQL's concurrent connections")
    questionnaire = questionnaire_save(actor=None, data={"code": "race", "title": "并发", "purpose": "clinical"})
    first = questionnaire_version_save(actor=None, questionnaire=questionnaire, items=samples.items(), scoring={})
    patient = PatientFactory(departments=[internal_medicine])
    recorded, edited = threading.Event(), []

    def edit() -> None:
        try:
            recorded.wait(10)
            items = samples.items()
            items[0]["text"] = "改"
            edited.append(questionnaire_version_save(actor=None, questionnaire=questionnaire, items=items, scoring={}))
        except Exception as error:  # reported to the test, not swallowed
            edited.append(error)
        finally:
            connections.close_all()

    editor = threading.Thread(target=edit)
    editor.start()
    with transaction.atomic():
        response_save(version=first, patient=patient, answers={"pain": False}, source="phone", complete=True)
        recorded.set()
        editor.join(0.5)
        # Still waiting for this transaction: the response is not committed yet.
        assert editor.is_alive()
    editor.join(10)

    first.refresh_from_db()
    assert (edited[0].number, first.items[0]["text"]) == (2, "请回答以下问题")


def test_changing_the_departments_of_a_questionnaire_is_audited(staff, questionnaire, acupuncture):
    administrator = staff["administrator"]

    questionnaire_save(actor=administrator, questionnaire=questionnaire, data={"departments": [acupuncture]})

    entries = AuditEntry.objects.filter(
        content_type__model="questionnaire", action=AuditEntry.Action.UPDATE, actor=administrator
    ).order_by("pk")
    assert [entry.changes_dict["departments"] for entry in entries] == [
        {"type": "m2m", "operation": "delete", "objects": ["内科"]},
        {"type": "m2m", "operation": "add", "objects": ["针灸科"]},
    ]


def test_a_department_head_keeps_questionnaires_within_their_departments(head, questionnaire, acupuncture):
    wider = errors_of(questionnaire_save, actor=head, questionnaire=questionnaire, data={"departments": []})
    elsewhere = errors_of(
        questionnaire_save, actor=head, data={"code": "x", "title": "x", "purpose": "clinical", "departments": ["ZJ"]}
    )

    assert (
        wider
        == elsewhere
        == {"departments": ["Choose one or more of your own departments; administrators scope questionnaires wider."]}
    )
    assert list(questionnaire.departments.values_list("code", flat=True)) == ["NK"]


def test_questionnaires_of_other_or_every_department_are_changed_by_administrators(staff, head, acupuncture):
    shared = questionnaire_save(actor=None, data={"code": "shared", "title": "全院", "purpose": "satisfaction"})
    theirs = questionnaire_save(
        actor=None, data={"code": "theirs", "title": "针灸", "purpose": "clinical", "departments": [acupuncture]}
    )

    for questionnaire in (shared, theirs):
        with pytest.raises(PermissionDenied):
            questionnaire_version_save(actor=head, questionnaire=questionnaire, items=samples.items(), scoring={})
        with pytest.raises(PermissionDenied):
            questionnaire_save(actor=head, questionnaire=questionnaire, data={"title": "改"})
        questionnaire_version_save(
            actor=staff["administrator"], questionnaire=questionnaire, items=samples.items(), scoring={}
        )

    assert [q.title for q in Questionnaire.objects.filter(code__in=["shared", "theirs"]).order_by("code")] == [
        "全院",
        "针灸",
    ]
    assert QuestionnaireVersion.objects.filter(created_by=staff["administrator"]).count() == 2


def test_items_of_the_wrong_shape_are_named_not_crashed_on():
    items = samples.items()
    items[2]["answerOption"][0]["valueCoding"] = "good"
    items[1]["item"][1]["enableWhen"][0]["answerBoolean"] = [True]
    items[6]["colour"] = "red"

    errors = check(items)

    assert set(errors) == {
        "sleep.answerOption[0].valueCoding",
        "general/pain_level.enableWhen[0].answerBoolean",
        "name.colour",
    }
    assert errors["name.colour"] == ["Unknown element."]


def test_scoring_rules_of_the_wrong_shape_are_named():
    scoring = {"scores": [{"code": ["x"], "items": [{"linkId": "sleep"}], "min": "low", "reverse": "sleep"}]}

    assert check(samples.items(), scoring) == {
        "scoring.scores[0].code": ["Every score needs a code."],
        "scoring.scores[0].items": ["A score needs the linkIds of the items it adds up."],
        "scoring.scores[0].reverse": ["Reverse-scored items are a list of linkIds."],
        "scoring.scores[0].min": ["The item minimum and maximum must be numbers."],
    }
