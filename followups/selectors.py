"""Reads of the follow-ups app that several pages share: who sees which tasks and plans, worklist buckets."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from followups.models import (
    OPEN_STATUSES,
    UNACKNOWLEDGED,
    Alert,
    AlertRule,
    CohortMember,
    FollowUpChannel,
    FollowUpPlan,
    FollowUpTask,
    LetterBatch,
    LetterPrint,
    PatientConstitution,
    Questionnaire,
    QuestionnaireResponse,
    ResearchCohort,
    ResponseStatus,
    TaskStatus,
    TriggerKind,
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
    chosen = []
    for part in parts:
        tasks = part.filter(bucket_condition(bucket, when))
        chosen.append(tasks.filter(channel=channel) if channel else tasks)
    rows = _soonest_due(chosen, start=(page - 1) * WORKLIST_LIMIT, count=WORKLIST_LIMIT)
    return list(rows.select_related("patient", "questionnaire", "assignee", "claimed_by", "department", "plan"))


def _soonest_due(parts: list[QuerySet[FollowUpTask]], *, start: int, count: int) -> QuerySet[FollowUpTask]:
    """Tasks `start` to `start + count` of the parts together, soonest due first."""
    if len(parts) == 1:
        return parts[0].order_by("due_at", "id")[start : start + count]
    # The rows' place in the parts together, from their keys alone (read from the index); then the rows.
    keys = sorted(
        key for tasks in parts for key in tasks.order_by("due_at", "id").values_list("due_at", "id")[: start + count]
    )[start : start + count]
    return FollowUpTask.objects.filter(pk__in=[pk for _due, pk in keys]).order_by("due_at", "id")


def plans_visible_to(user) -> QuerySet[FollowUpPlan]:
    if not user.has_perm("followups.view_followupplan"):
        return FollowUpPlan.objects.none()
    return FollowUpPlan.objects.all()


def _department_editable(user, department_id: int | None, permission: str) -> bool:
    """Department heads change what belongs to their departments; administrators everything."""
    if not user.has_perm(permission):
        return False
    if sees_every_department(user):
        return True
    return department_id is not None and department_id in user.department_ids


def plan_editable(user, plan: FollowUpPlan) -> bool:
    """Department heads change the plans of their departments; administrators every plan."""
    if plan.trigger == TriggerKind.RESEARCH:
        return False  # a research plan is changed with its cohort
    return _department_editable(user, plan.department_id, "followups.change_followupplan")


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
    from followups.services.tasks import task_rated_doctor_id

    code = task.questionnaire.code
    if code == constitution.CODE:
        return constitution.initial_answers(task.patient)
    for module in (outpatient_satisfaction, inpatient_satisfaction):
        if code == module.CODE and hasattr(module, "context_answers"):
            department = task.department.code if task.department_id else ""
            doctor_id = task_rated_doctor_id(task)
            doctor = get_user_model().objects.get(pk=doctor_id).username if doctor_id is not None else ""
            return {
                key: value
                for key, value in module.context_answers(department=department, doctor=doctor).items()
                if value
            }
    return {}


# --- Research cohorts --------------------------------------------------------------------------------


def cohorts_listed() -> QuerySet[ResearchCohort]:
    """Cohorts with what their list shows: members still in the study, and those who left."""
    return (
        ResearchCohort.objects.select_related("principal_investigator", "segment", "plan__questionnaire")
        .annotate(
            member_count=Count("members", filter=Q(members__withdrawn_at__isnull=True)),
            withdrawn_count=Count("members", filter=Q(members__withdrawn_at__isnull=False)),
        )
        .order_by("name", "pk")
    )


@dataclass(frozen=True)
class Wave:
    number: int | None  # place in the schedule; None for a wave the schedule no longer has
    offset_days: int
    tasks: int
    open: int
    completed: int
    closed: int

    @property
    def completion(self) -> float | None:
        """Completed tasks in percent of those made (None when there are none)."""
        return round(100 * self.completed / self.tasks, 1) if self.tasks else None


def cohort_waves(cohort: ResearchCohort) -> list[Wave]:
    """Tasks of each wave of the cohort, open, completed and closed, in one grouped query."""
    counts = (
        FollowUpTask.objects.filter(plan_id=cohort.plan_id)
        .values("offset_days")
        .annotate(
            tasks=Count("pk"),
            open=Count("pk", filter=Q(status__in=OPEN_STATUSES)),
            completed=Count("pk", filter=Q(status=TaskStatus.COMPLETED)),
            closed=Count("pk", filter=Q(status=TaskStatus.CLOSED)),
        )
        .order_by("offset_days")
    )
    by_offset = {row["offset_days"]: row for row in counts}
    offsets = sorted(set(cohort.plan.offsets) | set(by_offset))
    empty = {"tasks": 0, "open": 0, "completed": 0, "closed": 0}
    return [
        Wave(
            number=wave_number(cohort, offset),
            offset_days=offset,
            **{key: by_offset.get(offset, empty)[key] for key in empty},
        )
        for offset in offsets
    ]


def wave_number(cohort: ResearchCohort, offset_days: int | None) -> int | None:
    """The wave's place in the cohort's schedule, counted from 1."""
    offsets = cohort.plan.offsets
    return offsets.index(offset_days) + 1 if offset_days in offsets else None


def cohort_responses(cohort: ResearchCohort, *, until: dt.datetime) -> QuerySet[QuestionnaireResponse]:
    """Completed answers to the cohort's questionnaire by members still in the study, given since they
    joined and up to `until`, each with the member's pseudonym, enrolment and the wave it answered."""
    member = CohortMember.objects.filter(cohort=cohort, patient_id=OuterRef("patient_id"), withdrawn_at__isnull=True)
    wave = FollowUpTask.objects.filter(plan_id=cohort.plan_id, response_id=OuterRef("pk")).order_by("pk")
    return (
        QuestionnaireResponse.objects.filter(
            version__questionnaire_id=cohort.plan.questionnaire_id,
            status=ResponseStatus.COMPLETED,
            completed_at__lte=until,
        )
        .annotate(
            pseudonym=Subquery(member.values("pseudonym")[:1]),
            joined_at=Subquery(member.values("joined_at")[:1]),
            offset_days=Subquery(wave.values("offset_days")[:1]),
        )
        .filter(pseudonym__isnull=False, completed_at__gte=F("joined_at"))
    )


