"""Bulk import, what both writers share: a batch's outcome, conflicts, audit rows and review candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils.translation import gettext as _

from hcrm.models import AuditEntry
from hcrm.services import counter_next
from integrations.fhir.bulk.mapping import PatientRow
from integrations.models import BulkImport
from patients.models import MatchCandidate, Patient
from patients.validators import (
    validate_national_id_matches,
)

# --- Applying a batch --------------------------------------------------------------------------------


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    candidates: int = 0
    errors: list[dict] = field(default_factory=list)


class IdentityRace(Exception):
    """Another writer gave one of this batch's identifiers to another patient meanwhile; the batch is retried."""


def mrn_block(count: int) -> list[str]:
    last = counter_next(name="mrn", count=count)
    return [f"{settings.MRN_PREFIX}{number:08d}" for number in range(last - count + 1, last + 1)]


def audit_details(job: BulkImport, row_lines: list[int]) -> dict:
    return {"bulk_import": str(job.uuid), "line": row_lines[-1]}


MASKED_FIELDS = set(Patient.SENSITIVE_FIELDS)


def masked(value: Any) -> Any:
    if value in ("", None):
        return value
    text = str(value)
    half = len(text) // 2
    return "*" * half + text[half:]


def json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def conflict_message() -> str:
    return _("The identifiers of this patient belong to different patients in the archive.")


def row_error(row: PatientRow, location: str, message: str) -> dict:
    return {"line": row.line, "location": location, "message": message}


def matched_conflict(row: PatientRow, patient: Patient, by_national_id: dict[str, int]) -> dict | None:
    national_id = row.values["national_id"]
    if national_id and by_national_id.get(national_id, patient.pk) != patient.pk:
        return row_error(row, "Patient.identifier", national_id_taken_message())
    if not national_id and len(patient.national_id) == 18:
        mismatch = validate_national_id_matches(
            patient.national_id, birth_date=row.values["birth_date"], sex=row.values["sex"] or None
        )
        if "birth_date" in mismatch:
            return row_error(row, "Patient.birthDate", birth_mismatch_message())
        if "sex" in mismatch:
            return row_error(row, "Patient.gender", sex_mismatch_message())
    return None


def national_id_taken_message() -> str:
    return _("This national ID number belongs to another patient than the one the identifiers name.")


def birth_mismatch_message() -> str:
    return _("The birth date does not match the national ID number on record.")


def sex_mismatch_message() -> str:
    return _("The sex does not match the national ID number on record.")


def creation_values(row: PatientRow) -> dict[str, Any]:
    values = {name: value for name, value in row.values.items() if value not in ("", None)}
    values.setdefault("sex", "unknown")
    values.setdefault("is_deceased", False)
    return values


def audit_entry(patient: Patient, action: int, changes, job: BulkImport, row: PatientRow, actor) -> AuditEntry:
    return AuditEntry(
        content_type=ContentType.objects.get_for_model(Patient),
        object_pk=str(patient.pk),
        object_id=patient.pk,
        object_repr=str(patient),
        action=action,
        event=AuditEntry.Event.CREATE if action == AuditEntry.Action.CREATE else AuditEntry.Event.UPDATE,
        changes=changes,
        actor=actor,
        patient_uuid=patient.uuid,
        client="fhir_import",
        additional_data=audit_details(job, row.lines),
    )


def candidates_orm(new_ids: list[int]) -> int:
    if not new_ids:
        return 0
    raised = 0
    for patient in Patient.objects.filter(pk__in=new_ids).exclude(birth_date=None):
        phones = [phone for phone in (patient.mobile, patient.phone) if phone]
        if not phones:
            continue
        others = (
            Patient.objects.filter(name=patient.name, birth_date=patient.birth_date, merged_into__isnull=True)
            .filter(Q(mobile__in=phones) | Q(phone__in=phones))
            .exclude(pk=patient.pk)
            .values_list("pk", flat=True)
        )
        for other in others:
            low, high = sorted((patient.pk, other))
            _candidate, created = MatchCandidate.objects.get_or_create(
                patient_a_id=low,
                patient_b_id=high,
                defaults={
                    "reason": MatchCandidate.Reason.SAME_NAME_BIRTH_PHONE,
                    "score": CANDIDATE_SCORE,
                    "source": "fhir_import",
                },
            )
            raised += created
    return raised


CANDIDATE_SCORE = 90
