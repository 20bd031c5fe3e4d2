"""Follow-up plans: saving the rules, and turning encounters, diagnoses, procedures and segments into tasks.

Tasks are inserted with ON CONFLICT DO NOTHING against the `followup_task_once` constraint, so
whatever fires twice (a trigger, a redelivered discharge, the sweep) creates nothing new. On PostgreSQL
the tasks of discharges and visits are made by one `INSERT … SELECT` per plan and batch of encounters
(`_encounter_tasks_insert`), which the sweep over a backlog of 100,000 discharges needs; the embedded
database applies the same rules in Python (`_encounter_tasks`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from followups.models import (
    AssigneeKind,
    DiagnosisSystem,
    FollowUpPlan,
    FollowUpTask,
    SourceKind,
    TriggerKind,
)
from hcrm.audit import audit_acting_as
from hcrm.process_cache import ProcessCache
from hcrm.roles import Role
from hcrm.rows import rows_insert_missing, rows_load
from patients.models import CodeSystem, Diagnosis, Encounter, Patient, Procedure
from patients.selectors.segments import segment_patients

# An offset due longer ago than this is not created: importing last year's discharges must not fill
# the worklists with follow-ups nobody can do any more.
LATE_LIMIT_DAYS = 30
MAX_OFFSET_DAYS = 3650
SWEEP_BATCH = 2000

PLAN_FIELDS = (
    "name",
    "active",
    "trigger",
    "department",
    "diagnosis_code_prefix",
    "diagnosis_system",
    "procedure_code_prefix",
    "segment",
    "offsets",
    "questionnaire",
    "channel",
    "assignee_kind",
    "assignee_role",
    "assignee_department",
    "retry_attempts",
    "retry_spacing_hours",
)

_DIAGNOSIS_SYSTEMS = {
    DiagnosisSystem.WESTERN: (CodeSystem.ICD10,),
    DiagnosisSystem.TCM: (CodeSystem.TCM_DISEASE, CodeSystem.TCM_SYNDROME),
}
_ENCOUNTER_TRIGGERS = (
    TriggerKind.DISCHARGE,
    TriggerKind.OUTPATIENT_VISIT,
    TriggerKind.DIAGNOSIS,
    TriggerKind.PROCEDURE,
)


def _offsets_clean(value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ValidationError(_("Give at least one offset in days."), code="required")
    if any(isinstance(item, bool) or not isinstance(item, int) for item in value):
        raise ValidationError(_("Offsets are whole numbers of days."), code="invalid")
    if any(item < 0 or item > MAX_OFFSET_DAYS for item in value):
        raise ValidationError(
            _("Offsets are between 0 and %(max)d days.") % {"max": MAX_OFFSET_DAYS}, code="out_of_range"
        )
    if len(set(value)) != len(value):
        raise ValidationError(_("An offset is given twice."), code="duplicate")
    return sorted(value)


def _plan_errors(plan: FollowUpPlan) -> dict[str, list[ValidationError]]:
    errors: dict[str, list[ValidationError]] = {}

    def add(field: str, message: str, code: str = "required") -> None:
        errors.setdefault(field, []).append(ValidationError(message, code=code))

    try:
        plan.offsets = _offsets_clean(plan.offsets)
    except ValidationError as error:
        errors["offsets"] = [error]
    plan.diagnosis_code_prefix = plan.diagnosis_code_prefix.strip().upper()
    plan.procedure_code_prefix = plan.procedure_code_prefix.strip().upper()
    if plan.trigger == TriggerKind.DIAGNOSIS:
        if not plan.diagnosis_code_prefix:
            add("diagnosis_code_prefix", _("A diagnosis plan needs a code prefix."))
        if not plan.diagnosis_system:
            add("diagnosis_system", _("A diagnosis plan needs the code system."))
    if plan.trigger == TriggerKind.PROCEDURE and not plan.procedure_code_prefix:
        add("procedure_code_prefix", _("A procedure plan needs a code prefix."))
    if plan.trigger == TriggerKind.SEGMENT and plan.segment_id is None:
        add("segment", _("A segment plan needs a segment."))
    if plan.assignee_kind == AssigneeKind.ROLE and not plan.assignee_role:
        add("assignee_role", _("Choose the role that works these tasks."))
    if plan.assignee_kind == AssigneeKind.ATTENDING and plan.trigger not in _ENCOUNTER_TRIGGERS:
        add("assignee_kind", _("Only a plan triggered by an encounter has an attending doctor."), "invalid")
    if (
        plan.assignee_kind == AssigneeKind.ROLE
        and plan.assignee_department_id is None
        and plan.department_id is None
        and plan.trigger in (TriggerKind.SEGMENT, TriggerKind.MANUAL, TriggerKind.RESEARCH)
    ):
        add("assignee_department", _("Choose the department whose staff work these tasks."))
    try:
        plan.full_clean(exclude=["offsets", "created_by", *errors], validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    return errors


def plan_save(*, actor, data: dict[str, Any], plan: FollowUpPlan | None = None) -> FollowUpPlan:
    """Create a plan, or change `plan`, from `data` (model fields); errors name the fields."""
    unknown = set(data) - set(PLAN_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be set.") for name in sorted(unknown)})
    if data.get("trigger") == TriggerKind.RESEARCH or (plan is not None and plan.trigger == TriggerKind.RESEARCH):
        # A research plan is its cohort's: saved with the cohort, so the two never disagree.
        raise ValidationError({"trigger": _("A research cohort's plan is changed on the cohort's page.")})
    plan = plan or FollowUpPlan(created_by=actor if getattr(actor, "pk", None) else None)
    for field, value in data.items():
        setattr(plan, field, value)
    errors = _plan_errors(plan)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            plan.save()
    except IntegrityError:
        raise ValidationError({"name": _("A plan with this name exists.")}) from None
    return plan


# --- Making tasks ---------------------------------------------------------------------------------


def _local_date(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment, timezone=timezone.get_default_timezone())


def day_start(day: dt.date) -> dt.datetime:
    """The start of `day` in the hospital's zone."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def _tasks_of_plan(
    plan: FollowUpPlan,
    *,
    patient_id: int,
    source_kind: str,
    source_id: int,
    base: dt.date,
    department_id: int | None,
    doctor_id: int | None,
    today: dt.date,
) -> list[FollowUpTask]:
    assignee_id = None
    role = ""
    department = plan.assignee_department_id or department_id or plan.department_id
    if plan.assignee_kind == AssigneeKind.ATTENDING and doctor_id is not None:
        assignee_id = doctor_id
    elif plan.assignee_kind == AssigneeKind.ATTENDING:
        # The HIS named a doctor who has no account here: the department's doctors share the task.
        role = Role.DOCTOR
    else:
        role = plan.assignee_role
    tasks = []
    for offset in plan.offsets:
        due = base + dt.timedelta(days=offset)
        if (today - due).days > LATE_LIMIT_DAYS:
            continue
        tasks.append(
            FollowUpTask(
                plan=plan,
                patient_id=patient_id,
                source_kind=source_kind,
                source_id=source_id,
                offset_days=offset,
                due_date=due,
                due_at=day_start(due),
                channel=plan.channel,
                questionnaire_id=plan.questionnaire_id,
                assignee_id=assignee_id,
                assignee_role=role,
                department_id=department,
                max_attempts=plan.retry_attempts,
                retry_spacing_hours=plan.retry_spacing_hours,
            )
        )
    return tasks


