"""Statistics for administrators and department heads: satisfaction survey results and follow-up KPIs.

Every figure is aggregated by the database (one GROUP BY per source table, counts with FILTER) over the
columns and indexes kept for it (`QuestionnaireResponse.satisfaction`, `.recommendation`, `.item_scores`,
the rated department and doctor; the tasks' due-day index; the encounters' discharge index); Python only
adds up the few hundred groups that come back. Nothing returned names a patient, except the comments,
and those only to someone who may see the patient.

Definitions (shown on the pages too):
- a satisfaction **response** is a completed response to a satisfaction survey, counted in the period it
  was completed in, under the department and doctor it rates: those of the follow-up task it completed
  (the doctor is the attending doctor of the encounter that triggered the task, else the task's assignee
  when a doctor), or the hidden answers staff gave when recording it without a task;
- an **invitation** is a satisfaction follow-up task due in the period that was tried at least once (a call
  made, a link sent) or completed; the **response rate** is the share of invitations completed;
- **NPS** = % promoters (9–10) − % detractors (0–6) of the responses answering the 0–10 recommendation;
- a **discharge** is an inpatient stay, not cancelled, that ended in the period; it is **covered** when a
  follow-up task was made from it;
- **tasks due** are follow-up tasks due in the period, except those closed as not to be worked (the patient
  died, was readmitted or withdrew consent, or the task was cancelled); **tried**: at least one attempt or
  completed; **connected**: completed, reached on the phone, or refused on the phone (the patient answered);
  **completed**: completed with a response; **on time**: completed no later than the due day plus
  ANALYTICS_ON_TIME_GRACE_DAYS days. Connect rate = connected / tried; completion and on-time rates are
  shares of the tasks due.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, FloatField, OuterRef, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncDate, TruncMonth
from django.utils import timezone, translation

from followups.models import (
    CloseReason,
    FollowUpChannel,
    FollowUpTask,
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireVersion,
    SourceKind,
    TaskStatus,
)
from followups.models.questionnaires import RATED
from followups.scoring import satisfaction_items, walk
from hcrm.models import Department
from hcrm.roles import Role
from patients.models import Encounter

PROMOTER_MIN = 9
DETRACTOR_MAX = 6
LOWEST_ITEMS = 10
COMMENTS_PAGE = 20
COMMENT_ITEM = "comments"
# Tasks closed because they were not to be worked are no follow-up that failed.
NOT_TO_WORK = (
    CloseReason.DECEASED,
    CloseReason.READMITTED,
    CloseReason.CONSENT_WITHDRAWN,
    CloseReason.CANCELLED,
)


# --- Who sees what ---------------------------------------------------------------------------------


def statistics_department_ids(user) -> set[int] | None:
    """The departments whose statistics `user` sees: None for every one (administrators, analysts)."""
    if not user.has_perm("analytics.view_statistics"):
        return set()
    if user.is_superuser or {Role.ADMINISTRATOR, Role.ANALYST} & set(user.role_codes):
        return None
    return set(user.department_ids)


def statistics_departments(user):
    departments = Department.objects.filter(is_active=True).order_by("code")
    ids = statistics_department_ids(user)
    return departments if ids is None else departments.filter(pk__in=sorted(ids))


# --- Periods and filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    scope: frozenset[int] | None  # the departments the reader may see; None: every one
    department_id: int | None = None
    questionnaire_id: int | None = None

    @property
    def start_at(self) -> dt.datetime:
        return _day_start(self.start)

    @property
    def end_before(self) -> dt.datetime:
        return _day_start(self.end + dt.timedelta(days=1))

    def key(self, kind: str) -> str:
        scope = sorted(self.scope) if self.scope is not None else None
        values = [kind, self.start.isoformat(), self.end.isoformat(), scope, self.department_id, self.questionnaire_id]
        return "analytics:" + hashlib.sha256(json.dumps(values).encode()).hexdigest()


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def default_period(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last three months: from the first day of the month two months back to today."""
    today = today or timezone.localdate()
    month = today.month - 2
    year = today.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    return dt.date(year, month, 1), today


def months_of(start: dt.date, end: dt.date) -> list[dt.date]:
    months, month = [], start.replace(day=1)
    while month <= end:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def _department_filter(rows, filters: Filters, field_name: str = "department_id"):
    if filters.scope is not None:
        rows = rows.filter(**{f"{field_name}__in": sorted(filters.scope)})
    if filters.department_id is not None:
        rows = rows.filter(**{field_name: filters.department_id})
    return rows


