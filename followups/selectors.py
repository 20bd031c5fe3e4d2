"""Reads of the follow-ups app that several pages share: who sees which tasks and plans, worklist buckets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from followups.models import (
    OPEN_STATUSES,
    FollowUpChannel,
    FollowUpPlan,
    FollowUpTask,
    PatientConstitution,
    Questionnaire,
    QuestionnaireResponse,
)
from followups.services.plans import day_start
from hcrm.models import Department
from hcrm.roles import Role
from patients.models import Patient
from patients.selectors import patients_visible_to

WORKLIST_LIMIT = 100
# Pages further down than this are refused: each reads all the rows before it, and nobody works a queue from
# its 5,000th task.
WORKLIST_PAGES = 50


class Bucket:
    OVERDUE = "overdue"
    TODAY = "today"
    UPCOMING = "upcoming"
    ALL = (OVERDUE, TODAY, UPCOMING)


def sees_every_department(user) -> bool:
    """Administrators work with the follow-ups of every department; everyone else with their own."""
    return Role.ADMINISTRATOR in user.role_codes


def lead_department_ids(user) -> set[int] | None:
    """The departments whose worklist and tasks `user` leads (None: every department)."""
    if not user.has_perm("followups.view_department_followuptask"):
        return set()
    return None if sees_every_department(user) else set(user.department_ids)


def lead_departments(user) -> QuerySet[Department]:
    departments = Department.objects.filter(is_active=True).order_by("code")
    ids = lead_department_ids(user)
    return departments if ids is None else departments.filter(pk__in=sorted(ids))


def _pooled(user) -> Q:
    """The unassigned tasks of `user`'s roles in their departments."""
    return Q(assignee__isnull=True, assignee_role__in=user.role_codes, department_id__in=sorted(user.department_ids))


def _mine(user) -> Q:
    return Q(assignee=user) | Q(claimed_by=user) | _pooled(user)


def tasks_visible_to(user) -> QuerySet[FollowUpTask]:
    """Tasks `user` may see and work: their own and their pool's, and those of the departments they lead."""
    if not user.has_perm("followups.view_followuptask"):
        return FollowUpTask.objects.none()
    led = lead_department_ids(user)
    if led is None:
        return FollowUpTask.objects.all()
    return FollowUpTask.objects.filter(_mine(user) | Q(department_id__in=sorted(led)))


def worklist_tasks(user, *, department: Department | None = None) -> tuple[QuerySet[FollowUpTask], ...]:
    """The open tasks of a worklist, in parts that do not overlap: a department's; or `user`'s pool and the
    tasks given to or claimed by them.

    Each part reads one index in due order (`followup_task_open_department`, `followup_task_open_pool`, the
    assignee's); the three conditions joined by OR would read every open task of the pool from the table
    and sort them, which with 50,000 open tasks in a department takes a quarter of a second.
    """
    tasks = FollowUpTask.objects.filter(status__in=OPEN_STATUSES)
    if department is not None:
        return (tasks.filter(department=department),)
    pooled = _pooled(user)
    return (tasks.filter(pooled), tasks.filter(Q(assignee=user) | Q(claimed_by=user)).exclude(pooled))


@dataclass(frozen=True)
class Window:
    today: dt.date
    start: dt.datetime
    end: dt.datetime


def window(today: dt.date | None = None) -> Window:
    today = today or timezone.localdate()
    return Window(today, day_start(today), day_start(today + dt.timedelta(days=1)))


def bucket_condition(bucket: str, when: Window) -> Q:
    if bucket == Bucket.OVERDUE:
        return Q(due_at__lt=when.start)
    if bucket == Bucket.TODAY:
        return Q(due_at__gte=when.start, due_at__lt=when.end)
    return Q(due_at__gte=when.end)


def worklist_counts(parts: tuple[QuerySet[FollowUpTask], ...], when: Window, *, bucket: str) -> dict[str, int]:
    """Counts of the worklist's tasks by due bucket, and by channel within `bucket`, one query per part."""
    aggregates = {name: Count("pk", filter=bucket_condition(name, when)) for name in Bucket.ALL}
    within = bucket_condition(bucket, when)
    aggregates |= {
        f"channel_{channel}": Count("pk", filter=within & Q(channel=channel)) for channel in FollowUpChannel.values
    }
    totals = dict.fromkeys(aggregates, 0)
    for part in parts:
        for name, count in part.aggregate(**aggregates).items():
            totals[name] += count
    return totals