def _insert(tasks: list[FollowUpTask]) -> int:
    """Insert the tasks not made before; the count of those that are new."""
    if not tasks:
        return 0
    if connection.vendor == "postgresql":
        return rows_insert_missing(tasks)
    keys = {(task.patient_id, task.plan_id, task.offset_days, task.source_kind, task.source_id) for task in tasks}
    patients = {task.patient_id for task in tasks}
    before = FollowUpTask.objects.filter(patient_id__in=patients, plan__isnull=False).count()
    FollowUpTask.objects.bulk_create(tasks, ignore_conflicts=True, batch_size=1000)
    after = FollowUpTask.objects.filter(patient_id__in=patients, plan__isnull=False).count()
    return min(after - before, len(keys))


# Asked after every commit that wrote clinical records (an HL7 message, a FHIR bundle): a process keeps
# the active plans this long. A plan saved or deleted in this process is seen at once (see
# `plans_forget`), in other processes (the MLLP listener, workers) within this time.
PLANS_TTL_SECONDS = 10.0
_plans = ProcessCache()


def _all_active_plans() -> tuple[FollowUpPlan, ...]:
    return tuple(rows_load(FollowUpPlan, "t.active ORDER BY t.id", ()))


def _active_plans(*triggers: str, fresh: bool = False) -> list[FollowUpPlan]:
    """The active plans of `triggers` by id (kept in process, see PLANS_TTL_SECONDS; `fresh` reads them now)."""
    plans = _all_active_plans() if fresh else _plans.cached("active", _all_active_plans, ttl_seconds=PLANS_TTL_SECONDS)
    return [plan for plan in plans if plan.trigger in triggers]


