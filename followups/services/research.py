"""Research cohorts: saving one with its plan, enrolling its segment's patients, their tasks, withdrawal.

A cohort's tasks are made by the plans' machinery (`_tasks_of_plan`, `_insert`): source "research", the
cohort as source record, one task per member per wave, whatever runs twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from followups.models import (
    OPEN_STATUSES,
    AssigneeKind,
    CloseReason,
    CohortMember,
    FollowUpPlan,
    FollowUpTask,
    ResearchCohort,
    ScheduleKind,
    SourceKind,
    TriggerKind,
)
from followups.models.questionnaires import QuestionnaireStatus
from followups.services.plans import (
    MAX_OFFSET_DAYS,
    SWEEP_BATCH,
    _insert,
    _local_date,
    _plan_errors,
    _tasks_of_plan,
    _without_dead,
)
from followups.services.tasks import _close
from hcrm.audit import Event, audit_acting_as, audit_write
from patients.selectors.segments import segment_patients

PSEUDONYM_LENGTH = 20  # hex digits of the HMAC: 80 bits, no collision within any real cohort

COHORT_FIELDS = (
    "name",
    "description",
    "principal_investigator",
    "segment",
    "schedule_kind",
    "interval_days",
    "start_date",
    "end_date",
    "ethics_approval",
    "active",
)
# What a cohort decides through its plan.
COHORT_PLAN_FIELDS = (
    "offsets",
    "questionnaire",
    "channel",
    "assignee_role",
    "assignee_department",
    "retry_attempts",
    "retry_spacing_hours",
)
_FOREIGN_KEYS = frozenset({"principal_investigator", "segment", "questionnaire", "assignee_department"})


def pseudonym_of(cohort: ResearchCohort, patient_id: int) -> str:
    """The cohort's name for a patient: HMAC-SHA256 of the patient's id keyed by the cohort's secret salt.

    Stable within the cohort, unrelated across cohorts, and no way back to the patient without the salt.
    """
    digest = hmac.new(cohort.pseudonym_salt.encode(), str(patient_id).encode(), hashlib.sha256).hexdigest()
    return digest[:PSEUDONYM_LENGTH]


def interval_offsets(start: dt.date, end: dt.date, every: int) -> list[int]:
    """The days after `start` of each wave of an "every `every` days until `end`" schedule."""
    return list(range(0, (end - start).days + 1, every))


def _schedule_errors(cohort: ResearchCohort, plan: FollowUpPlan) -> dict[str, list[ValidationError]]:
    errors: dict[str, list[ValidationError]] = {}
    if cohort.end_date is not None and cohort.start_date is not None and cohort.end_date < cohort.start_date:
        errors["end_date"] = [ValidationError(_("The end date is before the start date."), code="invalid")]
    if cohort.schedule_kind == ScheduleKind.INTERVAL:
        if not cohort.interval_days:
            errors["interval_days"] = [ValidationError(_("Say every how many days."), code="required")]
        if cohort.end_date is None:
            errors.setdefault("end_date", []).append(
                ValidationError(_("A repeating schedule needs an end date."), code="required")
            )
        if not errors and cohort.start_date is not None:
            if (cohort.end_date - cohort.start_date).days > MAX_OFFSET_DAYS:
                errors["end_date"] = [
                    ValidationError(
                        _("A schedule spans at most %(max)d days.") % {"max": MAX_OFFSET_DAYS}, code="out_of_range"
                    )
                ]
            else:
                plan.offsets = interval_offsets(cohort.start_date, cohort.end_date, cohort.interval_days)
    else:
        cohort.interval_days = None
    return errors


def _cohort_errors(cohort: ResearchCohort, plan: FollowUpPlan, *, had_tasks: bool, changed: set[str]):
    errors = _schedule_errors(cohort, plan)
    investigator = cohort.principal_investigator if cohort.principal_investigator_id else None
    if investigator is not None and not investigator.is_active:
        errors["principal_investigator"] = [ValidationError(_("Choose an active member of staff."), code="invalid")]
    if "questionnaire" in changed and plan.questionnaire_id is not None:
        if had_tasks:
            errors["questionnaire"] = [
                ValidationError(_("The cohort has been followed up: its questionnaire stays."), code="invalid")
            ]
        elif plan.questionnaire.status != QuestionnaireStatus.ACTIVE:
            errors["questionnaire"] = [ValidationError(_("Choose an active questionnaire."), code="invalid")]
    if had_tasks and changed & {"schedule_kind", "start_date"}:
        field = "schedule_kind" if "schedule_kind" in changed else "start_date"
        errors[field] = [
            ValidationError(_("The cohort has been followed up: its waves keep their start."), code="invalid")
        ]
    for field, messages in _plan_errors(plan).items():
        if field == "offsets" and cohort.schedule_kind == ScheduleKind.INTERVAL:
            continue  # derived from the dates: their errors are named above
        errors.setdefault(field, []).extend(messages)
    try:
        cohort.full_clean(exclude=["plan", "created_by", "principal_investigator", *errors], validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    if cohort.principal_investigator_id is None:
        errors.setdefault("principal_investigator", []).append(
            ValidationError(_("Name the principal investigator."), code="required")
        )
    return errors


def cohort_save(*, actor, data: dict[str, Any], cohort: ResearchCohort | None = None) -> ResearchCohort:
    """Create a cohort (and its plan), or change `cohort`, from `data`; errors name the fields."""
    unknown = set(data) - set(COHORT_FIELDS) - set(COHORT_PLAN_FIELDS)
    if unknown:
        raise ValidationError({name: _("This field cannot be set.") for name in sorted(unknown)})
    creator = actor if getattr(actor, "pk", None) else None
    if cohort is None:
        cohort = ResearchCohort(created_by=creator)
        plan = FollowUpPlan(trigger=TriggerKind.RESEARCH, assignee_kind=AssigneeKind.ROLE, created_by=creator)
        had_tasks = False
    else:
        plan = cohort.plan
        had_tasks = FollowUpTask.objects.filter(plan=plan).exists()
    before = {"offsets": list(plan.offsets), "end_date": cohort.end_date}
    changed = set()
    for field, value in data.items():
        target = plan if field in COHORT_PLAN_FIELDS else cohort
        if field in _FOREIGN_KEYS:
            if getattr(target, f"{field}_id") != getattr(value, "pk", value):
                changed.add(field)
        elif getattr(target, field) != value:
            changed.add(field)
        setattr(target, field, value)
    plan.name = (_("Research: %(name)s") % {"name": cohort.name})[:120]
    plan.active = cohort.active
    plan.segment = cohort.segment if cohort.segment_id else None
    errors = _cohort_errors(cohort, plan, had_tasks=had_tasks, changed=changed)
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            plan.save()
            cohort.plan = plan
            cohort.save()
            if had_tasks and (plan.offsets != before["offsets"] or cohort.end_date != before["end_date"]):
                _waves_rescheduled(cohort)
    except IntegrityError:
        raise ValidationError({"name": _("A cohort or a plan with this name exists.")}) from None
    return cohort


def _waves_rescheduled(cohort: ResearchCohort) -> None:
    """Close the open tasks of waves the schedule no longer has; every member gets the waves it now has."""
    outside = ~Q(offset_days__in=cohort.plan.offsets)
    if cohort.end_date is not None:
        outside |= Q(due_date__gt=cohort.end_date)
    dropped = FollowUpTask.objects.filter(outside, plan=cohort.plan, status__in=OPEN_STATUSES)
    now = timezone.now()
    for task in dropped.select_related("patient").order_by("pk"):
        _close(task, CloseReason.CANCELLED, now=now)
    cohort_tasks_make(cohort=cohort, only_new_members=False)


# --- Enrolment -------------------------------------------------------------------------------------


def enrolling(cohort: ResearchCohort, today: dt.date) -> bool:
    """Whether the cohort takes in new members on `today`."""
    return cohort.active and cohort.start_date <= today and (cohort.end_date is None or today <= cohort.end_date)


def cohort_enrol(
    *, cohort: ResearchCohort, actor=None, today: dt.date | None = None, batch_size: int = SWEEP_BATCH
) -> int:
    """Enrol the segment's patients not yet members (set-based, idempotent); how many joined."""
    today = today or timezone.localdate()
    if not enrolling(cohort, today):
        return 0
    enrolled = CohortMember.objects.filter(cohort=cohort, patient_id=OuterRef("pk"))
    candidates = (
        segment_patients(cohort.segment.filters, today=today)
        .filter(~Exists(enrolled))
        .values_list("pk", flat=True)
        .order_by("pk")
    )
    joined = 0
    last = 0
    now = timezone.now()
    while True:
        batch = list(candidates.filter(pk__gt=last)[:batch_size])
        if not batch:
            break
        last = batch[-1]
        members = [
            CohortMember(
                cohort=cohort, patient_id=patient_id, joined_at=now, pseudonym=pseudonym_of(cohort, patient_id)
            )
            for patient_id in batch
        ]
        with transaction.atomic():
            before = CohortMember.objects.filter(cohort=cohort).count()
            CohortMember.objects.bulk_create(members, ignore_conflicts=True, batch_size=1000)
            joined += CohortMember.objects.filter(cohort=cohort).count() - before
    if joined:
        with audit_acting_as(actor):
            audit_write(event=Event.UPDATE, instance=cohort, details={"enrolled": joined})
    return joined