def worklist_page(
    parts: tuple[QuerySet[FollowUpTask], ...], *, bucket: str, channel: str, when: Window, page: int = 1
) -> list[FollowUpTask]:
    """A page of the tasks of a bucket (and channel), soonest due first, with what the rows show."""
    start = (page - 1) * WORKLIST_LIMIT
    chosen = []
    for part in parts:
        tasks = part.filter(bucket_condition(bucket, when))
        chosen.append(tasks.filter(channel=channel) if channel else tasks)
    if len(chosen) == 1:
        rows = chosen[0].order_by("due_at", "id")[start : start + WORKLIST_LIMIT]
    else:
        # The page's place in the parts together, from their keys alone (read from the index); then its rows.
        keys = sorted(
            key
            for tasks in chosen
            for key in tasks.order_by("due_at", "id").values_list("due_at", "id")[: start + WORKLIST_LIMIT]
        )[start : start + WORKLIST_LIMIT]
        rows = FollowUpTask.objects.filter(pk__in=[pk for _due, pk in keys]).order_by("due_at", "id")
    return list(rows.select_related("patient", "questionnaire", "assignee", "claimed_by", "department", "plan"))


def plans_visible_to(user) -> QuerySet[FollowUpPlan]:
    if not user.has_perm("followups.view_followupplan"):
        return FollowUpPlan.objects.none()
    return FollowUpPlan.objects.all()


def plan_editable(user, plan: FollowUpPlan) -> bool:
    """Department heads change the plans of their departments; administrators every plan."""
    if not user.has_perm("followups.change_followupplan"):
        return False
    if sees_every_department(user):
        return True
    return plan.department_id is not None and plan.department_id in user.department_ids


def patient_constitution(patient: Patient) -> PatientConstitution | None:
    """The patient's latest constitution assessment, if any."""
    return PatientConstitution.objects.filter(patient=patient).order_by("-assessed_at", "-pk").first()


# --- Questionnaires and responses ----------------------------------------------------------------


def questionnaires_for_department(queryset: QuerySet[Questionnaire], department: Department | str) -> QuerySet:
    """Questionnaires meant for a department: scoped to it, or to no department (meant for every one)."""
    code = department.code if isinstance(department, Department) else department
    through = Questionnaire.departments.through
    scoped = Exists(through.objects.filter(questionnaire_id=OuterRef("pk")))
    mine = Exists(through.objects.filter(questionnaire_id=OuterRef("pk"), department__code=code))
    return queryset.filter(mine | ~scoped)


def questionnaires_for_diagnosis(questionnaires, code: str) -> list[Questionnaire]:
    """Those whose diagnosis prefixes match `code`, or that have none (meant for any diagnosis)."""
    code = code.strip().upper()
    return [q for q in questionnaires if not q.disease_codes or any(code.startswith(p) for p in q.disease_codes)]


def questionnaires_filtered(
    *, purpose: str = "", department: str = "", status: str = "", search: str = ""
) -> QuerySet[Questionnaire]:
    rows = Questionnaire.objects.select_related("current_version").prefetch_related("departments")
    if purpose:
        rows = rows.filter(purpose=purpose)
    if status:
        rows = rows.filter(status=status)
    if department:
        rows = questionnaires_for_department(rows, department)
    if search:
        rows = rows.filter(Q(title__icontains=search) | Q(code__icontains=search) | Q(title_en__icontains=search))
    return rows.order_by("title", "pk")


def responses_visible_to(user) -> QuerySet[QuestionnaireResponse]:
    """Responses of the patients `user` may see."""
    visible = patients_visible_to(user).filter(pk=OuterRef("patient_id"))
    return QuestionnaireResponse.objects.filter(Exists(visible))


def manages_all_questionnaires(user) -> bool:
    """Administrators change every questionnaire, those meant for every department included."""
    return bool(getattr(user, "is_superuser", False)) or Role.ADMINISTRATOR in getattr(user, "role_codes", ())


def questionnaire_editable_by(user, questionnaire: Questionnaire) -> bool:
    """Others (department heads, by default) change questionnaires meant only for their own departments.

    A questionnaire shared with another department, or meant for every one, changes that department's
    follow-ups too, so it is left to administrators.
    """
    if manages_all_questionnaires(user):
        return True
    if questionnaire.pk is None:
        return True
    scope = {department.pk for department in questionnaire.departments.all()}
    return bool(scope) and scope <= set(user.department_ids)


def task_initial_answers(task: FollowUpTask) -> dict:
    """The answers known before asking, for the built-in questionnaires that offer them."""
    from followups.builtin import constitution, inpatient_satisfaction, outpatient_satisfaction

    code = task.questionnaire.code
    if code == constitution.CODE:
        return constitution.initial_answers(task.patient)
    for module in (outpatient_satisfaction, inpatient_satisfaction):
        if code == module.CODE and hasattr(module, "context_answers"):
            department = task.department.code if task.department_id else ""
            doctor = task.assignee.username if task.assignee_id and "doctor" in task.assignee.role_codes else ""
            return {
                key: value
                for key, value in module.context_answers(department=department, doctor=doctor).items()
                if value
            }
    return {}
