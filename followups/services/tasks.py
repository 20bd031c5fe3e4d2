"""Working follow-up tasks: scheduling one by hand, claiming, reassigning, re-checking, recording attempts."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from followups.models import (
    CloseReason,
    FollowUpChannel,
    FollowUpTask,
    Questionnaire,
    SourceKind,
    TaskStatus,
    TriggerKind,
)
from followups.models.questionnaires import QuestionnaireStatus
from followups.services.plans import day_start
from followups.services.responses import response_save
from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.models import Department, User
from hcrm.roles import Role
from patients.models import ConsentPurpose, ContactChannel, ContactOutcome, ContactPurpose, Encounter, Patient
from patients.selectors.archive import consent_granted
from patients.services.contacts import contact_record

# Outcomes of an attempt to reach the patient, as the phone screen offers them.
REACHED = ContactOutcome.REACHED
# A letter posted: like reaching the patient, the task then waits for the answers.
SENT = ContactOutcome.SENT
RETRY_OUTCOMES = (ContactOutcome.NO_ANSWER, ContactOutcome.BUSY, ContactOutcome.LEFT_MESSAGE)
DECEASED_OUTCOME = "deceased"
CLOSING_OUTCOMES = {
    ContactOutcome.WRONG_NUMBER: CloseReason.WRONG_NUMBER,
    ContactOutcome.REFUSED: CloseReason.REFUSED,
    DECEASED_OUTCOME: CloseReason.DECEASED,
}
ATTEMPT_OUTCOMES = (REACHED, SENT, *RETRY_OUTCOMES, *CLOSING_OUTCOMES)

# A task may be claimed while it waits for someone, including a retry whose time has come.
_CLAIMABLE = (TaskStatus.PENDING, TaskStatus.UNREACHED)


def staff_of_department(department_id: int | None):
    """Active staff who may be given a task of the department (every active staff member without one)."""
    staff = User.objects.filter(is_active=True)
    if department_id is not None:
        staff = staff.filter(staff_departments__department_id=department_id)
    return staff.order_by("full_name", "username")


def followup_schedule_one_off(
    *,
    actor,
    patient: Patient,
    questionnaire: Questionnaire,
    channel: str,
    due_date: dt.date,
    assignee: User | None = None,
    department: Department | None = None,
    note: str = "",
) -> FollowUpTask:
    """Schedule one follow-up of `patient` by hand ("phone in 2 weeks with questionnaire X")."""
    errors: dict[str, list[str]] = {}
    if channel not in FollowUpChannel.values:
        errors["channel"] = [_("Choose a channel.")]
    if due_date < timezone.localdate():
        errors["due_date"] = [_("The follow-up cannot be due in the past.")]
    if questionnaire.status != QuestionnaireStatus.ACTIVE:
        errors["questionnaire"] = [_("Choose an active questionnaire.")]
    if patient.is_deceased:
        errors["patient"] = [_("This patient is deceased.")]
    assignee = assignee or (actor if getattr(actor, "pk", None) else None)
    if department is None and assignee is not None and assignee.department_ids:
        department = Department.objects.get(pk=min(assignee.department_ids))
    if assignee is not None and department is not None and department.pk not in assignee.department_ids:
        errors["assignee"] = [_("The assignee is not on the staff of this department.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(), audit_acting_as(actor):
        task = FollowUpTask(
            plan=None,
            patient=patient,
            source_kind=SourceKind.MANUAL,
            source_id=0,
            offset_days=(due_date - timezone.localdate()).days,
            due_date=due_date,
            due_at=day_start(due_date),
            channel=channel,
            questionnaire=questionnaire,
            assignee=assignee,
            department=department,
            note=note.strip(),
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        task.save()
    return task


def task_claim(*, task: FollowUpTask, actor) -> bool:
    """Claim `task` for `actor`; False when someone else claimed it first (a conditional update, never both)."""
    now = timezone.now()
    with transaction.atomic(), audit_acting_as(actor):
        claimed = FollowUpTask.objects.filter(
            Q(assignee__isnull=True) | Q(assignee=actor), pk=task.pk, status__in=_CLAIMABLE, claimed_by__isnull=True
        ).update(status=TaskStatus.CLAIMED, claimed_by=actor, claimed_at=now, updated_at=now)
        if claimed:
            task.refresh_from_db()
            audit_write(event=Event.UPDATE, instance=task, details={"claimed": True})
    return bool(claimed)


def task_release(*, task: FollowUpTask, actor) -> None:
    """Give a claimed task back to the queue."""
    if task.claimed_by_id != actor.pk:
        raise PermissionDenied(_("Only the person who claimed the task may give it back."))
    with transaction.atomic(), audit_acting_as(actor):
        task.status = TaskStatus.UNREACHED if task.attempts else TaskStatus.PENDING
        task.claimed_by = None
        task.claimed_at = None
        task.save(update_fields=["status", "claimed_by", "claimed_at", "updated_at"])


def task_reassign(*, task: FollowUpTask, actor, assignee: User) -> FollowUpTask:
    """Give `task` to `assignee`, a colleague of its department; a claim on it is dropped."""
    if not task.is_open:
        raise ValidationError({"assignee": _("This task is finished and cannot be reassigned.")})
    if not assignee.is_active or (task.department_id is not None and task.department_id not in assignee.department_ids):
        raise ValidationError({"assignee": _("Choose a member of staff of the task's department.")})
    with transaction.atomic(), audit_acting_as(actor):
        task.assignee = assignee
        if task.status in (TaskStatus.CLAIMED, TaskStatus.IN_PROGRESS):
            task.status = TaskStatus.UNREACHED if task.attempts else TaskStatus.PENDING
        task.claimed_by = None
        task.claimed_at = None
        task.save(update_fields=["assignee", "status", "claimed_by", "claimed_at", "updated_at"])
    return task


def _close(task: FollowUpTask, reason: str, *, now: dt.datetime) -> None:
    task.status = TaskStatus.CLOSED
    task.closed_reason = reason
    task.closed_at = now
    task.next_attempt_at = None
    task.save(update_fields=["status", "closed_reason", "closed_at", "next_attempt_at", "attempts", "updated_at"])


def task_close(*, task: FollowUpTask, actor, reason: str = CloseReason.CANCELLED) -> FollowUpTask:
    """Close an open task by hand with `reason`."""
    if not task.is_open:
        raise ValidationError({"status": _("This task is already finished.")})
    with transaction.atomic(), audit_acting_as(actor):
        _close(task, reason, now=timezone.now())
    return task


_CONSENT_CHANNEL = {
    FollowUpChannel.PHONE: ContactChannel.PHONE,
    FollowUpChannel.SMS: ContactChannel.SMS,
    FollowUpChannel.EMAIL: ContactChannel.EMAIL,
    FollowUpChannel.LETTER: ContactChannel.LETTER,
}


def _discharge_reason(task: FollowUpTask) -> str:
    """For a discharge plan's task: undone discharge (A13) → cancelled, a newer stay still open → readmitted."""
    if task.source_kind != SourceKind.ENCOUNTER or task.plan is None or task.plan.trigger != TriggerKind.DISCHARGE:
        return ""
    stay = Encounter.objects.filter(pk=task.source_id).values("ended_at", "status").first()
    if stay is None or stay["ended_at"] is None or stay["status"] == Encounter.Status.CANCELLED:
        return CloseReason.CANCELLED
    back_in_hospital = (
        Encounter.objects.filter(
            patient_id=task.patient_id,
            kind=Encounter.Kind.INPATIENT,
            started_at__gt=stay["ended_at"],
            ended_at__isnull=True,
        )
        .exclude(status=Encounter.Status.CANCELLED)
        .exists()
    )
    return CloseReason.READMITTED if back_in_hospital else ""