def _month(value) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return dt.date(value.year, value.month, 1)


def cached(filters: Filters, kind: str, compute):
    """`compute()`, kept for ANALYTICS_CACHE_SECONDS per filter combination, with the time it was computed."""
    seconds = settings.ANALYTICS_CACHE_SECONDS
    key = filters.key(kind)
    found = cache.get(key) if seconds else None
    if found is None:
        found = {"computed_at": timezone.now(), "figures": compute()}
        if seconds:
            cache.set(key, found, seconds)
    return found


# --- Satisfaction ----------------------------------------------------------------------------------


@dataclass
class Satisfaction:
    """Sums that add up across groups; the rates and means are derived."""

    responses: int = 0
    scored: int = 0
    score_sum: Decimal = Decimal(0)
    recommended: int = 0
    promoters: int = 0
    detractors: int = 0
    invited: int = 0
    answered: int = 0

    def add(self, row: dict) -> None:
        for name in ("responses", "scored", "recommended", "promoters", "detractors", "invited", "answered"):
            setattr(self, name, getattr(self, name) + (row.get(name) or 0))
        self.score_sum += row.get("score_sum") or Decimal(0)

    @property
    def passives(self) -> int:
        return self.recommended - self.promoters - self.detractors

    @property
    def mean(self) -> Decimal | None:
        return (self.score_sum / self.scored).quantize(Decimal("0.01")) if self.scored else None

    @property
    def nps(self) -> Decimal | None:
        if not self.recommended:
            return None
        return (Decimal(100) * (self.promoters - self.detractors) / self.recommended).quantize(Decimal("0.1"))

    @property
    def promoters_share(self) -> Decimal | None:
        return _percent(self.promoters, self.recommended)

    @property
    def passives_share(self) -> Decimal | None:
        return _percent(self.passives, self.recommended)

    @property
    def detractors_share(self) -> Decimal | None:
        return _percent(self.detractors, self.recommended)

    @property
    def response_rate(self) -> Decimal | None:
        return _percent(self.answered, self.invited)


def _percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(100) * part / whole).quantize(Decimal("0.1")) if whole else None


@dataclass
class SatisfactionFigures:
    total: Satisfaction = field(default_factory=Satisfaction)
    by_department: dict[int | None, Satisfaction] = field(default_factory=dict)
    by_doctor: dict[int | None, Satisfaction] = field(default_factory=dict)
    by_month: dict[dt.date, Satisfaction] = field(default_factory=dict)
    # (version id, linkId) → (answers, sum)
    items: dict[tuple[int, str], tuple[int, float]] = field(default_factory=dict)


def satisfaction_versions(filters: Filters) -> dict[int, QuestionnaireVersion]:
    """The versions of the satisfaction surveys the figures may come from (a few rows)."""
    versions = QuestionnaireVersion.objects.filter(questionnaire__purpose=QuestionnairePurpose.SATISFACTION)
    if filters.questionnaire_id is not None:
        versions = versions.filter(questionnaire_id=filters.questionnaire_id)
    return {version.pk: version for version in versions.select_related("questionnaire")}


def rated_responses(filters: Filters, version_ids: Iterable[int]):
    """Completed satisfaction responses of the period, as the reader may see them."""
    rows = QuestionnaireResponse.objects.filter(
        RATED, completed_at__gte=filters.start_at, completed_at__lt=filters.end_before
    )
    if filters.questionnaire_id is not None:
        rows = rows.filter(version_id__in=sorted(version_ids))
    return _department_filter(rows, filters)


def _satisfaction_groups(rows) -> list[dict]:
    return list(
        rows.values("department_id", "doctor_id", month=TruncMonth("completed_at"))
        .annotate(
            responses=Count("*"),
            scored=Count("satisfaction"),
            score_sum=Sum("satisfaction"),
            recommended=Count("recommendation"),
            promoters=Count("recommendation", filter=Q(recommendation__gte=PROMOTER_MIN)),
            detractors=Count("recommendation", filter=Q(recommendation__lte=DETRACTOR_MAX)),
        )
        .order_by()
    )


def _invitation_groups(filters: Filters) -> list[dict]:
    surveys = Questionnaire.objects.filter(purpose=QuestionnairePurpose.SATISFACTION)
    if filters.questionnaire_id is not None:
        surveys = surveys.filter(pk=filters.questionnaire_id)
    tasks = FollowUpTask.objects.filter(
        due_date__gte=filters.start,
        due_date__lte=filters.end,
        questionnaire_id__in=sorted(surveys.values_list("pk", flat=True)),
    )
    tasks = _department_filter(tasks, filters)
    completed = Q(status=TaskStatus.COMPLETED)
    return list(
        tasks.values("department_id", month=TruncMonth("due_date"))
        .annotate(
            invited=Count("pk", filter=Q(attempts__gte=1) | completed),
            answered=Count("pk", filter=completed),
        )
        .order_by()
    )


