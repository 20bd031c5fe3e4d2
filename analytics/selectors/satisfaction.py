"""Satisfaction survey results: responses, means, NPS and response rates; lowest items; comments.

The definitions are in `analytics.selectors`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, FloatField, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncMonth
from django.utils import translation

from analytics.selectors.common import Filters, Summable, department_filter, month_of, months_of, percent
from followups.models import (
    FollowUpTask,
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireVersion,
    TaskStatus,
)
from followups.models.questionnaires import RATED
from followups.scoring import satisfaction_items, walk

PROMOTER_MIN = 9
DETRACTOR_MAX = 6
LOWEST_ITEMS = 10
COMMENTS_PAGE = 20
COMMENT_ITEM = "comments"


@dataclass
class Satisfaction(Summable):
    """Sums that add up across groups; the rates and means are derived."""

    responses: int = 0
    scored: int = 0
    score_sum: Decimal = Decimal(0)
    recommended: int = 0
    promoters: int = 0
    detractors: int = 0
    invited: int = 0
    answered: int = 0

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
        return percent(self.promoters, self.recommended)

    @property
    def passives_share(self) -> Decimal | None:
        return percent(self.passives, self.recommended)

    @property
    def detractors_share(self) -> Decimal | None:
        return percent(self.detractors, self.recommended)

    @property
    def response_rate(self) -> Decimal | None:
        return percent(self.answered, self.invited)


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
    return department_filter(rows, filters)


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
    tasks = department_filter(tasks, filters)
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
        figures.by_month.setdefault(month_of(row["month"]), Satisfaction()).add(row)
    for row in _invitation_groups(filters):
        figures.total.add(row)
        figures.by_department.setdefault(row["department_id"], Satisfaction()).add(row)
        figures.by_month.setdefault(month_of(row["month"]), Satisfaction()).add(row)
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
