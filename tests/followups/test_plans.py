"""Follow-up plans and tasks: triggers and the sweep are idempotent, pre-checks close, retries, claims."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from followups.models import FollowUpTask
from followups.services import (
    followup_schedule_one_off,
    followups_sweep,
    plan_save,
    task_claim,
    task_precheck,
    task_reassign,
    task_record_attempt,
    tasks_for_diagnosis,
    tasks_for_encounter,
    tasks_for_procedure,
)
from followups.services.plans import day_start
from integrations.hl7v2.pipeline import hl7_receive
from integrations.models import SourceProfile
from patients.models import ContactEntry, Encounter
from patients.services import consent_set, record_create, record_update
from tests.factories import (
    DepartmentFactory,
    DiagnosisFactory,
    EncounterFactory,
    PatientFactory,
    ProcedureFactory,
    SegmentFactory,
    UserFactory,
)
from tests.followups.factories import plan, questionnaire, task
from tests.integrations.hl7v2.messages import adt, pid, pv1

pytestmark = pytest.mark.django_db


def _local(days_ago: float) -> dt.datetime:
    return timezone.localtime(timezone.now() - dt.timedelta(days=days_ago))


def _hl7_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def _discharged(patient, department, *, days_ago: float = 1, doctor=None) -> Encounter:
    return EncounterFactory(
        patient=patient,
        kind="inpatient",
        status="finished",
        department=department,
        doctor=doctor,
        started_at=_local(days_ago + 5),
        ended_at=_local(days_ago),
    )


def _keys(tasks) -> list[tuple]:
    return sorted((t.offset_days, t.due_date, t.source_kind, t.status) for t in tasks)


# --- Plans ------------------------------------------------------------------------------------------


def test_plan_save_names_every_missing_field_of_a_diagnosis_plan(staff):
    form = questionnaire()

    with pytest.raises(ValidationError) as raised:
        plan_save(
            actor=staff["department_head"],
            data={
                "name": "高血压随访",
                "trigger": "diagnosis",
                "offsets": [],
                "questionnaire": form,
                "channel": "phone",
                "assignee_kind": "role",
                "assignee_role": "",
            },
        )

    assert sorted(raised.value.message_dict) == [
        "assignee_role",
        "diagnosis_code_prefix",
        "diagnosis_system",
        "offsets",
    ]


def test_plan_save_sorts_offsets_and_refuses_one_given_twice(staff):
    form = questionnaire()
    data = {
        "name": "高血压随访",
        "trigger": "diagnosis",
        "diagnosis_code_prefix": " i10 ",
        "diagnosis_system": "western",
        "offsets": [90, 7, 30],
        "questionnaire": form,
        "channel": "sms",
        "assignee_kind": "attending",
    }

    saved = plan_save(actor=staff["department_head"], data=data)

    assert (saved.offsets, saved.diagnosis_code_prefix, saved.created_by) == (
        [7, 30, 90],
        "I10",
        staff["department_head"],
    )
    with pytest.raises(ValidationError) as raised:
        plan_save(actor=staff["department_head"], plan=saved, data={"offsets": [7, 7]})
    assert raised.value.message_dict == {"offsets": ["An offset is given twice."]}


def test_attending_doctor_is_refused_for_a_segment_plan(staff):
    segment = SegmentFactory()

    with pytest.raises(ValidationError) as raised:
        plan_save(
            actor=staff["administrator"],
            data={
                "name": "慢病人群",
                "trigger": "segment",
                "segment": segment,
                "offsets": [0],
                "questionnaire": questionnaire(),
                "channel": "phone",
                "assignee_kind": "attending",
            },
        )

    assert raised.value.message_dict == {
        "assignee_kind": ["Only a plan triggered by an encounter has an attending doctor."]
    }


# --- Triggers ---------------------------------------------------------------------------------------


def test_the_same_discharge_delivered_twice_over_hl7_makes_one_task_per_offset(
    internal_medicine, django_capture_on_commit_callbacks
):
    SourceProfile.objects.create(
        sending_application="HIS", sending_facility="TCMH", name="HIS", department_codes={"0301": "NK"}
    )
    discharge_plan = plan(department=internal_medicine)
    admitted, discharged = _local(6), _local(1)
    admit = (f"EVN|A01|{_hl7_time(admitted)}", pid(), pv1(admitted=_hl7_time(admitted)))
    discharge = (
        f"EVN|A03|{_hl7_time(discharged)}",
        pid(),
        pv1(admitted=_hl7_time(admitted), discharged=_hl7_time(discharged)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        hl7_receive(adt("ADMIT1", segments=admit), transport="mllp")

    with django_capture_on_commit_callbacks(execute=True):
        hl7_receive(adt("DISCHARGE1", trigger="A03", segments=discharge), transport="mllp")
    with django_capture_on_commit_callbacks(execute=True):
        hl7_receive(adt("DISCHARGE2", trigger="A03", segments=discharge), transport="mllp")

    encounter = Encounter.objects.get()
    day = discharged.date()
    tasks = FollowUpTask.objects.filter(plan=discharge_plan)
    assert _keys(tasks) == [
        (3, day + dt.timedelta(days=3), "encounter", "pending"),
        (7, day + dt.timedelta(days=7), "encounter", "pending"),
        (30, day + dt.timedelta(days=30), "encounter", "pending"),
    ]
    assert {(t.source_id, t.department_id, t.assignee_role, t.assignee_id) for t in tasks} == {
        (encounter.pk, internal_medicine.pk, "nurse", None)
    }


def test_a_finished_inpatient_encounter_and_a_condition_over_fhir_make_their_tasks(
    db, django_capture_on_commit_callbacks
):
    from tests.integrations.fhir.conftest import condition, encounter, key_client, patient_resource, post_entry
    from tests.integrations.fhir.conftest import transaction as bundle
    from tests.integrations.fhir.test_bundle_writes import ENCOUNTER_URL, PATIENT_URL

    discharge_plan = plan(offsets=[7], assignee_department=DepartmentFactory())
    hypertension_plan = plan(
        name="高血压",
        trigger="diagnosis",
        diagnosis_code_prefix="I10",
        diagnosis_system="western",
        offsets=[30],
        assignee_department=discharge_plan.assignee_department,
    )
    admitted, discharged = _local(5), _local(1)
    visit = encounter(PATIENT_URL, id="visit-1")
    visit["period"] = {"start": admitted.isoformat(), "end": discharged.isoformat()}
    diagnosis = condition(PATIENT_URL, id="diagnosis-1", encounter=ENCOUNTER_URL)
    diagnosis["recordedDate"] = discharged.date().isoformat()
    payload = bundle(
        post_entry(patient_resource(), PATIENT_URL),
        post_entry(visit, ENCOUNTER_URL),
        post_entry(diagnosis),
    )

    emr = key_client("fhir.write")

    with django_capture_on_commit_callbacks(execute=True):
        first = emr.post_fhir("/fhir/R4/", payload)
    with django_capture_on_commit_callbacks(execute=True):
        again = emr.post_fhir("/fhir/R4/", payload)

    assert (first.status_code, again.status_code) == (200, 200)
    assert sorted(FollowUpTask.objects.values_list("plan", "source_kind", "offset_days", "due_date")) == sorted(
        [
            (discharge_plan.pk, "encounter", 7, discharged.date() + dt.timedelta(days=7)),
            (hypertension_plan.pk, "diagnosis", 30, discharged.date() + dt.timedelta(days=30)),
        ]
    )


def test_a_bundle_announces_its_records_once_and_the_plans_of_all_their_kinds_are_read_in_one_statement(
    db, django_capture_on_commit_callbacks, django_assert_num_queries
):
    from tests.integrations.fhir.conftest import condition, encounter, key_client, patient_resource, post_entry
    from tests.integrations.fhir.conftest import transaction as bundle
    from tests.integrations.fhir.test_bundle_writes import ENCOUNTER_URL, PATIENT_URL

    visit = encounter(PATIENT_URL, id="visit-1")
    visit["period"] = {"start": _local(5).isoformat(), "end": _local(1).isoformat()}
    payload = bundle(
        post_entry(patient_resource(), PATIENT_URL),
        post_entry(visit, ENCOUNTER_URL),
        post_entry(condition(PATIENT_URL, id="diagnosis-1", encounter=ENCOUNTER_URL)),
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = key_client("fhir.write").post_fhir("/fhir/R4/", payload)

    assert response.status_code == 200, response.content
    assert len(callbacks) == 1
    # No plan is active: the one look-up finds none for the encounter and the diagnosis, and nothing follows.
    with django_assert_num_queries(1):
        callbacks[0]()
    assert FollowUpTask.objects.count() == 0


def test_a_discharge_entered_in_the_console_makes_its_tasks_on_commit(
    patient, staff, internal_medicine, django_capture_on_commit_callbacks
):
    plan(department=internal_medicine, offsets=[3])
    stay = EncounterFactory(
        patient=patient, kind="inpatient", status="in_progress", department=internal_medicine, started_at=_local(4)
    )

    with django_capture_on_commit_callbacks(execute=True):
        record_update(actor=staff["doctor"], record=stay, data={"status": "finished", "ended_at": _local(1)})

    assert list(FollowUpTask.objects.values_list("source_id", "offset_days")) == [(stay.pk, 3)]


def test_the_periodic_task_sweeps_the_last_days(patient, internal_medicine):
    from followups.tasks import followups_sweep_recent

    plan(department=internal_medicine, offsets=[3])
    _discharged(patient, internal_medicine, days_ago=2)
    _discharged(PatientFactory(), internal_medicine, days_ago=4)

    assert (followups_sweep_recent(), followups_sweep_recent()) == (1, 0)


def test_triggering_an_encounter_twice_creates_nothing_the_second_time(patient, internal_medicine):
    plan(department=internal_medicine)
    encounter = _discharged(patient, internal_medicine)

    first = tasks_for_encounter(encounter=encounter)
    second = tasks_for_encounter(encounter=encounter)

    assert (first, second, FollowUpTask.objects.count()) == (3, 0, 3)


def test_a_discharge_from_another_department_or_still_open_makes_no_task(patient, internal_medicine, acupuncture):
    plan(department=internal_medicine)
    elsewhere = _discharged(patient, acupuncture)
    open_visit = EncounterFactory(patient=patient, kind="inpatient", status="in_progress", department=internal_medicine)

    created = tasks_for_encounter(encounter=elsewhere) + tasks_for_encounter(encounter=open_visit)

    assert (created, FollowUpTask.objects.count()) == (0, 0)


def test_offsets_due_long_ago_are_not_created(patient, internal_medicine):
    plan(department=internal_medicine, offsets=[3, 60])
    encounter = _discharged(patient, internal_medicine, days_ago=50)

    tasks_for_encounter(encounter=encounter)

    assert list(FollowUpTask.objects.values_list("offset_days", flat=True)) == [60]


def test_the_attending_doctor_gets_the_task_and_the_department_doctors_when_he_has_no_account(
    patient, internal_medicine, staff
):
    plan(department=internal_medicine, assignee_kind="attending", assignee_role="", offsets=[7])
    known = _discharged(patient, internal_medicine, doctor=staff["doctor"])
    unknown = _discharged(PatientFactory(), internal_medicine, days_ago=2)

    tasks_for_encounter(encounter=known)
    tasks_for_encounter(encounter=unknown)

    assert sorted(
        FollowUpTask.objects.values_list("source_id", "assignee_id", "assignee_role", "department_id")
    ) == sorted(
        [(known.pk, staff["doctor"].pk, "", internal_medicine.pk), (unknown.pk, None, "doctor", internal_medicine.pk)]
    )


def test_a_task_counts_its_days_from_the_local_discharge_date_and_takes_the_plan_s_terms(
    patient, internal_medicine, acupuncture
):
    discharge_plan = plan(
        department=internal_medicine,
        offsets=[7],
        channel="sms",
        assignee_department=acupuncture,
        retry_attempts=2,
        retry_spacing_hours=6,
    )
    # Half past midnight in the hospital's zone is still the day before in UTC: the local day counts.
    local_day = timezone.localdate() - dt.timedelta(days=3)
    ended = dt.datetime.combine(local_day, dt.time(0, 30), tzinfo=timezone.get_default_timezone())
    encounter = EncounterFactory(
        patient=patient,
        kind="inpatient",
        status="finished",
        department=internal_medicine,
        started_at=ended - dt.timedelta(days=5),
        ended_at=ended,
    )

    assert tasks_for_encounter(encounter=encounter) == 1

    made = FollowUpTask.objects.get()
    due = local_day + dt.timedelta(days=7)
    assert (
        made.plan_id,
        made.source_kind,
        made.source_id,
        made.due_date,
        made.due_at,
        made.channel,
        made.questionnaire_id,
        made.assignee_id,
        made.assignee_role,
        made.department_id,
        made.status,
        made.max_attempts,
        made.retry_spacing_hours,
    ) == (
        discharge_plan.pk,
        "encounter",
        encounter.pk,
        due,
        day_start(due),
        "sms",
        discharge_plan.questionnaire_id,
        None,
        "nurse",
        acupuncture.pk,
        "pending",
        2,
        6,
    )


def test_an_outpatient_visit_counts_from_its_start_and_a_cancelled_one_makes_nothing(patient, internal_medicine):
    plan(name="复诊", trigger="outpatient_visit", offsets=[1])
    visit = EncounterFactory(patient=patient, kind="outpatient", department=internal_medicine, started_at=_local(2))
    cancelled = EncounterFactory(
        patient=patient, kind="outpatient", status="cancelled", department=internal_medicine, started_at=_local(1)
    )
    discharge = _discharged(patient, internal_medicine)

    created = sum(tasks_for_encounter(encounter=one) for one in (visit, cancelled, discharge))

    assert created == 1
    assert list(FollowUpTask.objects.values_list("source_id", "due_date", "department_id")) == [
        (visit.pk, timezone.localdate(visit.started_at) + dt.timedelta(days=1), internal_medicine.pk)
    ]


def test_a_diagnosis_plan_matches_the_code_prefix_in_its_own_code_system(patient, staff):
    plan(
        name="高血压",
        trigger="diagnosis",
        diagnosis_code_prefix="I10",
        diagnosis_system="western",
        offsets=[0],
        assignee_department=staff["nurse"].staff_departments.get().department,
    )
    plan(name="眩晕", trigger="diagnosis", diagnosis_code_prefix="BNG", diagnosis_system="tcm", offsets=[0])
    hypertension = DiagnosisFactory(patient=patient, system="icd10", code="I10.X00", diagnosed_at=_local(1))
    tcm_code_in_icd = DiagnosisFactory(patient=patient, system="icd10", code="BNG070", diagnosed_at=_local(1))
    vertigo = DiagnosisFactory(patient=patient, system="tcm_disease", code="BNG070", diagnosed_at=_local(1))

    created = [tasks_for_diagnosis(diagnosis=record) for record in (hypertension, tcm_code_in_icd, vertigo)]

    assert created == [1, 0, 1]
    assert sorted(FollowUpTask.objects.values_list("plan__name", "source_kind", "source_id")) == sorted(
        [("高血压", "diagnosis", hypertension.pk), ("眩晕", "diagnosis", vertigo.pk)]
    )


def test_a_procedure_plan_matches_the_code_prefix(patient, internal_medicine):
    plan(
        name="针刺后",
        trigger="procedure",
        procedure_code_prefix="ZJ",
        offsets=[1],
        assignee_department=internal_medicine,
    )
    needle = ProcedureFactory(patient=patient, code="ZJ01", performed_at=_local(0.5))
    other = ProcedureFactory(patient=patient, code="TN02", performed_at=_local(0.5))

    assert (tasks_for_procedure(procedure=needle), tasks_for_procedure(procedure=other)) == (1, 0)


def test_a_deceased_patient_gets_no_task(internal_medicine):
    plan(department=internal_medicine)
    dead = PatientFactory(is_deceased=True)

    created = tasks_for_encounter(encounter=_discharged(dead, internal_medicine))

    assert (created, FollowUpTask.objects.count()) == (0, 0)


def test_a_diagnosis_recorded_in_the_console_makes_its_task_on_commit(
    patient, staff, internal_medicine, django_capture_on_commit_callbacks
):
    plan(
        name="高血压",
        trigger="diagnosis",
        diagnosis_code_prefix="I10",
        diagnosis_system="western",
        offsets=[14],
        assignee_department=internal_medicine,
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        diagnosis = record_create(
            actor=staff["doctor"],
            model=DiagnosisFactory._meta.model,
            patient=patient,
            data={"system": "icd10", "code": "I10", "name": "高血压", "diagnosed_at": _local(0.1)},
        )

    assert len(callbacks) == 1
    assert list(FollowUpTask.objects.values_list("source_kind", "source_id", "due_date")) == [
        ("diagnosis", diagnosis.pk, _local(0.1).date() + dt.timedelta(days=14))
    ]


# --- The sweep --------------------------------------------------------------------------------------


def test_the_sweep_catches_up_once_and_then_creates_nothing(internal_medicine):
    plan(department=internal_medicine, offsets=[3, 7])
    plan(name="复诊", trigger="outpatient_visit", offsets=[1], assignee_department=internal_medicine)
    segment = SegmentFactory(filters={"sexes": ["female"]})
    plan(name="女性健康", trigger="segment", segment=segment, offsets=[0], assignee_department=internal_medicine)
    woman, man = PatientFactory(sex="female"), PatientFactory(sex="male")
    _discharged(man, internal_medicine, days_ago=1)
    _discharged(man, internal_medicine, days_ago=10)  # before `since`
    EncounterFactory(patient=woman, kind="outpatient", department=internal_medicine, started_at=_local(0.5))

    first = followups_sweep(since=timezone.now() - dt.timedelta(days=3), batch_size=1)
    second = followups_sweep(since=timezone.now() - dt.timedelta(days=3), batch_size=1)

    assert (first, second) == (4, 0)
    assert sorted(FollowUpTask.objects.values_list("plan__name", "patient__sex", "offset_days")) == [
        ("出院随访", "male", 3),
        ("出院随访", "male", 7),
        ("复诊", "female", 1),
        ("女性健康", "female", 0),
    ]


def test_the_database_refuses_a_second_task_for_the_same_patient_plan_offset_and_source(patient, internal_medicine):
    discharge_plan = plan(department=internal_medicine, offsets=[3])
    tasks_for_encounter(encounter=_discharged(patient, internal_medicine))
    made = FollowUpTask.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        task(
            patient=patient,
            plan=discharge_plan,
            source_kind="encounter",
            source_id=made.source_id,
            offset_days=3,
        )

    assert FollowUpTask.objects.count() == 1


def test_a_segment_member_swept_again_after_leaving_and_rejoining_gets_no_second_task(internal_medicine):
    segment = SegmentFactory(filters={"sexes": ["female"]})
    plan(name="女性健康", trigger="segment", segment=segment, offsets=[0, 30], assignee_department=internal_medicine)
    member = PatientFactory(sex="female")

    first = followups_sweep(since=timezone.now())
    member.sex = "male"
    member.save()
    left = followups_sweep(since=timezone.now())
    member.sex = "female"
    member.save()
    back = followups_sweep(since=timezone.now())

    assert (first, left, back) == (2, 0, 0)


# --- Pre-check --------------------------------------------------------------------------------------


def test_precheck_closes_the_task_of_a_patient_who_died(patient):
    open_task = task(patient=patient)
    patient.is_deceased = True
    patient.save()

    reason = task_precheck(task=open_task)

    open_task.refresh_from_db()
    assert (reason, open_task.status, open_task.closed_reason) == ("deceased", "closed", "deceased")


def test_precheck_closes_a_discharge_task_when_the_patient_is_back_in_hospital(patient, internal_medicine):
    discharge_plan = plan(department=internal_medicine, offsets=[3])
    encounter = _discharged(patient, internal_medicine, days_ago=2)
    tasks_for_encounter(encounter=encounter)
    EncounterFactory(
        patient=patient, kind="inpatient", status="in_progress", department=internal_medicine, started_at=_local(1)
    )
    waiting = FollowUpTask.objects.get(plan=discharge_plan)

    reason = task_precheck(task=waiting)

    waiting.refresh_from_db()
    assert (reason, waiting.status, waiting.closed_reason) == ("readmitted", "closed", "readmitted")


def test_precheck_cancels_a_discharge_task_when_the_discharge_was_undone(patient, internal_medicine):
    discharge_plan = plan(department=internal_medicine, offsets=[3])
    stay = _discharged(patient, internal_medicine, days_ago=2)
    tasks_for_encounter(encounter=stay)
    Encounter.objects.filter(pk=stay.pk).update(status="in_progress", ended_at=None)
    waiting = FollowUpTask.objects.get(plan=discharge_plan)

    reason = task_precheck(task=waiting)

    waiting.refresh_from_db()
    assert (reason, waiting.status, waiting.closed_reason) == ("cancelled", "closed", "cancelled")


def test_precheck_lets_an_ordinary_discharge_task_go_ahead(patient, internal_medicine):
    discharge_plan = plan(department=internal_medicine, offsets=[3])
    tasks_for_encounter(encounter=_discharged(patient, internal_medicine, days_ago=2))
    waiting = FollowUpTask.objects.get(plan=discharge_plan)

    reason = task_precheck(task=waiting)

    waiting.refresh_from_db()
    assert (reason, waiting.status, waiting.closed_reason) == ("", "pending", "")


def test_precheck_closes_when_consent_for_the_channel_is_withdrawn_and_keeps_the_others(patient, staff):
    by_sms = task(patient=patient, channel="sms")
    by_phone = task(patient=patient, channel="phone", offset_days=1)
    consent_set(actor=staff["nurse"], patient=patient, purpose="follow_up", channel="sms", granted=False)

    reasons = (task_precheck(task=by_sms), task_precheck(task=by_phone))

    by_sms.refresh_from_db()
    by_phone.refresh_from_db()
    assert reasons == ("consent_withdrawn", "")
    assert [(t.status, t.closed_reason) for t in (by_sms, by_phone)] == [
        ("closed", "consent_withdrawn"),
        ("pending", ""),
    ]


# --- Attempts ---------------------------------------------------------------------------------------


def test_no_answer_retries_after_the_spacing_until_the_attempts_run_out(patient, staff):
    work = task(patient=patient, max_attempts=3, retry_spacing_hours=24)
    nurse = staff["nurse"]

    first = task_record_attempt(task=work, outcome="no_answer", notes="无人接听", actor=nurse)
    first_status, first_retry = first.status, first.next_attempt_at
    second = task_record_attempt(task=first, outcome="busy", notes="", actor=nurse)
    second_status = second.status
    third = task_record_attempt(task=second, outcome="no_answer", notes="", actor=nurse)

    assert (first_status, second_status) == ("unreached", "unreached")
    assert first_retry - first.updated_at < dt.timedelta(hours=24, seconds=1)
    assert first_retry - first.updated_at > dt.timedelta(hours=23, minutes=59)
    assert (third.status, third.closed_reason, third.attempts, third.next_attempt_at) == (
        "closed",
        "max_attempts",
        3,
        None,
    )
    assert list(ContactEntry.objects.order_by("id").values_list("outcome", "purpose", "channel", "summary")) == [
        ("no_answer", "follow_up", "phone", "无人接听"),
        ("busy", "follow_up", "phone", ""),
        ("no_answer", "follow_up", "phone", ""),
    ]


@pytest.mark.parametrize(
    ("outcome", "status", "reason"),
    [
        ("reached", "in_progress", ""),
        ("wrong_number", "closed", "wrong_number"),
        ("refused", "closed", "refused"),
        ("deceased", "closed", "deceased"),
    ],
)
def test_an_attempt_outcome_decides_the_task(patient, staff, outcome, status, reason):
    work = task(patient=patient)

    done = task_record_attempt(task=work, outcome=outcome, notes="", actor=staff["nurse"])

    assert (done.status, done.closed_reason, done.attempts) == (status, reason, 1)
    assert ContactEntry.objects.get().staff == staff["nurse"]


def test_an_unknown_outcome_changes_nothing(patient, staff):
    work = task(patient=patient)

    with pytest.raises(ValidationError) as raised:
        task_record_attempt(task=work, outcome="maybe", notes="", actor=staff["nurse"])

    work.refresh_from_db()
    assert raised.value.message_dict == {"outcome": ["Choose the outcome of the call."]}
    assert (work.status, work.attempts, ContactEntry.objects.count()) == ("pending", 0, 0)


# --- One-off, claim, reassign -----------------------------------------------------------------------


def test_a_doctor_schedules_a_one_off_follow_up_in_two_weeks(patient, staff, internal_medicine):
    form = questionnaire()
    due = timezone.localdate() + dt.timedelta(days=14)

    scheduled = followup_schedule_one_off(
        actor=staff["doctor"], patient=patient, questionnaire=form, channel="phone", due_date=due
    )

    assert (
        scheduled.plan,
        scheduled.source_kind,
        scheduled.offset_days,
        scheduled.due_date,
        scheduled.assignee,
        scheduled.department,
        scheduled.status,
    ) == (None, "manual", 14, due, staff["doctor"], internal_medicine, "pending")


def test_a_one_off_follow_up_in_the_past_with_a_draft_questionnaire_is_refused(patient, staff):
    with pytest.raises(ValidationError) as raised:
        followup_schedule_one_off(
            actor=staff["doctor"],
            patient=patient,
            questionnaire=questionnaire(status="draft"),
            channel="fax",
            due_date=timezone.localdate() - dt.timedelta(days=1),
        )

    assert sorted(raised.value.message_dict) == ["channel", "due_date", "questionnaire"]
    assert FollowUpTask.objects.count() == 0


def test_a_task_claimed_once_cannot_be_claimed_again(patient, staff):
    work = task(patient=patient)

    first = task_claim(task=work, actor=staff["nurse"])
    second = task_claim(task=work, actor=staff["agent"])

    work.refresh_from_db()
    assert (first, second, work.status, work.claimed_by) == (True, False, "claimed", staff["nurse"])


def test_reassigning_to_staff_of_another_department_is_refused(patient, staff, internal_medicine):
    work = task(patient=patient, department=internal_medicine)

    with pytest.raises(ValidationError):
        task_reassign(task=work, actor=staff["department_head"], assignee=staff["other_doctor"])
    moved = task_reassign(task=work, actor=staff["department_head"], assignee=staff["doctor"])

    work.refresh_from_db()
    assert (moved.assignee, work.assignee) == (staff["doctor"], staff["doctor"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_staff_claiming_at_the_same_moment_never_both_get_the_task(internal_medicine):
    if connection.vendor != "postgresql":
        pytest.skip("racing transactions need PostgreSQL's concurrent connections")
    people = [UserFactory(departments=[internal_medicine]) for _index in range(8)]
    work = task(patient=PatientFactory())
    start = threading.Barrier(len(people), timeout=30)
    results: dict[int, bool] = {}

    def claim(person) -> None:
        try:
            start.wait()
            results[person.pk] = task_claim(task=FollowUpTask.objects.get(pk=work.pk), actor=person)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(person,)) for person in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    work.refresh_from_db()
    winners = [pk for pk, won in results.items() if won]
    assert (len(results), len(winners)) == (8, 1)
    assert work.claimed_by_id == winners[0]


def test_a_diagnosis_no_plan_matches_reads_no_visit(patient, django_assert_num_queries):
    # given a plan for hypertension and a visit with a gastritis diagnosis
    plan(name="高血压", trigger="diagnosis", diagnosis_code_prefix="I10", diagnosis_system="western", offsets=[0])
    visit = EncounterFactory(patient=patient)
    gastritis = DiagnosisFactory(patient=patient, encounter=visit, system="icd10", code="K29.500")

    # when its tasks are made: only the plans are read, not the visit
    with django_assert_num_queries(1):
        created = tasks_for_diagnosis(diagnosis=gastritis)

    assert created == 0
    assert FollowUpTask.objects.count() == 0