def _members_to_follow(cohort: ResearchCohort, *, only_new_members: bool) -> QuerySet[CohortMember]:
    members = CohortMember.objects.filter(cohort=cohort, withdrawn_at__isnull=True)
    if only_new_members:
        # Members with tasks have every wave already: a large cohort costs little once swept.
        followed = FollowUpTask.objects.filter(
            plan_id=cohort.plan_id,
            source_kind=SourceKind.RESEARCH,
            source_id=cohort.pk,
            patient_id=OuterRef("patient_id"),
        )
        members = members.filter(~Exists(followed))
    return members


def cohort_tasks_make(
    *,
    cohort: ResearchCohort,
    today: dt.date | None = None,
    only_new_members: bool = True,
    batch_size: int = SWEEP_BATCH,
) -> int:
    """Make each member's task of every wave not made before (one per member per wave); how many were new."""
    today = today or timezone.localdate()
    plan = cohort.plan
    if not (cohort.active and plan.active):
        return 0
    members = _members_to_follow(cohort, only_new_members=only_new_members).order_by("pk")
    created = 0
    last = 0
    while True:
        batch = list(members.filter(pk__gt=last).values_list("pk", "patient_id", "joined_at")[:batch_size])
        if not batch:
            return created
        last = batch[-1][0]
        tasks: list[FollowUpTask] = []
        for _pk, patient_id, joined_at in batch:
            joined = _local_date(joined_at)
            base = joined if cohort.schedule_kind == ScheduleKind.OFFSETS else cohort.start_date
            tasks += [
                task
                for task in _tasks_of_plan(
                    plan,
                    patient_id=patient_id,
                    source_kind=SourceKind.RESEARCH,
                    source_id=cohort.pk,
                    base=base,
                    department_id=None,
                    doctor_id=None,
                    today=today,
                )
                # A wave before the patient joined, or after the study ends, is not theirs.
                if task.due_date >= joined and (cohort.end_date is None or task.due_date <= cohort.end_date)
            ]
        with transaction.atomic():
            created += _insert(_without_dead(tasks))


