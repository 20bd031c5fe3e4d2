"""Writes for segments, outreach settings and the per-patient statistics (visits, spending, RFM)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from hcrm.audit import audit_acting_as
from patients.models import EncounterStatus, OutreachSettings, RfmGroup, Segment
from patients.selectors.outreach import outreach_settings
from patients.selectors.segments import local_midnight, segment_filters_clean, segment_patients

# --- Segments ---------------------------------------------------------------------------------------


def _flatten(detail: Any, path: str) -> dict[str, list[ValidationError]]:
    """DRF's nested error detail as Django errors under dotted field names, keeping each error's code."""
    if isinstance(detail, dict):
        errors: dict[str, list[ValidationError]] = {}
        for key, value in detail.items():
            errors.update(_flatten(value, path if key == "non_field_errors" else f"{path}.{key}"))
        return errors
    if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        errors = {}
        for index, item in enumerate(detail):
            errors.update(_flatten(item, f"{path}.{index}") if isinstance(item, (dict, list)) else _flatten(item, path))
        return errors
    items = detail if isinstance(detail, list) else [detail]
    return {path: [ValidationError(str(item), code=getattr(item, "code", "invalid")) for item in items]}


def _clean_filters(filters: Any) -> dict[str, Any]:
    try:
        return segment_filters_clean(filters)
    except serializers.ValidationError as error:
        raise ValidationError(_flatten(error.detail, "filters")) from None


def _segment_fields(name: str, description: str) -> dict[str, str]:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ValidationError(_("Give the segment a name."), code="required")})
    if len(name) > Segment._meta.get_field("name").max_length:
        raise ValidationError({"name": ValidationError(_("The name is too long."), code="max_length")})
    return {"name": name, "description": (description or "").strip()}


def _duplicate_name() -> ValidationError:
    return ValidationError({"name": ValidationError(_("Another segment already has this name."), code="duplicate")})


def segment_create(*, actor, name: str, filters: dict[str, Any] | None = None, description: str = "") -> Segment:
    """Save a named filter; the filters are validated and stored in canonical form (none: every patient)."""
    fields = _segment_fields(name, description)
    spec = _clean_filters(filters or {})
    if Segment.objects.filter(name=fields["name"]).exists():
        raise _duplicate_name()
    owner = actor if getattr(actor, "pk", None) else None
    try:
        with transaction.atomic(), audit_acting_as(actor):
            return Segment.objects.create(**fields, filters=spec, owner=owner)
    except IntegrityError:
        raise _duplicate_name() from None


def segment_update(*, actor, segment: Segment, data: dict[str, Any]) -> Segment:
    """Change a segment's name, description or filters; a change of filters forgets the cached count."""
    unknown = sorted(set(data) - {"name", "description", "filters"})
    if unknown:
        raise ValidationError({field: _("This field cannot be set here.") for field in unknown})
    fields = _segment_fields(data.get("name", segment.name), data.get("description", segment.description))
    if "filters" in data:
        spec = _clean_filters(data["filters"])
        if spec != segment.filters:
            segment.filters = spec
            segment.last_count = None
            segment.last_counted_at = None
    if Segment.objects.filter(name=fields["name"]).exclude(pk=segment.pk).exists():
        raise _duplicate_name()
    segment.name, segment.description = fields["name"], fields["description"]
    try:
        with transaction.atomic(), audit_acting_as(actor):
            segment.save()
    except IntegrityError:
        raise _duplicate_name() from None
    return segment


def segment_delete(*, actor, segment: Segment) -> None:
    """Delete a segment that no plan or campaign uses."""
    try:
        with transaction.atomic(), audit_acting_as(actor):
            segment.delete()
    except ProtectedError:
        raise ValidationError(
            _("A follow-up plan or a campaign uses this segment; change its audience first."), code="protected"
        ) from None


def segment_count(*, segment: Segment, today: dt.date | None = None) -> int:
    """Count the segment's patients (a real COUNT) and keep the figure for lists; not audited, it names no one."""
    count = segment_patients(segment.filters, today=today).count()
    now = timezone.now()
    # update(): a cached figure is not a change anyone made to the segment.
    Segment.objects.filter(pk=segment.pk).update(last_count=count, last_counted_at=now)
    segment.last_count, segment.last_counted_at = count, now
    return count


# --- Outreach settings ----------------------------------------------------------------------------

BOUNDARY_FIELDS = ("rfm_recency_days", "rfm_frequency_visits", "rfm_monetary_yuan")
SETTINGS_FIELDS = ("quiet_hours_start", "quiet_hours_end", "daily_message_cap", "rfm_window_days", *BOUNDARY_FIELDS)