def task_precheck_reason(task: FollowUpTask) -> str:
    """Why `task` must not be worked now (a CloseReason), or "" when it may."""
    patient = task.patient
    if patient.is_deceased:
        return CloseReason.DECEASED
    discharge_reason = _discharge_reason(task)
    if discharge_reason:
        return discharge_reason
    if not consent_granted(patient, purpose=ConsentPurpose.FOLLOW_UP, channel=_CONSENT_CHANNEL[task.channel]):
        return CloseReason.CONSENT_WITHDRAWN
    return ""


def task_precheck(*, task: FollowUpTask) -> str:
    """Re-check `task` before it is worked: a deceased, readmitted or unconsenting patient (or an undone
    discharge) closes it; the reason, or "" when the task may go ahead."""
    reason = task_precheck_reason(task)
    if reason and task.is_open:
        with transaction.atomic():
            _close(task, reason, now=timezone.now())
    return reason


def task_record_attempt(*, task: FollowUpTask, outcome: str, notes: str = "", actor) -> FollowUpTask:
    """Record one attempt to reach the patient: retry later, close, or leave for the response to complete."""
    if outcome not in ATTEMPT_OUTCOMES:
        raise ValidationError({"outcome": _("Choose the outcome of the call.")})
    if outcome == SENT and task.channel != FollowUpChannel.LETTER:
        raise ValidationError({"outcome": _("Only a letter follow-up is sent by post.")})
    if not task.is_open:
        raise ValidationError({"outcome": _("This task is already finished.")})
    now = timezone.now()
    with transaction.atomic(), audit_acting_as(actor):
        task = FollowUpTask.objects.select_for_update().get(pk=task.pk)
        task.attempts += 1
        contact_record(
            actor=actor,
            patient=task.patient,
            channel=_CONSENT_CHANNEL[task.channel],
            direction="out",
            purpose=ContactPurpose.FOLLOW_UP,
            outcome=ContactOutcome.OTHER if outcome == DECEASED_OUTCOME else outcome,
            summary=notes.strip(),
        )
        if outcome in (REACHED, SENT):
            # Completing is the response's business: the task stays with whoever reached the patient.
            task.status = TaskStatus.IN_PROGRESS
            task.next_attempt_at = None
            task.save(update_fields=["status", "attempts", "next_attempt_at", "updated_at"])
        elif outcome in CLOSING_OUTCOMES:
            _close(task, CLOSING_OUTCOMES[outcome], now=now)
        elif task.attempts >= task.max_attempts:
            _close(task, CloseReason.MAX_ATTEMPTS, now=now)
        else:
            task.status = TaskStatus.UNREACHED
            task.next_attempt_at = now + dt.timedelta(hours=task.retry_spacing_hours)
            task.due_at = task.next_attempt_at
            task.claimed_by = None
            task.claimed_at = None
            task.save(
                update_fields=[
                    "status",
                    "attempts",
                    "next_attempt_at",
                    "due_at",
                    "claimed_by",
                    "claimed_at",
                    "updated_at",
                ]
            )
    return task


