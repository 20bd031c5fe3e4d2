"""The built-in questionnaires: their structure, worked examples of their scoring, and loading them."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.utils import timezone
from fhir.resources.R4B.questionnaire import Questionnaire as FhirQuestionnaire

from followups.builtin import BUILTINS, constitution, hypertension, outpatient_satisfaction
from followups.builtin._items import ORDINAL, TRANSLATION
from followups.models import Questionnaire, QuestionnaireResponse, QuestionnaireVersion
from followups.scoring import ANSWER_TYPES, enabled_items, option_code, option_score, scores_compute, walk

ITEM_TYPES = ANSWER_TYPES | {"group", "display"}


def english(element: dict) -> str:
    for extension in element.get("extension") or ():
        if extension["url"] == TRANSLATION:
            parts = {part["url"]: part.get("valueCode", part.get("valueString")) for part in extension["extension"]}
            if parts["lang"] == "en":
                return parts["content"]
    return ""


def scores(code: str, answers: dict) -> dict:
    definition = BUILTINS[code]
    return scores_compute(definition["items"], definition["scoring"], answers)


def summary(result: dict, code: str) -> tuple:
    return result[code]["value"], result[code]["band_en"], result[code]["flag"]


# --- Structure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(BUILTINS))
def test_every_item_has_a_unique_link_id_a_known_type_and_chinese_and_english_text(code):
    items = walk(BUILTINS[code]["items"])

    link_ids = [item["linkId"] for item in items]
    assert len(link_ids) == len(set(link_ids))
    assert {item["type"] for item in items} <= ITEM_TYPES
    assert [item["linkId"] for item in items if not item["text"] or not english(item["_text"])] == []
    for item in items:
        for option in item.get("answerOption") or ():
            coding = option["valueCoding"]
            assert coding["code"] and coding["display"] and english(coding["_display"]), (item["linkId"], coding)
        assert bool(item.get("answerOption")) == (item["type"] == "choice"), item["linkId"]


@pytest.mark.parametrize("code", list(BUILTINS))
def test_the_items_are_a_valid_fhir_r4_questionnaire_item_tree(code):
    resource = {"resourceType": "Questionnaire", "status": "active", "title": BUILTINS[code]["title"]}

    parsed = FhirQuestionnaire.model_validate(resource | {"item": BUILTINS[code]["items"]})

    assert len(parsed.item) == len(BUILTINS[code]["items"])


@pytest.mark.parametrize("code", list(BUILTINS))
def test_every_scored_item_exists_and_every_option_of_a_scored_choice_has_an_ordinal_value(code):
    by_link = {item["linkId"]: item for item in walk(BUILTINS[code]["items"])}

    for rule in BUILTINS[code]["scoring"]["scores"]:
        assert rule["method"] in ("sum", "mean", "transformed")
        assert rule["label"] and rule["label_en"]
        for link_id in rule["items"]:
            item = by_link[link_id]
            assert item["type"] in ("choice", "integer", "decimal", "boolean"), link_id
            if item["type"] == "choice":
                assert all(
                    option["extension"][0]["url"] == ORDINAL and option_score(option) is not None
                    for option in item["answerOption"]
                ), link_id
        assert set(rule.get("reverse") or ()) <= set(rule["items"])


@pytest.mark.parametrize("code", list(BUILTINS))
def test_enable_when_refers_to_an_earlier_item_and_to_one_of_its_options(code):
    items = walk(BUILTINS[code]["items"])
    seen: dict[str, dict] = {}

    for item in items:
        for condition in item.get("enableWhen") or ():
            question = seen[condition["question"]]  # KeyError: a later or unknown item
            if "answerCoding" in condition:
                codes = {option_code(option) for option in question["answerOption"]}
                assert condition["answerCoding"]["code"] in codes
            if "answerBoolean" in condition:
                assert question["type"] == "boolean"
        seen[item["linkId"]] = item


@pytest.mark.parametrize("code", list(BUILTINS))
def test_every_band_is_labelled_in_both_languages_and_uses_a_known_flag(code):
    for rule in BUILTINS[code]["scoring"]["scores"]:
        for band in rule.get("bands") or ():
            assert band["label"] and band["label_en"]
            assert band.get("flag", "") in ("", "warning", "alert")


# --- Satisfaction ------------------------------------------------------------------------------

OUTPATIENT_ANSWERS = {
    "department": "NK",
    "doctor": "doctor",
    "reg_booking": "5",
    "reg_waiting": "2",
    "doc_explanation": "5",
    "doc_attitude": "4",
    "doc_patience": "3",
    "nurse_attitude": "4",
    "nurse_guidance": "4",
    "env_clean": "3",
    "env_signs": "4",
    "pharm_wait": "2",
    "used_decoction": True,
    "pharm_decoction": "5",
    "cost_transparency": "3",
    "dept_overall": "4",
    "recommend": "9",
    "comments": "候诊时间太长",
}


def test_outpatient_satisfaction_gives_the_mean_per_domain_the_overall_mean_and_the_nps_category():
    result = scores("outpatient-satisfaction", OUTPATIENT_ANSWERS)

    # 5+2+5+4+3+4+4+3+4+2+5+3+4 = 48 over 13 items.
    assert summary(result, "satisfaction") == (3.69, "Neutral", "")
    assert result["satisfaction"]["answered"] == 13
    assert summary(result, "registration") == (3.5, "Neutral", "")
    assert summary(result, "doctor") == (4.0, "Satisfied", "")
    assert summary(result, "nursing") == (4.0, "Satisfied", "")
    assert summary(result, "environment") == (3.5, "Neutral", "")
    assert summary(result, "pharmacy") == (3.5, "Neutral", "")
    assert summary(result, "costs") == (3.0, "Neutral", "")
    assert summary(result, "department") == (4.0, "Satisfied", "")
    assert summary(result, "recommend") == (9.0, "Promoter", "")


def test_the_decoction_item_counts_only_for_patients_who_used_the_service():
    answers = {**OUTPATIENT_ANSWERS, "used_decoction": False}

    result = scores("outpatient-satisfaction", answers)

    # pharm_decoction (5) is hidden and dropped: 43 over 12 items.
    assert summary(result, "satisfaction") == (3.58, "Neutral", "")
    assert summary(result, "pharmacy") == (2.0, "Dissatisfied", "alert")
    shown = [item["linkId"] for item in enabled_items(BUILTINS["outpatient-satisfaction"]["items"], answers)]
    assert "pharm_decoction" not in shown


@pytest.mark.parametrize(
    ("answer", "category", "flag"),
    [("10", "Promoter", ""), ("9", "Promoter", ""), ("8", "Passive", ""), ("7", "Passive", ""),
     ("6", "Detractor", "warning"), ("0", "Detractor", "warning")],
)  # fmt: skip
def test_the_recommendation_falls_in_the_nps_category_of_its_score(answer, category, flag):
    result = scores("inpatient-satisfaction", {"recommend": answer})

    assert summary(result, "recommend") == (float(answer), category, flag)


def test_inpatient_satisfaction_all_dissatisfied_is_flagged_for_attention():
    definition = BUILTINS["inpatient-satisfaction"]
    rated = [item["linkId"] for item in walk(definition["items"]) if item.get("answerOption") is not None]
    answers = {link_id: "2" for link_id in rated if link_id != "recommend"} | {"took_decoction": True}

    result = scores("inpatient-satisfaction", {**answers, "recommend": "3"})

    assert summary(result, "satisfaction") == (2.0, "Dissatisfied", "alert")
    assert result["satisfaction"]["answered"] == 14
    assert summary(result, "recommend") == (3.0, "Detractor", "warning")


def test_the_rated_department_and_doctor_are_hidden_answers_filled_from_the_task():
    answers = outpatient_satisfaction.context_answers(department="NK", doctor="doctor")

    hidden = [item["linkId"] for item in BUILTINS["outpatient-satisfaction"]["items"] if item.get("extension")]
    assert answers == {"department": "NK", "doctor": "doctor"}
    assert hidden == ["department", "doctor"]


# --- Post-discharge ----------------------------------------------------------------------------


def test_a_red_flag_symptom_raises_an_alert_and_ordinary_symptoms_do_not():
    base = {"recovery": "better", "has_symptoms": True, "medication": "as_prescribed", "wants_visit": False}

    fever = scores("post-discharge", {**base, "symptoms": ["fever", "poor_sleep"]})
    tired = scores("post-discharge", {**base, "symptoms": ["fatigue", "poor_sleep"]})

    assert summary(fever, "red_flags") == (1.0, "Red-flag symptoms", "alert")
    assert summary(tired, "red_flags") == (0.0, "No red-flag symptoms", "")
    assert summary(tired, "attention") == (0.0, "Recovering as expected", "")


def test_symptoms_are_asked_only_when_the_patient_has_some_and_decoctions_only_when_prescribed():
    answers = {
        "recovery": "worse",
        "has_symptoms": False,
        "symptoms": ["chest_pain", "bleeding"],
        "medication": "stopped",
        "decoction_prescribed": False,
        "decoction_taking": "stopped",
        "wants_visit": True,
    }

    result = scores("post-discharge", answers)
    shown = [item["linkId"] for item in enabled_items(BUILTINS["post-discharge"]["items"], answers)]

    assert "red_flags" not in result
    # worse 1 + stopped medicines 1 + wants a visit 1; the hidden decoction answer does not count.
    assert summary(result, "attention") == (3.0, "Needs a doctor's attention", "warning")
    assert shown == ["recovery", "has_symptoms", "medication", "decoction_prescribed", "diet", "exercise",
                     "wants_visit", "visit_reason", "comments"]  # fmt: skip


# --- Hypertension ------------------------------------------------------------------------------


def pressure(systolic: int, diastolic: int) -> dict:
    result = scores("hypertension", {"sbp": systolic, "dbp": diastolic})
    return {code: (result[code]["band_en"], result[code]["flag"]) for code in ("sbp", "dbp")}


def test_hypertension_flags_uncontrolled_pressure_and_danger_at_the_referral_thresholds():
    assert pressure(150, 95) == {"sbp": ("Not controlled", "warning"), "dbp": ("Not controlled", "warning")}
    assert pressure(185, 100) == {"sbp": ("Danger: refer urgently", "alert"), "dbp": ("Not controlled", "warning")}
    assert pressure(130, 112) == {"sbp": ("Controlled", ""), "dbp": ("Danger: refer urgently", "alert")}
    assert pressure(139, 89) == {"sbp": ("Controlled", ""), "dbp": ("Controlled", "")}
    assert pressure(140, 90) == {"sbp": ("Not controlled", "warning"), "dbp": ("Not controlled", "warning")}
    assert pressure(179, 109) == {"sbp": ("Not controlled", "warning"), "dbp": ("Not controlled", "warning")}
    assert pressure(180, 110) == {
        "sbp": ("Danger: refer urgently", "alert"),
        "dbp": ("Danger: refer urgently", "alert"),
    }


def test_a_hypertension_visit_with_danger_signs_symptoms_overweight_and_irregular_medicines():
    answers = {
        "sbp": 165,
        "dbp": 98,
        "heart_rate": 88,
        "weight": 72.5,
        "height": 165,
        "bmi": 26.6,
        "danger_signs": ["headache", "vision"],
        "symptoms": ["headache_dizziness", "vision_tinnitus", "numbness"],
        "smoking": 10,
        "salt": "heavy",
        "adherence": "intermittent",
        "adverse_reaction": False,
        "adverse_reaction_detail": "干咳",
        "classification": "uncontrolled",
        "referral": True,
        "referral_reason": "剧烈头痛，视力模糊",
    }

    result = scores("hypertension", answers)
    shown = {item["linkId"] for item in enabled_items(BUILTINS["hypertension"]["items"], answers)}

    assert summary(result, "danger_signs") == (2.0, "Refer urgently", "alert")
    assert summary(result, "symptoms") == (3.0, "Symptoms", "warning")
    assert summary(result, "bmi") == (26.6, "Overweight", "warning")
    assert summary(result, "adherence") == (2.0, "Intermittent", "warning")
    assert "adverse_reaction_detail" not in shown
    assert {"referral_reason", "referral_to"} <= shown


def test_no_danger_sign_and_no_symptom_score_zero():
    result = scores(
        "hypertension", {"danger_signs": ["none"], "symptoms": ["none"], "adherence": "regular", "bmi": 23.9}
    )

    assert summary(result, "danger_signs") == (0.0, "None", "")
    assert summary(result, "symptoms") == (0.0, "No symptoms", "")
    assert summary(result, "adherence") == (1.0, "Regular", "")
    assert summary(result, "bmi") == (23.9, "Normal", "")


def test_hypertension_is_followed_at_least_four_times_a_year():
    assert hypertension.SCHEDULE == {"visits_per_year": 4, "days_after_uncontrolled": 14}
    assert BUILTINS["hypertension"]["disease_codes"] == ["I10", "I11", "I12", "I13", "I15"]


# --- Type 2 diabetes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glucose", "band", "flag"),
    [
        ("3.8", "Danger (low): refer urgently", "alert"),
        ("3.9", "Danger (low): refer urgently", "alert"),
        ("4.0", "Controlled", ""),
        ("6.9", "Controlled", ""),
        ("7.0", "Not controlled", "warning"),
        ("16.6", "Not controlled", "warning"),
        ("16.7", "Danger (high): refer urgently", "alert"),
        ("22.4", "Danger (high): refer urgently", "alert"),
    ],
)
def test_fasting_glucose_is_flagged_from_seven_and_a_danger_at_or_beyond_the_referral_thresholds(glucose, band, flag):
    result = scores("diabetes", {"fpg": glucose})

    assert summary(result, "fpg") == (float(glucose), band, flag)


def test_a_diabetes_visit_with_frequent_hypoglycaemia_a_weak_foot_pulse_and_insulin():
    answers = {
        "danger_signs": ["none"],
        "symptoms": ["polydipsia", "polyuria"],
        "dorsalis_pedis": "weak_left",
        "bmi": 28.4,
        "fpg": "8.2",
        "adherence": "regular",
        "insulin": True,
        "insulin_type": "甘精胰岛素",
        "hypoglycaemia": "frequent",
    }

    result = scores("diabetes", answers)
    shown = {item["linkId"] for item in enabled_items(BUILTINS["diabetes"]["items"], answers)}

    assert summary(result, "fpg") == (8.2, "Not controlled", "warning")
    assert summary(result, "danger_signs") == (0.0, "None", "")
    assert summary(result, "symptoms") == (2.0, "Symptoms", "warning")
    assert summary(result, "dorsalis_pedis") == (1.0, "Weak", "warning")
    assert summary(result, "hypoglycaemia") == (2.0, "Frequent", "alert")
    assert summary(result, "bmi") == (28.4, "Obese", "warning")
    assert summary(result, "adherence") == (1.0, "Regular", "")
    assert {"insulin_type", "insulin_dose"} <= shown
    assert "adverse_reaction_detail" not in shown


# --- TCM constitution --------------------------------------------------------------------------


def scale_items(answers: dict) -> list[str]:
    return [
        item["linkId"]
        for item in enabled_items(BUILTINS["tcm-constitution"]["items"], answers)
        if item["type"] == "choice" and item["linkId"] != "sex"
    ]


def test_the_constitution_questionnaire_asks_sixty_questions_with_the_sex_specific_one_for_each_sex():
    women, men = scale_items({"sex": "female"}), scale_items({"sex": "male"})

    assert len(women) == len(men) == 60
    assert set(women) ^ set(men) == {"dampheat6f", "dampheat6m"}
    assert "dampheat6f" in women


def test_each_constitution_counts_the_standard_number_of_items_including_shared_ones():
    counts = {}
    for rule in BUILTINS["tcm-constitution"]["scoring"]["scores"]:
        counts.setdefault(rule["code"], set()).add(len(rule["items"]))

    assert counts == {
        "balanced": {8}, "qi_deficiency": {8}, "yang_deficiency": {7}, "yin_deficiency": {8},
        "phlegm_dampness": {8}, "damp_heat": {6}, "blood_stasis": {7}, "qi_stagnation": {7}, "inherited_special": {7},
    }  # fmt: skip
    balanced = BUILTINS["tcm-constitution"]["scoring"]["scores"][0]
    # 平和质 (2)(3)(4)(5)(7)(8) are the questions of 气虚质 (1)(7), 气郁质 (1), 阳虚质 (4), and 血瘀质 (6).
    assert balanced["reverse"] == ["qi1", "qi7", "stagnation1", "yang4", "balanced7", "stasis6"]
    by_link = {item["linkId"]: item["text"] for item in walk(BUILTINS["tcm-constitution"]["items"])}
    assert [by_link[link_id] for link_id in balanced["reverse"]] == [
        "您容易疲乏吗？",
        "您说话声音低弱无力吗？",
        "您感到闷闷不乐、情绪低沉吗？",
        "您比一般人耐受不了寒冷（冬天的寒冷，夏天的冷空调、电扇等）吗？",
        "您容易失眠吗？",
        "您容易忘事（健忘）吗？",
    ]


def test_the_sex_is_taken_from_the_patient_when_the_record_has_it(patient):
    patient.sex = "female"
    assert constitution.initial_answers(patient) == {"sex": "female"}
    patient.sex = "unknown"
    assert constitution.initial_answers(patient) == {}


# --- Loading -----------------------------------------------------------------------------------


def load() -> str:
    out = io.StringIO()
    call_command("load_questionnaires", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_loading_creates_every_built_in_once_as_an_active_version_one():
    first = load()
    second = load()

    assert first == "Built-in questionnaires: 6 created, 0 updated, 0 new version, 0 unchanged.\n"
    assert second == "Built-in questionnaires: 0 created, 0 updated, 0 new version, 6 unchanged.\n"
    rows = Questionnaire.objects.order_by("code").values_list(
        "code", "purpose", "status", "is_builtin", "current_version__number"
    )
    assert list(rows) == [
        ("diabetes", "clinical", "active", True, 1),
        ("hypertension", "clinical", "active", True, 1),
        ("inpatient-satisfaction", "satisfaction", "active", True, 1),
        ("outpatient-satisfaction", "satisfaction", "active", True, 1),
        ("post-discharge", "clinical", "active", True, 1),
        ("tcm-constitution", "constitution", "active", True, 1),
    ]
    version = QuestionnaireVersion.objects.get(questionnaire__code="hypertension")
    assert (version.items, version.scoring) == (BUILTINS["hypertension"]["items"], BUILTINS["hypertension"]["scoring"])


@pytest.mark.django_db
def test_a_changed_definition_updates_an_unanswered_version_in_place_and_versions_an_answered_one(patient):
    load()
    diabetes = QuestionnaireVersion.objects.get(questionnaire__code="diabetes")
    diabetes.items = diabetes.items[:1]
    diabetes.save()
    answered = QuestionnaireVersion.objects.get(questionnaire__code="hypertension")
    answered.items = answered.items[:1]
    answered.save()
    QuestionnaireResponse.objects.create(
        version=answered, patient=patient, status="completed", answers={"sbp": 150}, completed_at=timezone.now()
    )
    Questionnaire.objects.filter(code="post-discharge").update(status="retired", title="改过的标题")

    output = load()

    assert output == "Built-in questionnaires: 0 created, 1 updated, 1 new version, 4 unchanged.\n"
    diabetes = Questionnaire.objects.get(code="diabetes")
    assert list(diabetes.versions.values_list("number", flat=True)) == [1]
    assert diabetes.current_version.items == BUILTINS["diabetes"]["items"]
    hypertension_ = Questionnaire.objects.get(code="hypertension")
    assert list(hypertension_.versions.values_list("number", flat=True)) == [2, 1]
    assert hypertension_.current_version.number == 2
    assert hypertension_.current_version.items == BUILTINS["hypertension"]["items"]
    assert len(QuestionnaireVersion.objects.get(questionnaire=hypertension_, number=1).items) == 1
    retired = Questionnaire.objects.get(code="post-discharge")
    assert (retired.status, retired.title) == ("retired", "出院后随访")


@pytest.mark.django_db
def test_the_demo_hospital_has_the_built_in_questionnaires():
    out = io.StringIO()
    call_command("seed_demo", patients=1, seed=7, no_progress=True, stdout=out)

    assert "6 built-in questionnaires created (6 in all)" in out.getvalue()
    assert set(Questionnaire.objects.values_list("code", flat=True)) == set(BUILTINS)