def _item_sums(rows, versions: dict[int, QuestionnaireVersion]) -> dict[tuple[int, str], tuple[int, float]]:
    """Answers and sum of each item of the overall mean, by version: one pass, the items read by key."""
    asked_in: dict[str, list[int]] = {}
    for version in versions.values():
        for link_id in satisfaction_items(version.scoring):
            asked_in.setdefault(link_id, []).append(version.pk)
    link_ids = sorted(asked_in)
    if not link_ids:
        return {}
    aggregates = {}
    for index, link_id in enumerate(link_ids):
        score = Cast(KeyTextTransform(link_id, "item_scores"), FloatField())
        # Each row's JSON is read only for the items its version asks.
        asked = Q(version_id__in=sorted(asked_in[link_id]))
        aggregates[f"n{index}"] = Count(score, filter=asked)
        aggregates[f"s{index}"] = Sum(score, filter=asked)
    sums = {}
    for row in rows.values("version_id").annotate(**aggregates).order_by():
        for index, link_id in enumerate(link_ids):
            if row[f"n{index}"]:
                sums[(row["version_id"], link_id)] = (row[f"n{index}"], row[f"s{index}"])
    return sums


def satisfaction_results(filters: Filters, versions: dict[int, QuestionnaireVersion]) -> SatisfactionFigures:
    """Responses, means, NPS and response rates: overall, by department, doctor and month; item sums."""
    rows = rated_responses(filters, versions)
    figures = SatisfactionFigures()
    figures.by_month = {month: Satisfaction() for month in months_of(filters.start, filters.end)}
    for row in _satisfaction_groups(rows):
        figures.total.add(row)
        figures.by_department.setdefault(row["department_id"], Satisfaction()).add(row)
        figures.by_doctor.setdefault(row["doctor_id"], Satisfaction()).add(row)
        figures.by_month.setdefault(_month(row["month"]), Satisfaction()).add(row)
    for row in _invitation_groups(filters):
        figures.total.add(row)
        figures.by_department.setdefault(row["department_id"], Satisfaction()).add(row)
        figures.by_month.setdefault(_month(row["month"]), Satisfaction()).add(row)
    figures.items = _item_sums(rows, versions)
    return figures


@dataclass(frozen=True)
class ItemMean:
    questionnaire: str
    link_id: str
    text: str
    answers: int
    mean: Decimal


def item_text_in_language(item: dict) -> str:
    """The item's text in the language of the page: the English translation on an English page, if any."""
    if (translation.get_language() or "").startswith("en"):
        for extension in (item.get("_text") or {}).get("extension") or ():
            parts = {part.get("url"): part for part in extension.get("extension") or ()}
            if parts.get("lang", {}).get("valueCode") == "en":
                return parts.get("content", {}).get("valueString", "") or item.get("text", "")
    return item.get("text", "") or item["linkId"]


def questionnaire_title(questionnaire: Questionnaire) -> str:
    english = (translation.get_language() or "").startswith("en")
    return questionnaire.title_en if english and questionnaire.title_en else questionnaire.title


def lowest_items(figures: SatisfactionFigures, versions: dict[int, QuestionnaireVersion]) -> list[ItemMean]:
    """The items of the overall mean with the lowest mean score (versions of one survey taken together)."""
    merged: dict[tuple[int, str], list] = {}
    for (version_id, link_id), (answers, total) in figures.items.items():
        version = versions.get(version_id)
        if version is None or link_id not in satisfaction_items(version.scoring):
            continue
        key = (version.questionnaire_id, link_id)
        found = merged.setdefault(key, [version, 0, 0.0])
        found[1] += answers
        found[2] += total
    means = []
    for (_questionnaire_id, link_id), (version, answers, total) in merged.items():
        item = next((one for one in walk(version.items) if one["linkId"] == link_id), {"linkId": link_id})
        means.append(
            ItemMean(
                questionnaire=questionnaire_title(version.questionnaire),
                link_id=link_id,
                text=item_text_in_language(item),
                answers=answers,
                mean=Decimal(str(total / answers)).quantize(Decimal("0.01")),
            )
        )
    return sorted(means, key=lambda one: (one.mean, -one.answers, one.link_id))[:LOWEST_ITEMS]