def task_rated_doctor_id(task: FollowUpTask) -> int | None:
    """The doctor a follow-up is about: the attending doctor of the encounter that triggered it, else the
    doctor it is assigned to."""
    if task.source_kind == SourceKind.ENCOUNTER:
        doctor_id = Encounter.objects.filter(pk=task.source_id).values_list("doctor_id", flat=True).first()
        if doctor_id is not None:
            return doctor_id
    if task.assignee_id is not None and Role.DOCTOR in task.assignee.role_codes:
        return task.assignee_id
    return None


def task_complete(*, task: FollowUpTask, response, actor) -> FollowUpTask:
    """Finish an open task with the patient's completed `response`."""
    if response.status != "completed":
        raise ValidationError({"response": _("The response is not complete yet.")})
    with transaction.atomic(), audit_acting_as(actor):
        task = FollowUpTask.objects.select_for_update().get(pk=task.pk)
        if not task.is_open:
            raise ValidationError({"status": _("This task is already finished.")})
        now = timezone.now()
        task.status = TaskStatus.COMPLETED
        task.response = response
        task.completed_at = now
        task.next_attempt_at = None
        task.save(update_fields=["status", "response", "completed_at", "next_attempt_at", "updated_at"])
        # The response rates the task's department and doctor (statistics group by them).
        response.department_id = task.department_id
        response.doctor_id = task_rated_doctor_id(task)
        response.save(update_fields=["department", "doctor", "updated_at"])
    return task


def task_call_record(*, task: FollowUpTask, actor, outcome: str, notes: str, answers: dict) -> FollowUpTask:
    """All of one call in one transaction: the claim, the attempt and its contact-log entry, and on reaching
    the patient the response that completes the task; PermissionDenied when someone else holds the task."""
    with transaction.atomic():
        if task.claimed_by_id is None and task.is_claimable and not task_claim(task=task, actor=actor):
            raise PermissionDenied(_("Someone else is working on this task."))
        if task.claimed_by_id not in (None, actor.pk):
            raise PermissionDenied(_("Someone else is working on this task."))
        version = task.questionnaire.current_version
        task = task_record_attempt(task=task, outcome=outcome, notes=notes, actor=actor)
        if outcome == REACHED:
            response = response_save(
                version=version,
                patient=task.patient,
                answers=answers,
                source="phone",
                actor=actor,
                complete=True,
                task=task,
            )
            task = task_complete(task=task, response=response, actor=actor)
    return task
