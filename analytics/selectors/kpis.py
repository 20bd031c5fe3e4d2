"""Follow-up KPIs per department: coverage of discharges, connect, completion and on-time rates.

The definitions are in `analytics.selectors`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DurationField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.db.models.functions import TruncDate

from analytics.selectors.common import Filters, Summable, department_filter, percent
from followups.models import CloseReason, FollowUpChannel, FollowUpTask, SourceKind, TaskStatus
from patients.models import Encounter

# Tasks closed because they were not to be worked are no follow-up that failed.
NOT_TO_WORK = (
    CloseReason.DECEASED,
    CloseReason.READMITTED,
    CloseReason.CONSENT_WITHDRAWN,
    CloseReason.CANCELLED,
)


@dataclass
class Kpis(Summable):
    discharges: int = 0
    covered: int = 0
    due: int = 0
    tried: int = 0
    connected: int = 0
    completed: int = 0
    on_time: int = 0

    @property
    def coverage(self) -> Decimal | None:
        return percent(self.covered, self.discharges)

    @property
    def connect_rate(self) -> Decimal | None:
        return percent(self.connected, self.tried)

    @property
    def completion_rate(self) -> Decimal | None:
        return percent(self.completed, self.due)

    @property
    def on_time_rate(self) -> Decimal | None:
        return percent(self.on_time, self.due)


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
    stays = department_filter(stays, filters)
    return list(
        stays.values("department_id")
        .annotate(discharges=Count("pk"), covered=Count("pk", filter=Exists(made_from)))
        .order_by()
    )


def _task_groups(filters: Filters) -> list[dict]:
    tasks = FollowUpTask.objects.filter(due_date__gte=filters.start, due_date__lte=filters.end).exclude(
        status=TaskStatus.CLOSED, closed_reason__in=NOT_TO_WORK
    )
    tasks = department_filter(tasks, filters)
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