def satisfaction_comments(filters: Filters, versions: dict[int, QuestionnaireVersion], *, page: int) -> list[dict]:
    """One page of the latest comments (and one more row, to tell whether another page follows)."""
    rows = (
        rated_responses(filters, versions)
        .filter(answers__has_key=COMMENT_ITEM)
        .order_by("-completed_at", "-pk")
        .values(
            "uuid",
            "completed_at",
            "department_id",
            "doctor_id",
            "version_id",
            "patient_id",
            "satisfaction",
            "recommendation",
            comment=KeyTextTransform(COMMENT_ITEM, "answers"),
        )
    )
    start = (page - 1) * COMMENTS_PAGE
    return list(rows[start : start + COMMENTS_PAGE + 1])


# --- Follow-up KPIs --------------------------------------------------------------------------------


@dataclass
class Kpis:
    discharges: int = 0
    covered: int = 0
    due: int = 0
    tried: int = 0
    connected: int = 0
    completed: int = 0
    on_time: int = 0

    def add(self, row: dict) -> None:
        for name in ("discharges", "covered", "due", "tried", "connected", "completed", "on_time"):
            setattr(self, name, getattr(self, name) + (row.get(name) or 0))

    @property
    def coverage(self) -> Decimal | None:
        return _percent(self.covered, self.discharges)

    @property
    def connect_rate(self) -> Decimal | None:
        return _percent(self.connected, self.tried)

    @property
    def completion_rate(self) -> Decimal | None:
        return _percent(self.completed, self.due)

    @property
    def on_time_rate(self) -> Decimal | None:
        return _percent(self.on_time, self.due)


CONNECTED = (
    Q(status=TaskStatus.COMPLETED)
    | Q(channel=FollowUpChannel.PHONE, status=TaskStatus.IN_PROGRESS)
    | Q(status=TaskStatus.CLOSED, closed_reason=CloseReason.REFUSED)
)


def _discharge_groups(filters: Filters) -> list[dict]:
    made_from = FollowUpTask.objects.filter(
        patient_id=OuterRef("patient_id"), source_kind=SourceKind.ENCOUNTER, source_id=OuterRef("pk")
    )
    stays = Encounter.objects.filter(
        kind=Encounter.Kind.INPATIENT, ended_at__gte=filters.start_at, ended_at__lt=filters.end_before
    ).exclude(status=Encounter.Status.CANCELLED)
    stays = _department_filter(stays, filters)
    return list(
        stays.values("department_id")
        .annotate(discharges=Count("pk"), covered=Count("pk", filter=Exists(made_from)))
        .order_by()
    )


def _task_groups(filters: Filters) -> list[dict]:
    tasks = FollowUpTask.objects.filter(due_date__gte=filters.start, due_date__lte=filters.end).exclude(
        status=TaskStatus.CLOSED, closed_reason__in=NOT_TO_WORK
    )
    tasks = _department_filter(tasks, filters)
    completed = Q(status=TaskStatus.COMPLETED)
    lateness = ExpressionWrapper(TruncDate("completed_at") - F("due_date"), output_field=DurationField())
    grace = dt.timedelta(days=settings.ANALYTICS_ON_TIME_GRACE_DAYS)
    return list(
        tasks.annotate(lateness=lateness)
        .values("department_id")
        .annotate(
            due=Count("pk"),
            tried=Count("pk", filter=Q(attempts__gte=1) | completed),
            connected=Count("pk", filter=CONNECTED),
            completed=Count("pk", filter=completed),
            on_time=Count("pk", filter=completed & Q(lateness__lte=grace)),
        )
        .order_by()
    )


@dataclass
class KpiFigures:
    total: Kpis = field(default_factory=Kpis)
    by_department: dict[int | None, Kpis] = field(default_factory=dict)


def followup_kpis(filters: Filters) -> KpiFigures:
    """Coverage of discharges, and tried, connected, completed and on-time follow-ups, per department."""
    figures = KpiFigures()
    for row in [*_discharge_groups(filters), *_task_groups(filters)]:
        figures.total.add(row)
        figures.by_department.setdefault(row["department_id"], Kpis()).add(row)
    return figures


# --- Names for the groups --------------------------------------------------------------------------


def department_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted(pk for pk in ids if pk is not None)
    return {department.pk: department.display_name for department in Department.objects.filter(pk__in=wanted)}


def doctor_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted(pk for pk in ids if pk is not None)
    return {user.pk: str(user) for user in get_user_model().objects.filter(pk__in=wanted)}