def cohort_editable(user, cohort: ResearchCohort) -> bool:
    """Department heads change the cohorts their departments follow up; administrators every cohort."""
    return _department_editable(user, cohort.plan.assignee_department_id, "followups.change_researchcohort")


# --- Alerts ----------------------------------------------------------------------------------------------


def _addressed_to(user) -> Q:
    """Alerts for `user`: named, or to their role in one of their departments; escalations likewise."""
    departments = sorted(user.department_ids)
    roles = list(user.role_codes)
    pooled = Q(recipient__isnull=True, recipient_role__in=roles, department_id__in=departments)
    escalated_pool = Q(escalated_to__isnull=True, escalated_to_role__in=roles) & (
        Q(escalated_to_role=Role.ADMINISTRATOR) | Q(department_id__in=departments)
    )
    return Q(recipient=user) | Q(escalated_to=user) | pooled | escalated_pool


def alerts_visible_to(user) -> QuerySet[Alert]:
    """Alerts `user` may see and acknowledge: their own, and those of the departments they lead (admins: all)."""
    if not user.has_perm("followups.view_alert"):
        return Alert.objects.none()
    if sees_every_department(user):
        return Alert.objects.all()
    if user.has_perm("followups.view_department_alert"):
        return Alert.objects.filter(_addressed_to(user) | Q(department_id__in=sorted(user.department_ids)))
    return Alert.objects.filter(_addressed_to(user))


def alerts_waiting_count(user) -> int:
    """How many alerts `user` may acknowledge are not acknowledged yet (the worklist's panel)."""
    return alerts_visible_to(user).filter(status__in=UNACKNOWLEDGED).count()


def alert_acknowledgeable(user, alert: Alert) -> bool:
    return alert.status in UNACKNOWLEDGED and user.has_perm("followups.acknowledge_alert")


def alert_rules_visible_to(user) -> QuerySet[AlertRule]:
    if not user.has_perm("followups.view_alertrule"):
        return AlertRule.objects.none()
    return AlertRule.objects.all()


def alert_rule_editable(user, rule: AlertRule) -> bool:
    """Department heads change the rules of their departments; administrators every rule."""
    return _department_editable(user, rule.department_id, "followups.change_alertrule")


# --- Letters -------------------------------------------------------------------------------------


def letter_tasks_to_print(parts: tuple[QuerySet[FollowUpTask], ...], when: Window, *, limit: int) -> list[FollowUpTask]:
    """Letter tasks of a worklist due by the end of today whose letter has not gone out (or is to go again),
    soonest due first, at most `limit`."""
    due = Q(
        channel=FollowUpChannel.LETTER,
        status__in=(TaskStatus.PENDING, TaskStatus.UNREACHED),
        claimed_by__isnull=True,
        due_at__lt=when.end,
    )
    return list(_soonest_due([part.filter(due) for part in parts], start=0, count=limit))


def letters_posted(tasks: list[FollowUpTask]) -> dict[int, dt.datetime]:
    """When each task's letter was last printed, for the worklist's rows."""
    posted = (
        LetterPrint.objects.filter(task_id__in=[task.pk for task in tasks])
        .values("task_id")
        .annotate(last=Max("batch__created_at"))
    )
    return {row["task_id"]: row["last"] for row in posted}


def letter_batches_of(user, *, limit: int = 10) -> QuerySet[LetterBatch]:
    """The latest batches `user` printed, to print one again."""
    return LetterBatch.objects.filter(printed_by=user).order_by("-created_at", "-id")[:limit]
