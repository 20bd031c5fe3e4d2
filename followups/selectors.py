"""Reads of the follow-ups app that several pages share: who sees which tasks and plans, worklist buckets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from followups.models import OPEN_STATUSES, FollowUpChannel, FollowUpPlan, FollowUpTask, PatientConstitution
from followups.services.plans import day_start
from hcrm.models import Department
from hcrm.roles import Role
from patients.models import Patient

WORKLIST_LIMIT = 100


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


def _mine(user) -> Q:
    pooled = Q(assignee__isnull=True, assignee_role__in=user.role_codes, department_id__in=sorted(user.department_ids))
    return Q(assignee=user) | Q(claimed_by=user) | pooled


def tasks_visible_to(user) -> QuerySet[FollowUpTask]:
    """Tasks `user` may see and work: their own and their pool's, and those of the departments they lead."""
    if not user.has_perm("followups.view_followuptask"):
        return FollowUpTask.objects.none()
    led = lead_department_ids(user)
    if led is None:
        return FollowUpTask.objects.all()
    return FollowUpTask.objects.filter(_mine(user) | Q(department_id__in=sorted(led)))


def worklist_tasks(user, *, department: Department | None = None) -> QuerySet[FollowUpTask]:
    """The open tasks of a worklist: `user`'s own (and their pool's), or a department's."""
    tasks = FollowUpTask.objects.filter(status__in=OPEN_STATUSES)
    if department is not None:
        return tasks.filter(department=department)
    return tasks.filter(_mine(user))


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


def worklist_counts(tasks: QuerySet[FollowUpTask], when: Window, *, bucket: str) -> dict[str, int]:
    """Counts of `tasks` by due bucket, and by channel within `bucket`, in one query."""
    aggregates = {name: Count("pk", filter=bucket_condition(name, when)) for name in Bucket.ALL}
    within = bucket_condition(bucket, when)
    aggregates |= {
        f"channel_{channel}": Count("pk", filter=within & Q(channel=channel)) for channel in FollowUpChannel.values
    }
    return tasks.aggregate(**aggregates)


def worklist_page(tasks: QuerySet[FollowUpTask], *, bucket: str, channel: str, when: Window) -> list[FollowUpTask]:
    """The first tasks of a bucket (and channel), soonest due first, with what the rows show."""
    tasks = tasks.filter(bucket_condition(bucket, when))
    if channel:
        tasks = tasks.filter(channel=channel)
    return list(
        tasks.select_related("patient", "questionnaire", "assignee", "claimed_by", "department", "plan").order_by(
            "due_at", "id"
        )[:WORKLIST_LIMIT]
    )


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
