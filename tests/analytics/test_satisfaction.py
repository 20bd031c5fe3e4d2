"""Satisfaction figures on a small hand-built dataset: responses, means, NPS, months, items, response rate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from analytics.selectors import (
    Filters,
    Satisfaction,
    lowest_items,
    satisfaction_results,
    satisfaction_versions,
)
from followups.models import QuestionnaireResponse
from tests.analytics.factories import completed_invitation, invitation, local, outpatient_survey, respond
from tests.factories import EncounterFactory, PatientFactory
from tests.followups.factories import questionnaire, task

pytestmark = pytest.mark.django_db

JANUARY, FEBRUARY, MARCH = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)


def _filters(**fields) -> Filters:
    return Filters(start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31), scope=None, **fields)


@pytest.fixture
def survey(db):
    return outpatient_survey()


@pytest.fixture
def responses(survey, staff, internal_medicine, acupuncture, patient):
    """Four responses for internal medicine, two for acupuncture, two just outside the period."""
    other = PatientFactory()
    nk, zj = internal_medicine, acupuncture
    return {
        "r1": respond(survey, patient, at=local(dt.date(2025, 1, 10)), department=nk, doctor=staff["doctor"],
                      score=5, recommend=10, comment="很好"),
        "r2": respond(survey, patient, at=local(dt.date(2025, 1, 20)), department=nk, score=4, reg_waiting=1,
                      recommend=9),
        "r3": respond(survey, patient, at=local(dt.date(2025, 3, 5)), department=nk, score=3, reg_waiting=2,
                      recommend=7, comment="等太久"),
        "r4": respond(survey, patient, at=local(dt.date(2025, 3, 6)), department=nk, score=2, recommend=3),
        "r5": respond(survey, other, at=local(dt.date(2025, 3, 7)), department=zj, doctor=staff["other_doctor"],
                      score=5, recommend=0),
        "r8": respond(survey, other, at=local(dt.date(2025, 3, 31), 23, 30), department=zj, score=4, recommend=8),
        "after": respond(survey, other, at=local(dt.date(2025, 4, 1), 0, 0), department=zj, score=1, recommend=0),
        "before": respond(survey, other, at=local(dt.date(2024, 12, 31), 23, 59), department=zj, score=1,
                          recommend=0),
    }  # fmt: skip


def _results(filters: Filters):
    return satisfaction_results(filters, satisfaction_versions(filters))


def _summary(figures: Satisfaction) -> tuple:
    return figures.responses, figures.mean, figures.promoters, figures.passives, figures.detractors, figures.nps


def test_completing_a_satisfaction_response_keeps_its_figures_in_columns(responses, internal_medicine, staff):
    r2 = responses["r2"]

    assert (r2.satisfaction, r2.recommendation) == (Decimal("3.75"), 9)
    assert r2.item_scores == {
        "reg_booking": 4, "reg_waiting": 1, "doc_explanation": 4, "doc_attitude": 4, "doc_patience": 4,
        "nurse_attitude": 4, "nurse_guidance": 4, "env_clean": 4, "env_signs": 4, "pharm_wait": 4,
        "cost_transparency": 4, "dept_overall": 4,
    }  # fmt: skip
    assert (r2.department, r2.doctor) == (internal_medicine, None)
    assert responses["r1"].doctor == staff["doctor"]


def test_a_completed_task_names_the_department_and_the_attending_doctor_of_the_stay(
    survey, patient, internal_medicine, staff
):
    stay = EncounterFactory(patient=patient, kind="inpatient", department=internal_medicine, doctor=staff["doctor"])
    invited = invitation(
        survey,
        patient,
        due=dt.date(2025, 1, 5),
        department=internal_medicine,
        status="in_progress",
        source_kind="encounter",
        source_id=stay.pk,
        assignee=staff["nurse"],
    )
    from followups.services import response_save, task_complete
    from tests.analytics.factories import answers

    response = response_save(
        version=survey.current_version, patient=patient, answers=answers(), source="sms", complete=True
    )
    task_complete(task=invited, response=response, actor=None)

    response.refresh_from_db()
    assert (response.department, response.doctor) == (internal_medicine, staff["doctor"])


def test_totals_count_the_responses_completed_in_the_period_only(responses):
    figures = _results(_filters())

    # means of 5, 3.75, 2.92, 2, 5, 4; recommendations 10, 9, 7, 3, 0, 8
    assert _summary(figures.total) == (6, Decimal("3.78"), 2, 2, 2, Decimal("0.0"))


def test_figures_by_department_and_doctor(responses, internal_medicine, acupuncture, staff):
    figures = _results(_filters())

    assert _summary(figures.by_department[internal_medicine.pk]) == (4, Decimal("3.42"), 2, 1, 1, Decimal("25.0"))
    assert _summary(figures.by_department[acupuncture.pk]) == (2, Decimal("4.50"), 0, 1, 1, Decimal("-50.0"))
    assert _summary(figures.by_doctor[staff["doctor"].pk]) == (1, Decimal("5.00"), 1, 0, 0, Decimal("100.0"))
    assert _summary(figures.by_doctor[staff["other_doctor"].pk]) == (1, Decimal("5.00"), 0, 0, 1, Decimal("-100.0"))
    assert figures.by_doctor[None].responses == 4


def test_every_month_of_the_period_has_its_bucket_even_without_responses(responses):
    figures = _results(_filters())

    assert list(figures.by_month) == [JANUARY, FEBRUARY, MARCH]
    assert _summary(figures.by_month[JANUARY]) == (2, Decimal("4.38"), 2, 0, 0, Decimal("100.0"))
    assert _summary(figures.by_month[FEBRUARY]) == (0, None, 0, 0, 0, None)
    # the response at 23:30 on 31 March (local time) is March's
    assert _summary(figures.by_month[MARCH]) == (4, Decimal("3.48"), 0, 2, 2, Decimal("-50.0"))


def test_a_department_filter_and_a_readers_scope_narrow_every_figure(responses, internal_medicine, acupuncture):
    filtered = _results(_filters(department_id=acupuncture.pk))
    scoped = _results(Filters(dt.date(2025, 1, 1), dt.date(2025, 3, 31), frozenset({internal_medicine.pk})))

    assert (filtered.total.responses, set(filtered.by_department)) == (2, {acupuncture.pk})
    assert (scoped.total.responses, set(scoped.by_department)) == (4, {internal_medicine.pk})


def test_a_questionnaire_filter_leaves_out_the_other_surveys(responses, survey):
    from followups.models import Questionnaire

    inpatient = Questionnaire.objects.get(code="inpatient-satisfaction")

    assert _results(_filters(questionnaire_id=survey.pk)).total.responses == 6
    assert _results(_filters(questionnaire_id=inpatient.pk)).total.responses == 0


def test_the_lowest_items_are_the_items_of_the_overall_mean_with_the_lowest_mean(responses):
    filters = _filters()
    items = lowest_items(_results(filters), satisfaction_versions(filters))

    # waiting time: 5, 1, 2, 2, 5, 4; every other item: 5, 4, 3, 2, 5, 4
    assert [(item.link_id, item.answers, item.mean) for item in items[:2]] == [
        ("reg_waiting", 6, Decimal("3.17")),
        ("cost_transparency", 6, Decimal("3.83")),
    ]
    assert len(items) == 10
    assert "pharm_decoction" not in {item.link_id for item in items}  # asked of nobody
    assert items[0].text == "How satisfied are you with the waiting time?"


def test_the_response_rate_is_the_share_of_invitations_completed(survey, patient, internal_medicine, acupuncture):
    due = dt.date(2025, 2, 10)
    for _ in range(2):
        completed_invitation(survey, patient, due=due, department=internal_medicine, at=local(due))
    invitation(survey, patient, due=due, department=internal_medicine, attempts=1, status="in_progress")
    invitation(survey, patient, due=due, department=internal_medicine, attempts=0)  # never sent: no invitation
    invitation(survey, patient, due=dt.date(2025, 4, 2), department=internal_medicine)  # due after the period
    invitation(survey, patient, due=due, department=acupuncture, attempts=2, status="unreached")
    task(
        patient=patient,
        due_date=due,
        department=internal_medicine,
        questionnaire=questionnaire("wound-check"),
        attempts=1,
    )

    figures = _results(_filters())

    nk, zj = figures.by_department[internal_medicine.pk], figures.by_department[acupuncture.pk]
    assert (nk.invited, nk.answered, nk.response_rate, nk.responses) == (3, 2, Decimal("66.7"), 2)
    assert (zj.invited, zj.answered, zj.response_rate) == (1, 0, Decimal("0.0"))
    assert (figures.total.invited, figures.total.response_rate) == (4, Decimal("50.0"))
    assert (figures.by_month[FEBRUARY].invited, figures.by_month[JANUARY].invited) == (4, 0)


@pytest.mark.parametrize(
    ("recommendations", "nps"),
    [
        ([], None),
        ([9, 10], Decimal("100.0")),
        ([7, 8], Decimal("0.0")),
        ([0, 6], Decimal("-100.0")),
        ([9, 6, 5], Decimal("-33.3")),
        ([9, 9, 7], Decimal("66.7")),
    ],
)
def test_nps_is_promoters_minus_detractors_in_percent_of_those_answering(recommendations, nps):
    figures = Satisfaction()
    for value in recommendations:
        figures.add({"recommended": 1, "promoters": int(value >= 9), "detractors": int(value <= 6)})

    assert figures.nps == nps


def test_figures_need_a_bounded_number_of_queries(responses, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        _results(_filters())


def test_responses_to_other_questionnaires_are_not_rated(patient):
    from followups.services import questionnaire_save, questionnaire_version_save, response_save
    from tests.followups import samples

    clinical = questionnaire_save(
        actor=None, data={"code": "post-discharge", "title": "出院随访", "purpose": "clinical", "status": "active"}
    )
    version = questionnaire_version_save(
        actor=None, questionnaire=clinical, items=samples.items(), scoring=samples.scoring()
    )
    response = response_save(
        version=version, patient=patient, answers={"pain": False, "sleep": "good"}, source="staff", complete=True
    )

    assert (response.satisfaction, response.recommendation, response.item_scores) == (None, None, {})
    assert not QuestionnaireResponse.objects.filter(pk=response.pk, satisfaction__isnull=False).exists()


def test_the_migration_fills_the_columns_of_responses_recorded_before(survey, patient, internal_medicine, staff):
    import importlib

    from django.apps import apps

    stay = EncounterFactory(patient=patient, kind="inpatient", department=internal_medicine, doctor=staff["doctor"])
    invited, response = completed_invitation(
        survey, patient, due=dt.date(2025, 1, 5), department=internal_medicine, at=local(dt.date(2025, 1, 6)), score=3
    )
    type(invited).objects.filter(pk=invited.pk).update(source_kind="encounter", source_id=stay.pk)
    QuestionnaireResponse.objects.filter(pk=response.pk).update(
        department=None, doctor=None, satisfaction=None, recommendation=None, item_scores={}
    )
    migration = importlib.import_module("followups.migrations.0009_response_ratings_and_due_day_index")

    migration.ratings_fill(apps, None)

    response.refresh_from_db()
    assert (response.department, response.doctor) == (internal_medicine, staff["doctor"])
    assert (response.satisfaction, response.recommendation, response.item_scores["reg_booking"]) == (
        Decimal("3.00"),
        9,
        3.0,
    )