def research_sweep(*, today: dt.date | None = None, batch_size: int = SWEEP_BATCH) -> int:
    """For every active cohort: enrol the segment's new patients and make the new members' tasks; new tasks."""
    today = today or timezone.localdate()
    created = 0
    cohorts = ResearchCohort.objects.filter(active=True, plan__active=True).select_related("plan", "segment")
    for cohort in cohorts.order_by("pk"):
        cohort_enrol(cohort=cohort, today=today, batch_size=batch_size)
        created += cohort_tasks_make(cohort=cohort, today=today, batch_size=batch_size)
    return created


def cohort_member_withdraw(*, actor, member: CohortMember, reason: str) -> CohortMember:
    """Withdraw a member from the study: never contacted again for it, and left out of its exports."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the patient leaves the study.")})
    if member.withdrawn_at is not None:
        raise ValidationError({"reason": _("This patient has already left the study.")})
    now = timezone.now()
    with transaction.atomic(), audit_acting_as(actor):
        member.withdrawn_at = now
        member.withdrawal_reason = reason[:200]
        member.save(update_fields=["withdrawn_at", "withdrawal_reason", "updated_at"])
        open_tasks = FollowUpTask.objects.filter(
            plan_id=member.cohort.plan_id, patient_id=member.patient_id, status__in=OPEN_STATUSES
        )
        for task in open_tasks.select_for_update().order_by("pk"):
            _close(task, CloseReason.CONSENT_WITHDRAWN, now=now)
    return member
