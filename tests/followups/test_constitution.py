"""The judgement of 中医体质分类与判定 (ZYYXH/T 157-2009) and the constitution stored on the patient."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.utils import timezone

from followups.builtin import BUILTINS
from followups.builtin.constitution import CONSTITUTIONS
from followups.constitution import constitution_judge
from followups.models import PatientConstitution, Questionnaire, QuestionnaireResponse
from followups.scoring import scores_compute
from followups.selectors import patient_constitution
from followups.services import builtin_questionnaires_load, constitution_record, response_save
from hcrm.models import User
from patients.timeline import patient_timeline

DEFINITION = BUILTINS["tcm-constitution"]


def judged(balanced: float, **biased: float) -> tuple:
    scores = dict.fromkeys(CONSTITUTIONS, 0.0) | {"balanced": balanced} | biased
    result = constitution_judge(scores)
    return result.judgements["balanced"], result.primary, result.secondary


# --- The standard's judgement ------------------------------------------------------------------


def test_balanced_at_sixty_with_every_biased_type_under_thirty_is_yes():
    assert judged(60, qi_deficiency=29.99, damp_heat=12.5) == ("yes", "balanced", [])


def test_balanced_with_one_biased_type_at_thirty_five_is_basically_yes_with_that_tendency():
    result = constitution_judge(dict.fromkeys(CONSTITUTIONS, 0.0) | {"balanced": 75, "yin_deficiency": 35})

    assert (result.judgements["balanced"], result.primary, result.secondary) == (
        "basically",
        "balanced",
        ["yin_deficiency"],
    )
    assert result.judgements["yin_deficiency"] == "tending"


def test_balanced_with_one_biased_type_at_forty_five_is_no_and_that_type_is_primary():
    assert judged(81.25, phlegm_dampness=45, qi_deficiency=31) == ("no", "phlegm_dampness", ["qi_deficiency"])


def test_balanced_under_sixty_is_no_whatever_the_biased_types():
    assert judged(59.99) == ("no", "", [])
    assert judged(59.99, blood_stasis=30) == ("no", "blood_stasis", [])


@pytest.mark.parametrize(
    ("score", "judgement", "balanced"),
    [(40, "yes", "no"), (39.99, "tending", "basically"), (30, "tending", "basically"), (29.99, "no", "yes")],
)
def test_biased_types_are_yes_from_forty_tending_from_thirty_and_the_balanced_judgement_follows(
    score, judgement, balanced
):
    result = constitution_judge(dict.fromkeys(CONSTITUTIONS, 0.0) | {"balanced": 62.5, "qi_stagnation": score})

    assert result.judgements["qi_stagnation"] == judgement
    assert result.judgements["balanced"] == balanced


def test_the_highest_yes_is_primary_and_the_others_that_lean_follow_by_score():
    assert judged(40, yang_deficiency=42.86, inherited_special=60.71, qi_deficiency=46.88, yin_deficiency=37.5) == (
        "no",
        "inherited_special",
        ["qi_deficiency", "yang_deficiency", "yin_deficiency"],
    )


def test_with_no_type_at_yes_the_highest_tending_type_is_primary():
    assert judged(50, damp_heat=33.33, blood_stasis=39.29) == ("no", "blood_stasis", ["damp_heat"])


def test_equal_scores_keep_the_standards_order_of_the_types():
    assert judged(10, inherited_special=50, qi_deficiency=50) == ("no", "qi_deficiency", ["inherited_special"])


def test_a_missing_score_is_refused():
    with pytest.raises(ValueError, match="Scores missing for damp_heat"):
        constitution_judge({code: 0 for code in CONSTITUTIONS if code != "damp_heat"})


# --- Scoring the questionnaire -----------------------------------------------------------------


def answers_of(**groups: list[int]) -> dict:
    """Answers by linkId from the questions in the order of QUESTIONS: yang=[…] etc."""
    prefixes = {
        "yang": ["yang1", "yang2", "yang3", "yang4", "yang5", "yang6", "yang7"],
        "yin": [f"yin{n}" for n in range(1, 9)],
        "qi": ["qi1", "qi2", "qi3", "qi4", "qi6", "qi7", "qi8"],
        "phlegm": [f"phlegm{n}" for n in range(1, 9)],
        "dampheat": ["dampheat1", "dampheat2", "dampheat3", "dampheat4", "dampheat5", "dampheat6f"],
        "stasis": [f"stasis{n}" for n in range(1, 8)],
        "special": [f"special{n}" for n in range(1, 8)],
        "stagnation": [f"stagnation{n}" for n in range(1, 8)],
        "balanced": ["balanced1", "balanced6", "balanced7"],
    }
    answers = {}
    for name, values in groups.items():
        answers.update({link_id: str(value) for link_id, value in zip(prefixes[name], values, strict=True)})
    return answers


WOMAN = {"sex": "female"} | answers_of(
    yang=[4, 4, 3, 5, 2, 3, 3],
    yin=[2, 2, 2, 2, 2, 2, 2, 2],
    qi=[3, 2, 2, 3, 3, 2, 3],
    phlegm=[1, 1, 1, 1, 1, 1, 1, 1],
    dampheat=[2, 3, 1, 2, 2, 3],
    stasis=[1, 1, 2, 2, 3, 3, 1],
    special=[3, 3, 3, 3, 3, 3, 3],
    stagnation=[2, 3, 3, 2, 1, 2, 1],
    balanced=[3, 4, 2],
)


def transformed(answers: dict) -> dict[str, float]:
    return {
        code: score["value"]
        for code, score in scores_compute(DEFINITION["items"], DEFINITION["scoring"], answers).items()
    }


def test_a_full_answer_set_gives_the_standards_transformed_scores():
    assert len(WOMAN) == 61  # the sex and 60 questions

    assert transformed(WOMAN) == {
        # 平和: 3 + (6−3) + (6−2) + (6−2) + (6−5) + 4 + (6−2) + (6−3) = 26 → (26 − 8) / 32 × 100.
        "balanced": 56.25,
        # 气虚 counts 疲乏 3, 气短 2, 心慌 2, 头晕 3, 感冒 (阳虚 5) 2, 懒言 3, 声低 2, 虚汗 3 = 20.
        "qi_deficiency": 37.5,
        "yang_deficiency": 60.71,  # 24 → 17 / 28 × 100
        "yin_deficiency": 25.0,
        "phlegm_dampness": 0.0,
        "damp_heat": 29.17,  # 13 → 7 / 24 × 100, with the woman's item
        "blood_stasis": 21.43,
        "qi_stagnation": 25.0,
        "inherited_special": 50.0,
    }
    result = constitution_judge(transformed(WOMAN))
    assert (result.primary, result.secondary) == ("yang_deficiency", ["inherited_special", "qi_deficiency"])


def test_the_mans_damp_heat_counts_his_item_and_not_the_womans():
    man = {**WOMAN, "sex": "male", "dampheat6f": "5", "dampheat6m": "1"}

    assert transformed(man)["damp_heat"] == 20.83  # 10 + 1 = 11 → 5 / 24 × 100


def test_the_balanced_reverse_items_turn_never_into_the_top_score():
    never = {"sex": "female"} | dict.fromkeys(answers_of(**{"yang": [1] * 7, "yin": [1] * 8, "qi": [1] * 7, "phlegm": [1] * 8, "dampheat": [1] * 6, "stasis": [1] * 7, "special": [1] * 7, "stagnation": [1] * 7, "balanced": [1] * 3}), "1")  # fmt: skip
    always_well = never | {"balanced1": "5", "balanced6": "5"}

    # 精力充沛 and 适应 count 1 each; the six reversed questions count 6 − 1 = 5: (32 − 8) / 32 × 100.
    assert transformed(never)["balanced"] == 75.0
    assert transformed(always_well)["balanced"] == 100.0
    assert set(transformed(always_well).values()) == {100.0, 0.0}
    assert judged(100) == ("yes", "balanced", [])


def test_an_unanswered_question_leaves_its_constitutions_unscored():
    scores = transformed({key: value for key, value in WOMAN.items() if key != "qi1"})

    assert "balanced" not in scores
    assert "qi_deficiency" not in scores
    assert scores["yang_deficiency"] == 60.71


# --- Stored on the patient ---------------------------------------------------------------------


@pytest.fixture
def questionnaire(db):
    builtin_questionnaires_load()
    return Questionnaire.objects.get(code="tcm-constitution")


def respond(questionnaire, patient, answers, *, at=None, status="completed"):
    return QuestionnaireResponse.objects.create(
        version=questionnaire.current_version,
        patient=patient,
        status=status,
        answers=answers,
        completed_at=at or timezone.now(),
    )


@pytest.mark.django_db
def test_a_completed_response_stores_the_constitution_on_the_patient_once(questionnaire, patient):
    response = respond(questionnaire, patient, WOMAN)

    first = constitution_record(response=response)
    again = constitution_record(response=response)

    assert PatientConstitution.objects.count() == 1
    assert again.pk == first.pk
    stored = PatientConstitution.objects.get()
    assert (stored.patient, stored.response, stored.assessed_at) == (patient, response, response.completed_at)
    assert (stored.primary, stored.secondary) == ("yang_deficiency", ["inherited_special", "qi_deficiency"])
    assert stored.scores["damp_heat"] == 29.17
    assert stored.judgements == {
        "balanced": "no", "qi_deficiency": "tending", "yang_deficiency": "yes", "yin_deficiency": "no",
        "phlegm_dampness": "no", "damp_heat": "no", "blood_stasis": "no", "qi_stagnation": "no",
        "inherited_special": "yes",
    }  # fmt: skip


@pytest.mark.django_db
def test_an_incomplete_or_unfinished_or_other_response_is_refused_and_nothing_is_stored(questionnaire, patient):
    partial = respond(questionnaire, patient, {key: value for key, value in WOMAN.items() if key != "yin3"})
    in_progress = respond(questionnaire, patient, WOMAN, status="in_progress")
    other = QuestionnaireResponse.objects.create(
        version=Questionnaire.objects.get(code="hypertension").current_version,
        patient=patient,
        status="completed",
        answers={"sbp": 150},
        completed_at=timezone.now(),
    )

    with pytest.raises(ValidationError) as incomplete:
        constitution_record(response=partial)
    with pytest.raises(ValidationError) as unfinished:
        constitution_record(response=in_progress)
    with pytest.raises(ValidationError) as not_constitution:
        constitution_record(response=other)

    assert (incomplete.value.code, unfinished.value.code, not_constitution.value.code) == (
        "incomplete",
        "not_completed",
        "not_constitution",
    )
    assert PatientConstitution.objects.count() == 0


@pytest.mark.django_db
def test_the_latest_assessment_is_the_patients_constitution_and_each_is_in_the_timeline(questionnaire, patient, staff):
    now = timezone.now()
    earlier = constitution_record(response=respond(questionnaire, patient, WOMAN, at=now - dt.timedelta(days=90)))
    well = WOMAN | answers_of(
        yang=[1, 1, 1, 2, 1, 1, 1], special=[1, 2, 1, 1, 1, 1, 1], qi=[2, 3, 3, 3, 3, 2, 3], balanced=[5, 5, 1]
    )
    latest = constitution_record(response=respond(questionnaire, patient, well, at=now))
    doctor = staff["doctor"]
    doctor.user_permissions.add(Permission.objects.get(codename="view_patientconstitution"))
    doctor = User.objects.get(pk=doctor.pk)

    entries = [entry for entry in patient_timeline(patient, doctor) if entry.kind == "constitution"]

    assert patient_constitution(patient) == latest
    assert (latest.primary, latest.judgements["balanced"]) == ("balanced", "basically")
    assert latest.secondary == ["qi_deficiency"]
    assert [(entry.at, entry.title, entry.detail) for entry in entries] == [
        (now, "TCM constitution assessment",
         "Primary: Balanced (平和质) (Basically yes (基本是)) · secondary: Qi deficiency (气虚质)"),
        (earlier.assessed_at, "TCM constitution assessment",
         "Primary: Yang deficiency (阳虚质) · secondary: Inherited special (特禀质)、Qi deficiency (气虚质)"),
    ]  # fmt: skip
    assert entries[1].lines[:3] == [
        "Balanced (平和质) 56.25 · No (否)",
        "Qi deficiency (气虚质) 37.50 · Tending to (倾向是)",
        "Yang deficiency (阳虚质) 60.71 · Yes (是)",
    ]


@pytest.mark.django_db
def test_staff_without_the_permission_do_not_see_constitutions_in_the_timeline(questionnaire, patient, staff):
    constitution_record(response=respond(questionnaire, patient, WOMAN))

    entries = patient_timeline(patient, staff["analyst"])

    assert [entry for entry in entries if entry.kind == "constitution"] == []


@pytest.mark.django_db
def test_a_patient_never_assessed_has_no_constitution(patient):
    assert patient_constitution(patient) is None


@pytest.mark.django_db
def test_completing_a_constitution_response_stores_the_result_on_the_patient(questionnaire, patient, staff):
    response = response_save(
        version=questionnaire.current_version,
        patient=patient,
        answers=WOMAN,
        source="staff",
        actor=staff["nurse"],
        complete=True,
    )

    stored = PatientConstitution.objects.get()
    assert (stored.patient, stored.response, stored.primary) == (patient, response, "yang_deficiency")
