"""Per-patient statistics: visits, spending and RFM scores, by one rule written in Python and in SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from patients.models import EncounterStatus, OutreachSettings, RfmGroup
from patients.selectors.outreach import outreach_settings
from patients.selectors.segments import local_midnight

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
