"""Records other systems send (visits, diagnoses, results, ...): upserted on (external id, source system)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model
from django.utils import timezone

from hcrm.rows import Upserted, rows_upsert
from patients.models import PatientDepartment

RecordT = TypeVar("RecordT", bound=Model)


def external_records_upsert(
    *,
    model: type[RecordT],
    rows: Sequence[dict[str, Any]],
    keep: Collection[str] = (),
    on_existing: Mapping[str, Any] | None = None,
    department_links: Collection[tuple[int, int]] = (),
    linked: Sequence[tuple[str, Sequence[Any]]] = (),
) -> list[Upserted[RecordT] | None]:
    """Create or update a system's records of one model in one statement (not audited row by row).

    Each row names `patient_id`, `source_system` and `external_id` with its values; a stored row of
    another patient is left alone and comes back as None, for the caller to refuse. The (patient,
    department) pairs in `department_links` are linked in the same round trip, and so are the
    `linked` writes (see `rows_upsert`).
    """
    if department_links:
        quote = connection.ops.quote_name
        now = PatientDepartment._meta.get_field("created_at").get_db_prep_save(timezone.now(), connection)
        pairs = sorted(set(department_links))
        link = (
            f"INSERT INTO {quote(PatientDepartment._meta.db_table)} (patient_id, department_id, created_at) "  # noqa: S608 (model metadata)
            f"VALUES {', '.join(['(%s, %s, %s)'] * len(pairs))} ON CONFLICT DO NOTHING",
            [value for patient_id, department_id in pairs for value in (patient_id, department_id, now)],
        )
        linked = [link, *linked]
    return rows_upsert(
        model,
        rows,
        conflict=("external_id", "source_system"),
        conflict_where="external_id IS NOT NULL",
        owner="patient_id",
        keep=keep,
        on_existing=on_existing,
        linked=linked,
    )
