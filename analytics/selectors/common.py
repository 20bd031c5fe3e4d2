"""What every statistic shares: who sees which departments, the period and filters, caching, names."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone

from hcrm.models import Department
from hcrm.roles import Role

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


def department_filter(rows, filters: Filters, field_name: str = "department_id"):
    if filters.scope is not None:
        rows = rows.filter(**{f"{field_name}__in": sorted(filters.scope)})
    if filters.department_id is not None:
        rows = rows.filter(**{field_name: filters.department_id})
    return rows


def month_of(value) -> dt.date | None:
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


class Summable:
    """Counts and sums (dataclass fields) that add up across the groups the database returns."""

    def add(self, row: dict) -> None:
        for item in fields(self):  # type: ignore[arg-type]
            value = row.get(item.name)
            if value:
                setattr(self, item.name, getattr(self, item.name) + value)


def percent(part: int, whole: int) -> Decimal | None:
    return (Decimal(100) * part / whole).quantize(Decimal("0.1")) if whole else None


# --- Names for the groups --------------------------------------------------------------------------


def department_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted(pk for pk in ids if pk is not None)
    return {department.pk: department.display_name for department in Department.objects.filter(pk__in=wanted)}


def doctor_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted(pk for pk in ids if pk is not None)
    return {user.pk: str(user) for user in get_user_model().objects.filter(pk__in=wanted)}
