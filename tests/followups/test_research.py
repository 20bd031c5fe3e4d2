"""Research cohorts: enrolment is a snapshot and idempotent, one task per member per wave, pseudonyms are
stable and unlinkable, and exports carry answers under pseudonyms and nothing that names the patient."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import RequestFactory
from django.utils import timezone
from openpyxl import load_workbook

from followups.models import CohortMember, FollowUpTask, ResearchCohort
from followups.research_export import research_dictionary_response, research_export_response
from followups.services import (
    cohort_enrol,
    cohort_member_withdraw,
    cohort_save,
    followups_sweep,
    plan_save,
    research_sweep,
    response_save,
    task_complete,
    task_precheck,
)
from followups.services.questionnaires import questionnaire_save
from followups.services.research import pseudonym_of
from hcrm.audit import audit_acting_as
from hcrm.models import AuditEntry
from patients.services import consent_set
from tests.factories import PatientFactory
from tests.followups.factories import cohort_data, research_questionnaire

pytestmark = pytest.mark.django_db

ANSWERS = {
    "pain": True,
    "pain_level": 8,
    "sleep": "poor",
    "symptoms": ["cough", "fatigue"],
    "name": "王五",
    "notes": "夜间痛醒",
}
BASE_COLUMNS = [
    "pseudonym",
    "wave",
    "offset_days",
    "days_since_enrolment",
    "age_at_enrolment",
    "sex",
    "response_date",
    "questionnaire_version",
]


@pytest.fixture
def questionnaire(db):
    return research_questionnaire()


def _data(staff, segment, questionnaire, internal_medicine, **changes) -> dict:
    return cohort_data(
        investigator=staff["doctor"],
        segment=segment,
        questionnaire=questionnaire,
        department=internal_medicine,
        **changes,
    )


def _interval(staff, segment, questionnaire, internal_medicine, *, start: dt.date, days: int) -> dict:
    """Every 90 days from `start` for `days` days."""
    data = _data(
        staff,
        segment,
        questionnaire,
        internal_medicine,
        schedule_kind="interval",
        interval_days=90,
        start_date=start,
        end_date=start + dt.timedelta(days=days),
    )
    del data["offsets"]
    return data


@pytest.fixture
def cohort(staff, women, questionnaire, internal_medicine) -> ResearchCohort:
    return cohort_save(actor=staff["department_head"], data=_data(staff, women, questionnaire, internal_medicine))


def _woman(**fields):
    return PatientFactory(sex="female", **fields)


def _member_tasks(cohort) -> list[tuple]:
    return sorted(
        FollowUpTask.objects.filter(plan=cohort.plan).values_list("patient_id", "offset_days", "source_kind", "status")
    )


# --- Saving a cohort ----------------------------------------------------------------------------------


def test_cohort_save_makes_its_research_plan_with_sorted_offsets_and_a_secret_salt(cohort, staff, questionnaire):
    plan = cohort.plan

    assert (plan.trigger, plan.offsets, plan.questionnaire, plan.channel, plan.name) == (
        "research",
        [0, 30, 90],
        questionnaire,
        "phone",
        "Research: 类风湿队列",
    )
    assert (cohort.created_by, plan.assignee_role, plan.assignee_department.code) == (
        staff["department_head"],
        "nurse",
        "NK",
    )
    assert len(cohort.pseudonym_salt) == 64


def test_cohort_save_names_every_missing_field(staff):
    with pytest.raises(ValidationError) as raised:
        cohort_save(
            actor=staff["administrator"],
            data={
                "name": "空队列",
                "channel": "phone",
                "schedule_kind": "offsets",
                "offsets": [],
                "assignee_role": "nurse",
            },
        )

    assert sorted(raised.value.message_dict) == [
        "assignee_department",
        "ethics_approval",
        "offsets",
        "principal_investigator",
        "questionnaire",
        "segment",
        "start_date",
    ]


def test_an_interval_schedule_makes_a_wave_every_so_many_days_until_the_end(
    staff, women, questionnaire, internal_medicine
):
    data = _interval(staff, women, questionnaire, internal_medicine, start=dt.date(2026, 1, 1), days=730)

    cohort = cohort_save(actor=staff["administrator"], data=data)

    assert cohort.plan.offsets == [0, 90, 180, 270, 360, 450, 540, 630, 720]
    with pytest.raises(ValidationError) as raised:
        cohort_save(actor=staff["administrator"], cohort=cohort, data={"end_date": None})
    assert raised.value.message_dict == {"end_date": ["A repeating schedule needs an end date."]}


def test_a_research_plan_is_not_changed_as_a_plan(cohort, staff):
    with pytest.raises(ValidationError) as raised:
        plan_save(actor=staff["administrator"], plan=cohort.plan, data={"offsets": [1]})

    assert raised.value.message_dict == {"trigger": ["A research cohort's plan is changed on the cohort's page."]}
    cohort.plan.refresh_from_db()
    assert cohort.plan.offsets == [0, 30, 90]


def test_the_questionnaire_stays_once_the_cohort_has_been_followed_up(cohort, staff):
    _woman()
    research_sweep()
    other = questionnaire_save(
        actor=None, data={"code": "other", "title": "其他", "purpose": "research", "status": "active"}
    )

    with pytest.raises(ValidationError) as raised:
        cohort_save(actor=staff["administrator"], cohort=cohort, data={"questionnaire": other})

    assert raised.value.message_dict == {"questionnaire": ["The cohort has been followed up: its questionnaire stays."]}


# --- Enrolment ----------------------------------------------------------------------------------------


def test_enrolment_is_idempotent_and_keeps_members_when_the_segment_changes(cohort, women, staff):
    first, second = _woman(), _woman()
    man = PatientFactory(sex="male")

    assert cohort_enrol(cohort=cohort) == 2
    assert cohort_enrol(cohort=cohort) == 0

    women.filters = {"sexes": ["male"]}
    women.save()
    cohort.refresh_from_db()
    assert cohort_enrol(cohort=cohort) == 1
    assert sorted(CohortMember.objects.filter(cohort=cohort).values_list("patient_id", flat=True)) == sorted(
        [first.pk, second.pk, man.pk]
    )


def test_nobody_is_enrolled_before_the_start_or_into_an_inactive_cohort(cohort, staff):
    _woman()
    today = timezone.localdate()

    assert cohort_enrol(cohort=cohort, today=today - dt.timedelta(days=11)) == 0
    cohort_save(actor=staff["administrator"], cohort=cohort, data={"active": False})
    assert cohort_enrol(cohort=cohort, today=today) == 0
    assert CohortMember.objects.count() == 0


def test_enrolment_by_a_person_is_audited_with_the_count(cohort, staff):
    _woman()

    with audit_acting_as(staff["administrator"]):
        cohort_enrol(cohort=cohort, actor=staff["administrator"])

    entry = AuditEntry.objects.filter(object_pk=str(cohort.pk), additional_data__enrolled=1).get()
    assert (entry.actor, entry.event) == (staff["administrator"], "update")


# --- Tasks ---------------------------------------------------------------------------------------------


def test_the_sweep_makes_one_task_per_member_per_wave_once(cohort):
    first, second = _woman(), _woman()

    made = followups_sweep(since=timezone.now())
    again = followups_sweep(since=timezone.now())

    assert (made, again) == (6, 0)
    assert _member_tasks(cohort) == sorted(
        (patient.pk, offset, "research", "pending") for patient in (first, second) for offset in (0, 30, 90)
    )
    task = FollowUpTask.objects.get(patient=first, plan=cohort.plan, offset_days=30)
    assert (task.source_id, task.due_date, task.department.code, task.assignee_role) == (
        cohort.pk,
        timezone.localdate() + dt.timedelta(days=30),
        "NK",
        "nurse",
    )


def test_a_member_joining_an_interval_schedule_late_gets_only_the_waves_still_ahead(
    staff, women, questionnaire, internal_medicine
):
    today = timezone.localdate()
    data = _interval(staff, women, questionnaire, internal_medicine, start=today - dt.timedelta(days=100), days=400)
    cohort = cohort_save(actor=staff["administrator"], data=data)
    patient = _woman()

    assert research_sweep(today=today) == 3
    assert sorted(FollowUpTask.objects.filter(patient=patient).values_list("offset_days", "due_date")) == [
        (180, today + dt.timedelta(days=80)),
        (270, today + dt.timedelta(days=170)),
        (360, today + dt.timedelta(days=260)),
    ]
    assert cohort.plan.offsets == [0, 90, 180, 270, 360]


def test_a_longer_schedule_gives_every_member_the_new_wave_and_a_dropped_wave_closes(cohort, staff):
    patient = _woman()
    research_sweep()

    cohort_save(actor=staff["administrator"], cohort=cohort, data={"offsets": [0, 90, 180]})

    assert sorted(
        FollowUpTask.objects.filter(patient=patient).values_list("offset_days", "status", "closed_reason")
    ) == [(0, "pending", ""), (30, "closed", "cancelled"), (90, "pending", ""), (180, "pending", "")]


def test_withdrawal_closes_open_tasks_keeps_the_member_and_stops_new_tasks(cohort, staff):
    patient = _woman()
    research_sweep()
    member = CohortMember.objects.get(patient=patient)

    cohort_member_withdraw(actor=staff["administrator"], member=member, reason="本人要求退出研究")

    assert research_sweep() == 0
    assert set(FollowUpTask.objects.filter(patient=patient).values_list("status", "closed_reason")) == {
        ("closed", "consent_withdrawn")
    }
    member.refresh_from_db()
    assert (member.withdrawal_reason, member.withdrawn_at is not None) == ("本人要求退出研究", True)
    with pytest.raises(ValidationError) as raised:
        cohort_member_withdraw(actor=staff["administrator"], member=member, reason="again")
    assert raised.value.message_dict == {"reason": ["This patient has already left the study."]}


def test_withdrawing_follow_up_consent_closes_a_cohort_task_at_its_precheck(cohort):
    patient = _woman()
    research_sweep()
    consent_set(actor=None, patient=patient, purpose="follow_up", channel="phone", granted=False)
    task = FollowUpTask.objects.get(patient=patient, offset_days=0)

    assert task_precheck(task=task) == "consent_withdrawn"
    task.refresh_from_db()
    assert (task.status, task.closed_reason) == ("closed", "consent_withdrawn")


# --- Pseudonyms ------------------------------------------------------------------------------------------


def test_pseudonyms_are_stable_within_a_cohort_different_across_cohorts_and_name_no_id(
    cohort, staff, women, questionnaire, internal_medicine
):
    patient = _woman()
    other = cohort_save(
        actor=staff["administrator"],
        data=_data(staff, women, questionnaire, internal_medicine, name="另一队列"),
    )
    cohort_enrol(cohort=cohort)
    cohort_enrol(cohort=other)

    here = CohortMember.objects.get(cohort=cohort, patient=patient).pseudonym
    there = CohortMember.objects.get(cohort=other, patient=patient).pseudonym

    assert (
        here == pseudonym_of(cohort, patient.pk) == pseudonym_of(ResearchCohort.objects.get(pk=cohort.pk), patient.pk)
    )
    assert here != there
    assert len(here) == 20 and int(here, 16) >= 0
    for identifier in (patient.mrn, str(patient.uuid).replace("-", ""), patient.national_id):
        assert identifier not in here
    # A keyed hash of the id, not the id in another form.
    assert here.lstrip("0") not in (str(patient.pk), format(patient.pk, "x"))


# --- Export ----------------------------------------------------------------------------------------------


def _answered(cohort, patient, *, offset: int = 0, answers=ANSWERS):
    task = FollowUpTask.objects.get(plan=cohort.plan, patient=patient, offset_days=offset)
    version = cohort.plan.questionnaire.current_version
    response = response_save(version=version, patient=patient, answers=answers, source="phone", complete=True)
    task_complete(task=task, response=response, actor=None)
    return response


def _request(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


def _csv(response) -> list[list[str]]:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.fixture
def answered(cohort):
    """One member who answered wave 1, one who did not; a non-member who answered the same questionnaire."""
    patient = _woman(birth_date=dt.date(1960, 5, 20), name="赵敏")
    _woman()
    research_sweep()
    response = _answered(cohort, patient)
    outsider = PatientFactory(sex="male")
    response_save(
        version=cohort.plan.questionnaire.current_version,
        patient=outsider,
        answers={"pain": False},
        source="phone",
        complete=True,
    )
    return patient, response


def test_the_csv_export_has_one_row_per_response_with_codes_scores_and_no_identifier(cohort, answered, staff):
    patient, response = answered
    joined = CohortMember.objects.get(patient=patient)
    enrolled = timezone.localdate(joined.joined_at)

    with audit_acting_as(staff["analyst"]):
        rows = _csv(research_export_response(cohort, staff["analyst"], file_format="csv"))

    assert rows[0] == [*BASE_COLUMNS, "pain", "pain_level", "sleep", "symptoms", "weight", "visit", "score_burden"]
    age = enrolled.year - 1960 - ((enrolled.month, enrolled.day) < (5, 20))
    assert rows[1:] == [
        [
            joined.pseudonym,
            "1",
            "0",
            "0",
            str(age),
            "female",
            timezone.localdate(response.completed_at).isoformat(),
            "1",
            "1",
            "8",
            "poor",
            "cough|fatigue",
            "",
            "",
            "11.0",
        ]
    ]
    text = "\n".join(",".join(row) for row in rows)
    for identifier in (patient.name, patient.mrn, patient.mobile, patient.national_id, str(patient.uuid), "1960-05-20"):
        assert identifier not in text
    assert "王五" not in text and "夜间痛醒" not in text


def test_every_export_is_audited_with_who_which_cohort_and_how_many_rows(cohort, answered, staff):
    with audit_acting_as(staff["analyst"]):
        response = research_export_response(cohort, staff["analyst"], file_format="csv")
        _csv(response)

    entry = AuditEntry.objects.get(event="export")
    assert (entry.actor, entry.object_pk, entry.additional_data) == (
        staff["analyst"],
        str(cohort.pk),
        {"cohort": str(cohort.uuid), "format": "csv", "rows": 1, "free_text": False},
    )


def test_free_text_needs_the_higher_permission_and_is_audited(cohort, answered, staff):
    with pytest.raises(PermissionDenied):
        research_export_response(cohort, staff["analyst"], file_format="csv", include_free_text=True)
    assert not AuditEntry.objects.filter(event="export").exists()

    with audit_acting_as(staff["administrator"]):
        rows = _csv(research_export_response(cohort, staff["administrator"], file_format="csv", include_free_text=True))

    assert rows[0][len(BASE_COLUMNS) :] == [
        "pain",
        "pain_level",
        "sleep",
        "symptoms",
        "weight",
        "visit",
        "name",
        "notes",
        "score_burden",
    ]
    assert rows[1][-3:] == ["王五", "夜间痛醒", "11.0"]
    assert AuditEntry.objects.get(event="export").additional_data["free_text"] is True


def test_withdrawn_members_and_answers_given_before_joining_are_left_out(cohort, answered, staff):
    patient, _response = answered
    cohort_member_withdraw(actor=None, member=CohortMember.objects.get(patient=patient), reason="退出")

    rows = _csv(research_export_response(cohort, staff["analyst"], file_format="csv"))

    assert rows[1:] == []


def test_the_xlsx_export_opens_with_the_answers_and_the_data_dictionary(cohort, answered, staff):
    patient, _response = answered

    response = research_export_response(cohort, staff["analyst"], file_format="xlsx")
    workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))

    assert response["Content-Disposition"] == f'attachment; filename="cohort-{cohort.uuid}-answers.xlsx"'
    assert workbook.sheetnames == ["Answers", "Data dictionary"]
    answers = [list(row) for row in workbook["Answers"].iter_rows(values_only=True)]
    assert answers[1][:2] == [CohortMember.objects.get(patient=patient).pseudonym, 1]
    assert answers[1][len(BASE_COLUMNS) :] == [1, 8, "poor", "cough|fatigue", None, None, 11]
    dictionary = [list(row) for row in workbook["Data dictionary"].iter_rows(values_only=True)]
    assert dictionary[0] == ["variable", "type", "code", "label", "label_en"]
    assert ["sleep", "choice", None, "睡眠", None] in dictionary
    assert ["sleep", None, "poor", "差", None] in dictionary


def test_the_data_dictionary_explains_columns_codes_and_scores(cohort, staff):
    rows = _csv(research_dictionary_response(cohort, staff["analyst"]))

    by_variable = {}
    for row in rows[1:]:
        by_variable.setdefault(row[0], []).append(row[1:])
    assert by_variable["sex"] == [
        ["code", "", "Sex", "Sex"],
        ["", "male", "Male", "Male"],
        ["", "female", "Female", "Female"],
        ["", "other", "Other", "Other"],
        ["", "unknown", "Unknown", "Unknown"],
    ]
    assert by_variable["pain"] == [["boolean", "", "是否疼痛?", ""], ["", "1", "Yes", "Yes"], ["", "0", "No", "No"]]
    assert by_variable["symptoms"][0] == ["choice (multiple: codes joined by |)", "", "症状", ""]
    assert by_variable["score_burden"] == [
        ["score (sum)", "", "负担", ""],
        ["", "0–5", "轻", ""],
        ["", "6–", "重", ""],
    ]
    assert "name" not in by_variable and "notes" not in by_variable