def _boundaries(value: Any, *, whole: bool) -> list[int | float]:
    if isinstance(value, str):
        value = [part for part in value.replace("，", ",").split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValidationError(_("Give exactly four numbers."), code="invalid")
    numbers: list[int | float] = []
    for item in value:
        try:
            number = Decimal(str(item).strip())
        except ArithmeticError:
            raise ValidationError(_("Give exactly four numbers."), code="invalid") from None
        if isinstance(item, bool) or not number.is_finite() or number <= 0:
            raise ValidationError(_("Each boundary must be a positive number."), code="invalid")
        if whole and number != number.to_integral_value():
            raise ValidationError(_("Each boundary must be a whole number."), code="invalid")
        if number.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValidationError(_("Use at most two decimal places."), code="invalid")
        numbers.append(int(number) if number == number.to_integral_value() else float(number))
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:], strict=False)):
        raise ValidationError(_("The boundaries must be strictly increasing."), code="invalid")
    return numbers


def _time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(_("Enter a time as HH:MM."), code="invalid") from None


def _whole(value: Any, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool):
        raise ValidationError(_("Enter a whole number."), code="invalid")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(_("Enter a whole number."), code="invalid") from None
    if not minimum <= number <= maximum:
        raise ValidationError(
            _("Enter a number from %(minimum)s to %(maximum)s.") % {"minimum": minimum, "maximum": maximum},
            code="invalid",
        )
    return number