def plans_forget(**kwargs) -> None:
    """Drop the kept plans (connected to FollowUpPlan's post_save and post_delete)."""
    _plans.clear()


def _dead_patient_ids(patient_ids: Iterable[int]) -> set[int]:
    return set(
        Patient.objects.filter(Q(is_deceased=True) | Q(merged_into__isnull=False), pk__in=set(patient_ids)).values_list(
            "pk", flat=True
        )
    )


def _encounter_base(plan: FollowUpPlan, encounter: Encounter) -> dt.date | None:
    """The day `plan` counts its offsets from for `encounter`, or None when the plan does not apply to it."""
    if plan.department_id is not None and plan.department_id != encounter.department_id:
        return None
    if plan.trigger == TriggerKind.DISCHARGE:
        if encounter.kind != Encounter.Kind.INPATIENT or encounter.ended_at is None:
            return None
        if encounter.status != Encounter.Status.FINISHED:
            return None
        return _local_date(encounter.ended_at)
    if encounter.kind != Encounter.Kind.OUTPATIENT or encounter.status == Encounter.Status.CANCELLED:
        return None
    return _local_date(encounter.started_at)


def _encounter_tasks(encounters: list[Encounter], plans: list[FollowUpPlan], today: dt.date) -> list[FollowUpTask]:
    tasks: list[FollowUpTask] = []
    for encounter in encounters:
        for plan in plans:
            base = _encounter_base(plan, encounter)
            if base is None:
                continue
            tasks += _tasks_of_plan(
                plan,
                patient_id=encounter.patient_id,
                source_kind=SourceKind.ENCOUNTER,
                source_id=encounter.pk,
                base=base,
                department_id=encounter.department_id,
                doctor_id=encounter.doctor_id,
                today=today,
            )
    return tasks


def _plans_owing(plans: list[FollowUpPlan], encounters: list[Encounter], today: dt.date) -> list[FollowUpPlan]:
    """The plans that may owe any of the just-written `encounters` a task (a discharge plan owes an
    outpatient visit nothing): the database is asked only about these."""
    owing = []
    for plan in plans:
        for encounter in encounters:
            base = _encounter_base(plan, encounter)
            if base is not None and _any_offset_due(plan, base, today):
                owing.append(plan)
                break
    return owing


def _encounter_of(record: Diagnosis | Procedure, encounters: dict[int, Encounter]) -> Encounter | None:
    return encounters.get(record.encounter_id) if record.encounter_id else None


def _diagnosis_matches(plan: FollowUpPlan, diagnosis: Diagnosis) -> bool:
    systems = _DIAGNOSIS_SYSTEMS.get(plan.diagnosis_system, ())
    return diagnosis.system in systems and diagnosis.code.upper().startswith(plan.diagnosis_code_prefix)


def _code_matches(plan: FollowUpPlan, record: Diagnosis | Procedure) -> bool:
    if isinstance(record, Diagnosis):
        return _diagnosis_matches(plan, record)
    return record.code.upper().startswith(plan.procedure_code_prefix)


def _any_offset_due(plan: FollowUpPlan, base: dt.date, today: dt.date) -> bool:
    """Whether a task of `plan` counted from `base` is due recently enough to be made (see LATE_LIMIT_DAYS)."""
    return any((today - base).days - offset <= LATE_LIMIT_DAYS for offset in plan.offsets)


