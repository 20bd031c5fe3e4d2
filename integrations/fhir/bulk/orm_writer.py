"""Bulk import on databases without COPY: the identity rules as batched ORM queries."""

from __future__ import annotations

from django.utils import timezone

from hcrm.models import AuditEntry
from integrations.fhir.bulk.batch import (
    MASKED_FIELDS,
    BatchOutcome,
    IdentityRace,
    audit_entry,
    candidates_orm,
    conflict_message,
    creation_values,
    json_value,
    masked,
    matched_conflict,
    mrn_block,
    row_error,
)
from integrations.fhir.bulk.mapping import MAPPED_FIELDS, PINYIN_FIELDS, PatientRow
from integrations.models import BulkImport
from patients.models import Patient, PatientIdentifier


class OrmWriter:
    """Batched ORM queries applying the identity rules; used where PostgreSQL's COPY is not available."""

    def apply(self, rows: list[PatientRow], *, job: BulkImport, actor) -> BatchOutcome:
        outcome = BatchOutcome()
        if not rows:
            return outcome
        holders = self._identifier_holders(rows)
        by_national_id = dict(
            Patient.objects.filter(
                national_id__in={row.values["national_id"] for row in rows if row.values["national_id"]},
                merged_into__isnull=True,
            ).values_list("national_id", "id")
        )
        target: dict[int, int | None] = {}
        for index, row in enumerate(rows):
            found = {holders[i] for i in row.identifiers if i in holders}
            if len(found) > 1:
                outcome.errors.append(row_error(row, "Patient.identifier", conflict_message()))
                continue
            patient_id = next(iter(found), None) or by_national_id.get(row.values["national_id"])
            target[index] = patient_id
        patients = Patient.objects.in_bulk({pid for pid in target.values() if pid})
        for index, patient_id in list(target.items()):
            problem = patient_id and matched_conflict(rows[index], patients[patient_id], by_national_id)
            if problem:
                outcome.errors.append(problem)
                del target[index]
        last_for_patient = {pid: index for index, pid in target.items() if pid}
        changed_patients, audits, new_rows = [], [], []
        now = timezone.now()
        for index, patient_id in target.items():
            row = rows[index]
            if patient_id is None:
                new_rows.append(row)
                continue
            patient = patients[patient_id]
            if last_for_patient[patient_id] != index:
                outcome.unchanged += 1  # a later line of this batch states this patient
                continue
            changes = {}
            for name in MAPPED_FIELDS:
                value = row.values[name]
                if value in ("", None) or getattr(patient, name) == value:
                    continue
                if name in PINYIN_FIELDS:
                    setattr(patient, name, value)
                    continue
                old = getattr(patient, name)
                changes[name] = (
                    [masked(old), masked(value)] if name in MASKED_FIELDS else [json_value(old), json_value(value)]
                )
                setattr(patient, name, value)
            if changes:
                patient.updated_at = now
                changed_patients.append(patient)
                audits.append(audit_entry(patient, AuditEntry.Action.UPDATE, changes, job, row, actor))
            else:
                outcome.unchanged += 1
        if changed_patients:
            Patient.objects.bulk_update(changed_patients, [*MAPPED_FIELDS, "updated_at"])
        outcome.updated = len(changed_patients)
        created = []
        if new_rows:
            for row, mrn in zip(new_rows, mrn_block(len(new_rows)), strict=True):
                patient = Patient(mrn=mrn, source="fhir_import", **creation_values(row))
                created.append((row, patient))
            Patient.objects.bulk_create([patient for _row, patient in created])
            audits.extend(
                audit_entry(patient, AuditEntry.Action.CREATE, None, job, row, actor) for row, patient in created
            )
        outcome.created = len(created)
        wanted = []
        for index, patient_id in list(target.items()):
            row = rows[index]
            owner = patient_id or next(p.pk for r, p in created if r is row)
            wanted.extend(
                PatientIdentifier(patient_id=owner, kind=kind, assigner=assigner, value=value)
                for kind, assigner, value in row.identifiers
            )
        PatientIdentifier.objects.bulk_create(wanted, ignore_conflicts=True)
        after = self._identifier_holders(rows)
        if any(after.get((i.kind, i.assigner, i.value)) != i.patient_id for i in wanted):
            raise IdentityRace()
        AuditEntry.objects.bulk_create(audits)
        outcome.candidates = candidates_orm([patient.pk for _row, patient in created])
        return outcome

    def _identifier_holders(self, rows: list[PatientRow]) -> dict[tuple[str, str, str], int]:
        values = {value for row in rows for _kind, _assigner, value in row.identifiers}
        holders = {}
        for start in range(0, len(values), 500):
            part = list(values)[start : start + 500]
            for kind, assigner, value, patient_id, merged_into in PatientIdentifier.objects.filter(
                value__in=part
            ).values_list("kind", "assigner", "value", "patient_id", "patient__merged_into_id"):
                holders[(kind, assigner, value)] = merged_into or patient_id
        return holders