def outreach_settings_update(*, actor, data: dict[str, Any]) -> OutreachSettings:
    """Change quiet hours, the daily cap, the RFM window and boundaries; every error is reported at once."""
    unknown = sorted(set(data) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationError({field: _("This field cannot be set here.") for field in unknown})
    parsers = {
        "quiet_hours_start": _time,
        "quiet_hours_end": _time,
        "daily_message_cap": lambda value: _whole(value, minimum=1, maximum=1000),
        "rfm_window_days": lambda value: _whole(value, minimum=1, maximum=36500),
        "rfm_recency_days": lambda value: _boundaries(value, whole=True),
        "rfm_frequency_visits": lambda value: _boundaries(value, whole=True),
        "rfm_monetary_yuan": lambda value: _boundaries(value, whole=False),
    }
    values, errors = {}, {}
    for field, value in data.items():
        try:
            values[field] = parsers[field](value)
        except ValidationError as error:
            errors[field] = error
    start = values.get("quiet_hours_start")
    end = values.get("quiet_hours_end")
    if start is not None and start == end:
        errors.setdefault("quiet_hours_end", ValidationError(_("The end must differ from the start."), code="invalid"))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(), audit_acting_as(actor):
        row = OutreachSettings.objects.select_for_update().filter(pk=outreach_settings().pk).get()
        for field, value in values.items():
            setattr(row, field, value)
        if getattr(actor, "pk", None):
            row.updated_by = actor
        row.save()
    return row


# --- RFM: the rule, in Python and in SQL ------------------------------------------------------------


@dataclass(frozen=True)
class RfmBoundaries:
    recency_days: tuple[int, int, int, int]
    frequency_visits: tuple[int, int, int, int]
    monetary_yuan: tuple[Decimal, Decimal, Decimal, Decimal]
    window_days: int

    @classmethod
    def from_settings(cls, row: OutreachSettings) -> RfmBoundaries:
        return cls(
            recency_days=tuple(int(value) for value in row.rfm_recency_days),  # type: ignore[arg-type]
            frequency_visits=tuple(int(value) for value in row.rfm_frequency_visits),  # type: ignore[arg-type]
            monetary_yuan=tuple(Decimal(str(value)) for value in row.rfm_monetary_yuan),  # type: ignore[arg-type]
            window_days=int(row.rfm_window_days),
        )


class RfmScores(NamedTuple):
    recency: int
    frequency: int
    monetary: int
    group: str


def rfm_scores(
    *,
    days_since_last_visit: int | None,
    visit_count: int,
    visits_in_window: int,
    spending_in_window: Decimal,
    boundaries: RfmBoundaries,
) -> RfmScores:
    """Recency 5 (within the first boundary) .. 1 (beyond the last); frequency and monetary 1 + boundaries reached.

    Never visited: every score 0, group "none". The group rule, first match wins: none → new (R ≥ 4,
    exactly one visit ever) → loyal (R ≥ 3, F ≥ 4) → at risk (R ≤ 2, F ≥ 3) → lapsed (R = 1) →
    active (R ≥ 3) → occasional. `_RFM_SQL` states the same rule for the batch recompute.
    """
    if days_since_last_visit is None or visit_count == 0:
        return RfmScores(0, 0, 0, RfmGroup.NONE)
    recency = 1
    for score, boundary in zip((5, 4, 3, 2), boundaries.recency_days, strict=True):
        if days_since_last_visit <= boundary:
            recency = score
            break
    frequency = 1 + sum(1 for boundary in boundaries.frequency_visits if visits_in_window >= boundary)
    monetary = 1 + sum(1 for boundary in boundaries.monetary_yuan if spending_in_window >= boundary)
    return RfmScores(recency, frequency, monetary, rfm_group(recency, frequency, visit_count))


def rfm_group(recency: int, frequency: int, visit_count: int) -> str:
    if visit_count == 0:
        return RfmGroup.NONE
    if recency >= 4 and visit_count == 1:
        return RfmGroup.NEW
    if recency >= 3 and frequency >= 4:
        return RfmGroup.LOYAL
    if recency <= 2 and frequency >= 3:
        return RfmGroup.AT_RISK
    if recency == 1:
        return RfmGroup.LAPSED
    if recency >= 3:
        return RfmGroup.ACTIVE
    return RfmGroup.OCCASIONAL


# Scores from the figures of one patient (`figures` columns); thresholds are parameters. A recency
# boundary of N days becomes the local midnight N days before today: "at most N days ago".
_RFM_SQL = """
    CASE WHEN f.visit_count = 0 THEN 0
         WHEN f.last_visit_at >= %(recency_0)s THEN 5 WHEN f.last_visit_at >= %(recency_1)s THEN 4
         WHEN f.last_visit_at >= %(recency_2)s THEN 3 WHEN f.last_visit_at >= %(recency_3)s THEN 2 ELSE 1 END
        AS recency_score,
    CASE WHEN f.visit_count = 0 THEN 0
         WHEN f.visits_in_window >= %(frequency_3)s THEN 5 WHEN f.visits_in_window >= %(frequency_2)s THEN 4
         WHEN f.visits_in_window >= %(frequency_1)s THEN 3 WHEN f.visits_in_window >= %(frequency_0)s THEN 2
         ELSE 1 END AS frequency_score,
    CASE WHEN f.visit_count = 0 THEN 0
         WHEN f.spending_in_window >= %(monetary_3)s THEN 5 WHEN f.spending_in_window >= %(monetary_2)s THEN 4
         WHEN f.spending_in_window >= %(monetary_1)s THEN 3 WHEN f.spending_in_window >= %(monetary_0)s THEN 2
         ELSE 1 END AS monetary_score
"""
_GROUP_SQL = """
    CASE WHEN s.visit_count = 0 THEN 'none'
         WHEN s.recency_score >= 4 AND s.visit_count = 1 THEN 'new'
         WHEN s.recency_score >= 3 AND s.frequency_score >= 4 THEN 'loyal'
         WHEN s.recency_score <= 2 AND s.frequency_score >= 3 THEN 'at_risk'
         WHEN s.recency_score = 1 THEN 'lapsed'
         WHEN s.recency_score >= 3 THEN 'active'
         ELSE 'occasional' END
"""


def rfm_scores_sql(figures_sql: str, *, extra_columns: str = "") -> str:
    """SELECT the figures of `figures_sql` (a subquery with the columns of PatientStats' figures) with scores."""
    return f"""
        SELECT s.*, {extra_columns}{_GROUP_SQL} AS rfm_group FROM (
            SELECT f.*, {_RFM_SQL} FROM ({figures_sql}) f
        ) s
    """  # noqa: S608 (fixed fragments; values are parameters)


def rfm_parameters(boundaries: RfmBoundaries, today: dt.date) -> dict[str, Any]:
    """The thresholds of `rfm_scores_sql` as query parameters, adapted for the database in use."""
    params: dict[str, Any] = {}
    for index, days in enumerate(boundaries.recency_days):
        params[f"recency_{index}"] = _timestamp(local_midnight(today - dt.timedelta(days=days)))
    for index, visits in enumerate(boundaries.frequency_visits):
        params[f"frequency_{index}"] = visits
    for index, amount in enumerate(boundaries.monetary_yuan):
        params[f"monetary_{index}"] = _amount(amount)
    return params


def _timestamp(value: dt.datetime):
    return connection.ops.adapt_datetimefield_value(value)


def _amount(value: Decimal):
    # SQLite compares a SUM (a number) with a text parameter as text: give it a number.
    return float(value) if connection.vendor == "sqlite" else value


# --- Recompute ----------------------------------------------------------------------------------------

_FIGURES_SQL = """
    SELECT p.id AS patient_id, v.first_visit_at, v.last_visit_at,
           COALESCE(v.visit_count, 0) AS visit_count, COALESCE(v.visits_in_window, 0) AS visits_in_window,
           COALESCE(c.spending_total, 0) AS spending_total, COALESCE(c.spending_in_window, 0) AS spending_in_window
    FROM patients_patient p
    LEFT JOIN (
        SELECT e.patient_id, MIN(e.started_at) AS first_visit_at, MAX(e.started_at) AS last_visit_at,
               COUNT(*) AS visit_count,
               SUM(CASE WHEN e.started_at >= %(window_start)s THEN 1 ELSE 0 END) AS visits_in_window
        FROM patients_encounter e
        WHERE {encounters} AND e.status <> %(cancelled)s AND e.started_at < %(as_of)s
        GROUP BY e.patient_id
    ) v ON v.patient_id = p.id
    LEFT JOIN (
        SELECT ch.patient_id, SUM(ch.amount) AS spending_total,
               SUM(CASE WHEN ch.charged_at >= %(window_start)s THEN ch.amount ELSE 0 END) AS spending_in_window
        FROM patients_charge ch
        WHERE {charges} AND ch.charged_at < %(as_of)s
        GROUP BY ch.patient_id
    ) c ON c.patient_id = p.id
    WHERE {patients} AND p.merged_into_id IS NULL
"""
_COLUMNS = (
    "first_visit_at",
    "last_visit_at",
    "visit_count",
    "visits_in_window",
    "spending_total",
    "spending_in_window",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_group",
    "computed_at",
)
# WHERE 1 = 1 keeps SQLite from reading ON CONFLICT as a join constraint of the SELECT.
_UPSERT_SQL = """
    INSERT INTO patients_patientstats (patient_id, {columns})
    SELECT patient_id, {columns} FROM ({scored}) scored WHERE 1 = 1
    ON CONFLICT (patient_id) DO UPDATE SET {updates}
"""
_DELETE_MERGED_SQL = """
    DELETE FROM patients_patientstats WHERE patient_id IN (
        SELECT p.id FROM patients_patient p WHERE {patients} AND p.merged_into_id IS NOT NULL
    )
"""
ID_LIST_CHUNK = 500


def _upsert_sql(condition: str) -> str:
    figures = _FIGURES_SQL.format(
        encounters=condition.replace("{id}", "e.patient_id"),
        charges=condition.replace("{id}", "ch.patient_id"),
        patients=condition.replace("{id}", "p.id"),
    )
    scored = rfm_scores_sql(figures, extra_columns="%(computed_at)s AS computed_at, ")
    columns = ", ".join(_COLUMNS)
    updates = ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS)
    return _UPSERT_SQL.format(columns=columns, scored=scored, updates=updates)


