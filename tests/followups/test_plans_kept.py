"""Active follow-up plans are kept in process: read once, dropped when a plan is saved or deleted here,
seen within PLANS_TTL_SECONDS when another process changes them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from followups.models import FollowUpPlan, FollowUpTask
from followups.services import followups_sweep, plan_save, tasks_for_diagnosis, tasks_for_encounter
from followups.services import plans as plan_services
from tests.factories import DiagnosisFactory, EncounterFactory
from tests.followups.factories import plan

pytestmark = pytest.mark.django_db


def _discharge(patient, department, *, days_ago: int = 1):
    ended = timezone.now() - dt.timedelta(days=days_ago)
    return EncounterFactory(
        patient=patient,
        kind="inpatient",
        status="finished",
        department=department,
        started_at=ended - dt.timedelta(days=5),
        ended_at=ended,
    )


def test_the_active_plans_are_read_once_for_many_records(patient, internal_medicine):
    plan(department=internal_medicine, offsets=[3])
    first, second = _discharge(patient, internal_medicine), _discharge(patient, internal_medicine, days_ago=2)

    with CaptureQueriesContext(connection) as reading:
        made_first = tasks_for_encounter(encounter=first)
    with CaptureQueriesContext(connection) as kept:
        made_second = tasks_for_encounter(encounter=second)

    # the same work for both visits, less the one read of the plans
    assert (made_first, made_second) == (1, 1)
    assert len(kept.captured_queries) == len(reading.captured_queries) - 1


def test_a_plan_saved_or_deleted_in_this_process_is_seen_by_the_next_record(
    patient, staff, internal_medicine, acupuncture
):
    kept = plan(department=internal_medicine, offsets=[3])
    tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=1))

    plan_save(actor=staff["department_head"], plan=kept, data={"offsets": [3, 5]})
    tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=2))
    unused = plan(name="针灸随访", department=acupuncture, offsets=[1])
    tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=3))
    unused.delete()
    made_after_delete = tasks_for_encounter(encounter=_discharge(patient, acupuncture, days_ago=3))

    assert made_after_delete == 0
    assert sorted(FollowUpTask.objects.values_list("offset_days", flat=True)) == [3, 3, 3, 5, 5]


def test_a_plan_changed_by_another_process_is_seen_after_the_time_to_live(patient, internal_medicine, monkeypatch):
    kept = plan(department=internal_medicine, offsets=[3])
    tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=1))

    # another process's change: no signal reaches this one
    FollowUpPlan.objects.filter(pk=kept.pk).update(active=False)
    assert tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=2)) == 1

    monkeypatch.setattr(plan_services, "PLANS_TTL_SECONDS", 0.0)
    assert tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=3)) == 0


def test_the_sweep_reads_the_plans_afresh(patient, internal_medicine):
    kept = plan(department=internal_medicine, offsets=[3])
    tasks_for_encounter(encounter=_discharge(patient, internal_medicine, days_ago=1))
    FollowUpPlan.objects.filter(pk=kept.pk).update(active=False)
    _discharge(patient, internal_medicine, days_ago=2)

    assert followups_sweep(since=timezone.now() - dt.timedelta(days=7)) == 0


def test_a_diagnosis_whose_plan_offsets_are_all_long_past_reads_no_visit(patient, django_assert_num_queries):
    plan(name="高血压", trigger="diagnosis", diagnosis_code_prefix="I10", diagnosis_system="western", offsets=[0, 7])
    visit = EncounterFactory(patient=patient)
    old = DiagnosisFactory(
        patient=patient,
        encounter=visit,
        system="icd10",
        code="I10.x00",
        diagnosed_at=timezone.now() - dt.timedelta(days=plan_services.LATE_LIMIT_DAYS + 30),
    )

    with django_assert_num_queries(1):  # the plans, nothing else
        created = tasks_for_diagnosis(diagnosis=old)

    assert created == 0


def test_a_diagnosis_handed_over_with_its_visit_reads_no_visit(patient, internal_medicine, django_assert_num_queries):
    plan(
        name="高血压",
        trigger="diagnosis",
        diagnosis_code_prefix="I10",
        diagnosis_system="western",
        offsets=[30],
        department=internal_medicine,
    )
    visit = EncounterFactory(patient=patient, department=internal_medicine)
    recent = DiagnosisFactory(patient=patient, encounter=visit, system="icd10", code="I10.x00")
    recent = type(recent).objects.get(pk=recent.pk)
    type(recent).encounter.field.set_cached_value(recent, visit)

    # the plans, the patient (not deceased or merged), then the tasks: counted by their insert on PostgreSQL,
    # before and after it elsewhere
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 5):
        created = tasks_for_diagnosis(diagnosis=recent)

    assert created == 1
    assert FollowUpTask.objects.get().department_id == internal_medicine.pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database is asked per plan on PostgreSQL only")
def test_the_database_is_asked_only_about_plans_that_can_owe_the_visit(patient, internal_medicine, acupuncture):
    discharge = plan(offsets=[3])
    plan(name="针灸科出院随访", department=acupuncture, offsets=[3])  # another department's discharges
    plan(name="门诊回访", offsets=[1], trigger="outpatient_visit")
    plan(name="出院一周随访", offsets=[1, 7])
    plan_services.plans_forget()
    tasks_for_encounter(encounter=_discharge(patient, internal_medicine))  # plans read and kept
    visit = EncounterFactory(
        patient=patient, kind="outpatient", status="finished", department=internal_medicine, started_at=timezone.now()
    )
    long_ago = _discharge(patient, internal_medicine, days_ago=400)
    recent = _discharge(patient, internal_medicine, days_ago=2)

    with CaptureQueriesContext(connection) as outpatient:
        made_outpatient = tasks_for_encounter(encounter=visit)
    with CaptureQueriesContext(connection) as past:
        made_past = tasks_for_encounter(encounter=long_ago)
    with CaptureQueriesContext(connection) as discharged:
        made_discharge = tasks_for_encounter(encounter=recent)

    inserts = [[q for q in captured if "INSERT" in q["sql"]] for captured in (outpatient, past, discharged)]
    assert [len(found) for found in inserts] == [1, 0, 2]  # the outpatient plan; none; the two discharge plans
    assert (made_outpatient, made_past) == (1, 0)
    assert made_discharge == 3 and FollowUpTask.objects.filter(plan=discharge).count() == 2