def _record_tasks(
    records: list[Diagnosis] | list[Procedure], plans: list[FollowUpPlan], today: dt.date
) -> list[FollowUpTask]:
    # Most records match no plan's code, or only plans whose offsets are all long past: their visits
    # are not read at all; nor are visits the writer handed over with the records.
    wanted = []
    for record in records:
        base = _local_date(record.diagnosed_at if isinstance(record, Diagnosis) else record.performed_at)
        matching = [plan for plan in plans if _code_matches(plan, record) and _any_offset_due(plan, base, today)]
        if matching:
            wanted.append((record, matching))
    encounters: dict[int, Encounter] = {}
    for record, _matching in wanted:
        if record.encounter_id and type(record).encounter.is_cached(record):
            encounters[record.encounter_id] = record.encounter
    encounter_ids = sorted(
        {record.encounter_id for record, _matching in wanted if record.encounter_id} - set(encounters)
    )
    if encounter_ids:
        placeholders = ", ".join(["%s"] * len(encounter_ids))
        encounters.update(
            (encounter.pk, encounter) for encounter in rows_load(Encounter, f"t.id IN ({placeholders})", encounter_ids)
        )
    tasks: list[FollowUpTask] = []
    for record, matching in wanted:
        encounter = _encounter_of(record, encounters)
        department_id = encounter.department_id if encounter is not None else None
        if isinstance(record, Diagnosis):
            kind, moment = SourceKind.DIAGNOSIS, record.diagnosed_at
            doctor_id = record.doctor_id or (encounter.doctor_id if encounter is not None else None)
        else:
            kind, moment = SourceKind.PROCEDURE, record.performed_at
            doctor_id = record.performer_id or (encounter.doctor_id if encounter is not None else None)
        for plan in matching:
            if plan.department_id is not None and plan.department_id != department_id:
                continue
            tasks += _tasks_of_plan(
                plan,
                patient_id=record.patient_id,
                source_kind=kind,
                source_id=record.pk,
                base=_local_date(moment),
                department_id=department_id,
                doctor_id=doctor_id,
                today=today,
            )
    return tasks


def _without_dead(tasks: list[FollowUpTask]) -> list[FollowUpTask]:
    dead = _dead_patient_ids(task.patient_id for task in tasks) if tasks else set()
    return [task for task in tasks if task.patient_id not in dead]


# One plan's tasks for a batch of encounters: the rules of `_encounter_tasks` and `_tasks_of_plan` in SQL.
_ENCOUNTER_TASKS_SQL = """
    INSERT INTO followups_followuptask (uuid, created_at, updated_at, plan_id, patient_id, source_kind, source_id,
        offset_days, due_date, due_at, channel, questionnaire_id, assignee_id, assignee_role, department_id,
        status, closed_reason, attempts, max_attempts, retry_spacing_hours, note)
    SELECT gen_random_uuid(), %(now)s, %(now)s, %(plan)s, e.patient_id, %(source_kind)s, e.id,
           o.offset_days, base.day + o.offset_days, (base.day + o.offset_days)::timestamp AT TIME ZONE %(zone)s,
           %(channel)s, %(questionnaire)s,
           CASE WHEN %(attending)s THEN e.doctor_id END,
           CASE WHEN NOT %(attending)s THEN %(role)s WHEN e.doctor_id IS NULL THEN %(doctor_role)s ELSE '' END,
           coalesce(%(assignee_department)s::bigint, e.department_id, %(department)s::bigint),
           %(pending)s, '', 0, %(attempts)s, %(spacing)s, ''
    FROM patients_encounter e
    JOIN patients_patient p ON p.id = e.patient_id
    CROSS JOIN LATERAL (
        SELECT ((CASE WHEN %(discharge)s THEN e.ended_at ELSE e.started_at END) AT TIME ZONE %(zone)s)::date AS day
    ) base
    CROSS JOIN unnest(%(offsets)s::integer[]) AS o(offset_days)
    WHERE e.id = ANY(%(encounters)s)
      AND CASE WHEN %(discharge)s
               THEN e.kind = %(inpatient)s AND e.ended_at IS NOT NULL AND e.status = %(finished)s
               ELSE e.kind = %(outpatient)s AND e.status <> %(cancelled)s END
      AND (%(department)s::bigint IS NULL OR e.department_id = %(department)s::bigint)
      AND NOT p.is_deceased AND p.merged_into_id IS NULL
      AND %(today)s::date - (base.day + o.offset_days) <= %(late_limit)s
    -- Tasks made before are passed over by the constraint's index, one look-up per row whatever the table's
    -- statistics say (an anti-join planned on statistics taken when the table was small compares every row).
    ON CONFLICT ON CONSTRAINT followup_task_once DO NOTHING
"""