def _recompute_batch(condition: str, params: dict[str, Any]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_DELETE_MERGED_SQL.format(patients=condition.replace("{id}", "p.id")), params)
        cursor.execute(_upsert_sql(condition), params)
        return cursor.rowcount


def patient_stats_recompute(
    *,
    patient_ids: Iterable[int] | None = None,
    id_range: tuple[int, int] | None = None,
    batch_size: int = 10_000,
    today: dt.date | None = None,
) -> int:
    """Recompute visits, spending and RFM of the given patients (default: all), one SQL upsert per batch.

    `id_range` (first, last) takes a block of primary keys as the nightly task does; `patient_ids`
    takes a list. Idempotent: running it again over the same data writes the same figures, so an
    interrupted run is resumed by running the remaining batches. Returns the rows written.
    """
    today = today or timezone.localdate()
    boundaries = RfmBoundaries.from_settings(outreach_settings())
    params = {
        **rfm_parameters(boundaries, today),
        "window_start": _timestamp(local_midnight(today - dt.timedelta(days=boundaries.window_days))),
        "as_of": _timestamp(local_midnight(today + dt.timedelta(days=1))),
        "computed_at": _timestamp(timezone.now()),
        "cancelled": EncounterStatus.CANCELLED.value,
    }
    written = 0
    if patient_ids is not None:
        ids = sorted(set(patient_ids))
        for start in range(0, len(ids), ID_LIST_CHUNK):
            chunk = ids[start : start + ID_LIST_CHUNK]
            names = [f"id_{index}" for index in range(len(chunk))]
            condition = "{id} IN (" + ", ".join(f"%({name})s" for name in names) + ")"
            written += _recompute_batch(condition, {**params, **dict(zip(names, chunk, strict=True))})
        return written
    if id_range is not None:
        first, last = id_range
        return _recompute_batch(
            "{id} BETWEEN %(first_id)s AND %(last_id)s", {**params, "first_id": first, "last_id": last}
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM patients_patient")
        low, high = cursor.fetchone()
    if low is None:
        return 0
    for first in range(low, high + 1, batch_size):
        last = min(first + batch_size - 1, high)
        written += _recompute_batch(
            "{id} BETWEEN %(first_id)s AND %(last_id)s", {**params, "first_id": first, "last_id": last}
        )
    return written


def patient_stats_analyze() -> None:
    """Refresh the planner's statistics of PatientStats after a full recompute (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE patients_patientstats")