def _encounter_tasks_insert(plans: list[FollowUpPlan], encounter_ids: list[int], today: dt.date) -> int:
    """The tasks `plans` owe the encounters, inserted in the database; how many were new."""
    created = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for plan in plans:
            cursor.execute(
                _ENCOUNTER_TASKS_SQL,
                {
                    "now": timezone.now(),
                    "plan": plan.pk,
                    "source_kind": SourceKind.ENCOUNTER,
                    "zone": timezone.get_default_timezone_name(),
                    "channel": plan.channel,
                    "questionnaire": plan.questionnaire_id,
                    "attending": plan.assignee_kind == AssigneeKind.ATTENDING,
                    "role": plan.assignee_role,
                    # The HIS named a doctor who has no account here: the department's doctors share the task.
                    "doctor_role": Role.DOCTOR,
                    "assignee_department": plan.assignee_department_id,
                    "department": plan.department_id,
                    "pending": FollowUpTask.Status.PENDING,
                    "attempts": plan.retry_attempts,
                    "spacing": plan.retry_spacing_hours,
                    "discharge": plan.trigger == TriggerKind.DISCHARGE,
                    "offsets": list(plan.offsets),
                    "encounters": encounter_ids,
                    "inpatient": Encounter.Kind.INPATIENT,
                    "outpatient": Encounter.Kind.OUTPATIENT,
                    "finished": Encounter.Status.FINISHED,
                    "cancelled": Encounter.Status.CANCELLED,
                    "today": today,
                    "late_limit": LATE_LIMIT_DAYS,
                },
            )
            created += cursor.rowcount
    return created


def _tasks_for_encounter_ids(encounter_ids: list[int], plans: list[FollowUpPlan], today: dt.date) -> int:
    if connection.vendor == "postgresql":
        return _encounter_tasks_insert(plans, encounter_ids, today)
    encounters = list(Encounter.objects.filter(pk__in=encounter_ids).order_by("pk"))
    return _insert(_without_dead(_encounter_tasks(encounters, plans, today)))


ENCOUNTER_TRIGGERS = (TriggerKind.DISCHARGE, TriggerKind.OUTPATIENT_VISIT)


def tasks_for_encounters(
    *, encounters: list[Encounter], today: dt.date | None = None, plans: list[FollowUpPlan] | None = None
) -> int:
    """Make the discharge and outpatient-visit tasks of `encounters` not made before; how many were new.

    `plans`, if given, are the active plans of these triggers, already loaded.
    """
    plans = _active_plans(*ENCOUNTER_TRIGGERS) if plans is None else plans
    if not plans or not encounters:
        return 0
    today = today or timezone.localdate()
    if connection.vendor == "postgresql":
        plans = _plans_owing(plans, encounters, today)
        return _encounter_tasks_insert(plans, [encounter.pk for encounter in encounters], today) if plans else 0
    return _insert(_without_dead(_encounter_tasks(encounters, plans, today)))


def tasks_for_encounter(*, encounter: Encounter, today: dt.date | None = None) -> int:
    """Make the tasks a discharge or an outpatient visit calls for (idempotent)."""
    return tasks_for_encounters(encounters=[encounter], today=today)


def tasks_for_diagnoses(
    *, diagnoses: list[Diagnosis], today: dt.date | None = None, plans: list[FollowUpPlan] | None = None
) -> int:
    """Make the tasks of the diagnosis plans whose code prefix `diagnoses` match (idempotent)."""
    plans = _active_plans(TriggerKind.DIAGNOSIS) if plans is None else plans
    if not plans or not diagnoses:
        return 0
    return _insert(_without_dead(_record_tasks(diagnoses, plans, today or timezone.localdate())))


def tasks_for_diagnosis(*, diagnosis: Diagnosis, today: dt.date | None = None) -> int:
    """Make the tasks a recorded diagnosis calls for (idempotent)."""
    return tasks_for_diagnoses(diagnoses=[diagnosis], today=today)


def tasks_for_procedures(
    *, procedures: list[Procedure], today: dt.date | None = None, plans: list[FollowUpPlan] | None = None
) -> int:
    """Make the tasks of the procedure plans whose code prefix `procedures` match (idempotent)."""
    plans = _active_plans(TriggerKind.PROCEDURE) if plans is None else plans
    if not plans or not procedures:
        return 0
    return _insert(_without_dead(_record_tasks(procedures, plans, today or timezone.localdate())))


def tasks_for_procedure(*, procedure: Procedure, today: dt.date | None = None) -> int:
    """Make the tasks a recorded procedure calls for (idempotent)."""
    return tasks_for_procedures(procedures=[procedure], today=today)


def tasks_for_records(records: list) -> int:
    """The listener of the archive's clinical events: tasks for the encounters, diagnoses and procedures written."""
    encounters = [record for record in records if isinstance(record, Encounter)]
    diagnoses = [record for record in records if isinstance(record, Diagnosis)]
    procedures = [record for record in records if isinstance(record, Procedure)]
    triggers = [
        *(ENCOUNTER_TRIGGERS if encounters else ()),
        *((TriggerKind.DIAGNOSIS,) if diagnoses else ()),
        *((TriggerKind.PROCEDURE,) if procedures else ()),
    ]
    if not triggers:
        return 0
    # The plans of every kind written, in one look-up.
    plans = _active_plans(*triggers)

    def of(*kinds: str) -> list[FollowUpPlan]:
        return [plan for plan in plans if plan.trigger in kinds]

    created = 0
    if encounters:
        created += tasks_for_encounters(encounters=encounters, plans=of(*ENCOUNTER_TRIGGERS))
    if diagnoses:
        created += tasks_for_diagnoses(diagnoses=diagnoses, plans=of(TriggerKind.DIAGNOSIS))
    if procedures:
        created += tasks_for_procedures(procedures=procedures, plans=of(TriggerKind.PROCEDURE))
    return created


# --- The sweep ------------------------------------------------------------------------------------


def _batches(queryset: QuerySet, size: int):
    """Rows of `queryset` in primary-key order, `size` at a time (keyset pagination, no OFFSET)."""
    last = 0
    while True:
        batch = list(queryset.filter(pk__gt=last).order_by("pk")[:size])
        if not batch:
            return
        yield batch
        last = batch[-1].pk


def _segment_tasks(plan: FollowUpPlan, today: dt.date, size: int) -> int:
    created = 0
    # Members already followed up by this plan are left out, so a large segment costs little once swept.
    followed = FollowUpTask.objects.filter(plan=plan, source_kind=SourceKind.SEGMENT, source_id=plan.segment_id)
    members = (
        segment_patients(plan.segment.filters, today=today)
        .exclude(pk__in=followed.values("patient_id"))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    last = 0
    while True:
        batch = list(members.filter(pk__gt=last)[:size])
        if not batch:
            return created
        last = batch[-1]
        tasks = []
        for patient_id in batch:
            tasks += _tasks_of_plan(
                plan,
                patient_id=patient_id,
                source_kind=SourceKind.SEGMENT,
                source_id=plan.segment_id,
                base=today,
                department_id=None,
                doctor_id=None,
                today=today,
            )
        created += _insert(tasks)


def followups_sweep(*, since: dt.datetime, today: dt.date | None = None, batch_size: int = SWEEP_BATCH) -> int:
    """Catch up on discharges, visits, diagnoses and procedures since `since`, segment members and research
    cohorts (enrolling their segments' new patients); new tasks."""
    today = today or timezone.localdate()
    created = 0
    plans = _active_plans(*TriggerKind.values, fresh=True)
    triggers = {plan.trigger for plan in plans}
    for trigger, recent in (
        (TriggerKind.DISCHARGE, Q(kind=Encounter.Kind.INPATIENT, ended_at__gte=since)),
        (TriggerKind.OUTPATIENT_VISIT, Q(kind=Encounter.Kind.OUTPATIENT, started_at__gte=since)),
    ):
        of_trigger = [plan for plan in plans if plan.trigger == trigger]
        if not of_trigger:
            continue
        # The ids in one read: the encounters have no index on these times, and each batch would scan again.
        ids = list(Encounter.objects.filter(recent).order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(ids), batch_size):
            created += _tasks_for_encounter_ids(ids[start : start + batch_size], of_trigger, today)
    if TriggerKind.DIAGNOSIS in triggers:
        of_trigger = [plan for plan in plans if plan.trigger == TriggerKind.DIAGNOSIS]
        for batch in _batches(Diagnosis.objects.filter(diagnosed_at__gte=since), batch_size):
            created += tasks_for_diagnoses(diagnoses=batch, today=today, plans=of_trigger)
    if TriggerKind.PROCEDURE in triggers:
        of_trigger = [plan for plan in plans if plan.trigger == TriggerKind.PROCEDURE]
        for batch in _batches(Procedure.objects.filter(performed_at__gte=since), batch_size):
            created += tasks_for_procedures(procedures=batch, today=today, plans=of_trigger)
    for plan in plans:
        if plan.trigger == TriggerKind.SEGMENT and plan.segment_id is not None:
            created += _segment_tasks(plan, today, batch_size)
    if TriggerKind.RESEARCH in triggers:
        from followups.services.research import research_sweep  # research builds on this module

        created += research_sweep(today=today, batch_size=batch_size)
    return created
