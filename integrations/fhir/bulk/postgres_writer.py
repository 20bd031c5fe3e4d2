"""Bulk import on PostgreSQL: COPY into staging tables, then set-based statements."""

# SQL here names tables from model metadata and staging tables of this module; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import csv
import io
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models

from hcrm.models import AuditEntry
from hcrm.services import counter_next
from integrations.fhir.bulk.batch import (
    CANDIDATE_SCORE,
    MASKED_FIELDS,
    BatchOutcome,
    IdentityRace,
    birth_mismatch_message,
    conflict_message,
    national_id_taken_message,
    row_error,
    sex_mismatch_message,
)
from integrations.fhir.bulk.mapping import (
    BOOLEAN_FIELDS,
    DATE_FIELDS,
    MAPPED_FIELDS,
    PINYIN_FIELDS,
    TEXT_FIELDS,
    PatientRow,
)
from integrations.models import BulkImport
from patients.models import MatchCandidate, Patient, PatientIdentifier

_NULL = r"\N"
_STAGE = "fhir_bulk_patient_stage"
_STAGE_IDENTIFIERS = "fhir_bulk_identifier_stage"
# The staging columns the set-based statements join or filter on: the planner needs their statistics
# (how many rows found a patient, say). The copied values (names, addresses, ...) need none, and
# sampling their statistics was most of what ANALYZE cost.
_STAGE_KEYS = "seq, national_id, patient_id, holders, superseded, mrn, error"


class PostgresWriter:
    """COPY into temporary staging tables, then set-based statements: match, update, insert, audit."""

    def __init__(self) -> None:
        quote = connection.ops.quote_name
        self.patient_table = quote(Patient._meta.db_table)
        self.identifier_table = quote(PatientIdentifier._meta.db_table)
        self.audit_table = quote(AuditEntry._meta.db_table)
        self.candidate_table = quote(MatchCandidate._meta.db_table)
        self.content_type_id = ContentType.objects.get_for_model(Patient).pk

    def _create_stage(self, cursor) -> None:
        columns = ", ".join(
            [f"{name} text NOT NULL" for name in TEXT_FIELDS]
            + [f"{name} date" for name in DATE_FIELDS]
            + [f"{name} boolean" for name in BOOLEAN_FIELDS]
        )
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (seq integer PRIMARY KEY, line bigint NOT NULL, {columns}, "
            "patient_id bigint, holders integer NOT NULL DEFAULT 0, superseded boolean NOT NULL DEFAULT false, "
            "mrn text, error_location text, error text) ON COMMIT DELETE ROWS"
        )
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE_IDENTIFIERS} (seq integer NOT NULL, kind text NOT NULL, "
            "assigner text NOT NULL, value text NOT NULL) ON COMMIT DELETE ROWS"
        )

    def _copy(self, cursor, rows: list[PatientRow]) -> None:
        patients, identifiers = io.StringIO(), io.StringIO()
        patient_csv = csv.writer(patients, lineterminator="\n")
        identifier_csv = csv.writer(identifiers, lineterminator="\n")
        texts, others = itemgetter(*TEXT_FIELDS), itemgetter(*DATE_FIELDS, *BOOLEAN_FIELDS)
        for seq, row in enumerate(rows):
            values = row.values
            patient_csv.writerow(
                (seq, row.line, *texts(values), *(_NULL if value is None else value for value in others(values)))
            )
            identifier_csv.writerows((seq, *identifier) for identifier in row.identifiers)
        columns = ", ".join(("seq", "line", *MAPPED_FIELDS))
        options = f"WITH (FORMAT csv, NULL '{_NULL}')"
        patients.seek(0)
        cursor.copy_expert(f"COPY {_STAGE} ({columns}) FROM STDIN {options}", patients)
        identifiers.seek(0)
        cursor.copy_expert(f"COPY {_STAGE_IDENTIFIERS} (seq, kind, assigner, value) FROM STDIN {options}", identifiers)

    def apply(self, rows: list[PatientRow], *, job: BulkImport, actor) -> BatchOutcome:
        outcome = BatchOutcome()
        if not rows:
            return outcome
        with connection.cursor() as cursor:
            self._create_stage(cursor)
            cursor.execute(f"TRUNCATE {_STAGE}, {_STAGE_IDENTIFIERS}")
            self._copy(cursor, rows)
            cursor.execute(f"ANALYZE {_STAGE} ({_STAGE_KEYS}), {_STAGE_IDENTIFIERS}")
            self._match(cursor)
            cursor.execute(f"ANALYZE {_STAGE} ({_STAGE_KEYS})")
            cursor.execute(f"SELECT seq, error_location, error FROM {_STAGE} WHERE error IS NOT NULL ORDER BY seq")
            outcome.errors = [row_error(rows[seq], location, message) for seq, location, message in cursor.fetchall()]
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE patient_id IS NULL), count(*) FILTER (WHERE patient_id IS NOT NULL) "
                f"FROM {_STAGE} WHERE error IS NULL"
            )
            new, matched = cursor.fetchone()
            # A batch of new patients only skips comparing them with the archive (a join over the patient table).
            outcome.updated = self._update(cursor, job, actor) if matched else 0
            outcome.unchanged = matched - outcome.updated
            if new:
                outcome.created = self._insert(cursor, new, job, actor)
            self._identifiers(cursor)
            outcome.candidates = self._candidates(cursor)
        return outcome

    def _match(self, cursor) -> None:
        patients = self.patient_table
        cursor.execute(
            f"UPDATE {_STAGE} s SET patient_id = m.patient_id, holders = m.holders FROM ("
            f"  SELECT si.seq, min(COALESCE(p.merged_into_id, p.id)) AS patient_id, "
            f"         count(DISTINCT COALESCE(p.merged_into_id, p.id)) AS holders "
            f"  FROM {_STAGE_IDENTIFIERS} si "
            f"  JOIN {self.identifier_table} pi ON pi.kind = si.kind AND pi.assigner = si.assigner AND pi.value = si.value "
            f"  JOIN {patients} p ON p.id = pi.patient_id GROUP BY si.seq) m "
            f"WHERE s.seq = m.seq"
        )
        cursor.execute(
            f"UPDATE {_STAGE} SET error_location = 'Patient.identifier', error = %s WHERE holders > 1",
            [conflict_message()],
        )
        cursor.execute(f"ANALYZE {_STAGE} ({_STAGE_KEYS})")  # the planner must know how many rows found their patient
        cursor.execute(
            f"UPDATE {_STAGE} s SET patient_id = p.id FROM {patients} p WHERE s.patient_id IS NULL "
            f"AND s.error IS NULL AND s.national_id <> '' AND p.national_id = s.national_id AND p.merged_into_id IS NULL"
        )
        cursor.execute(
            f"UPDATE {_STAGE} s SET error_location = 'Patient.identifier', error = %s FROM {patients} p "
            f"WHERE s.error IS NULL AND s.patient_id IS NOT NULL AND s.national_id <> '' AND p.national_id <> '' "
            f"AND p.national_id = s.national_id AND p.merged_into_id IS NULL AND p.id <> s.patient_id",
            [national_id_taken_message()],
        )
        on_record = f"FROM {patients} p WHERE s.patient_id = p.id AND s.error IS NULL AND s.national_id = '' AND length(p.national_id) = 18 AND p.national_id ~ '^[0-9]{{17}}[0-9X]$'"
        cursor.execute(
            f"UPDATE {_STAGE} s SET error_location = 'Patient.birthDate', error = %s {on_record} "
            f"AND s.birth_date IS NOT NULL AND substr(p.national_id, 7, 8) <> to_char(s.birth_date, 'YYYYMMDD')",
            [birth_mismatch_message()],
        )
        cursor.execute(
            f"UPDATE {_STAGE} s SET error_location = 'Patient.gender', error = %s {on_record} "
            f"AND s.sex IN ('male', 'female') AND (substr(p.national_id, 17, 1)::int %% 2 = 1) <> (s.sex = 'male')",
            [sex_mismatch_message()],
        )
        cursor.execute(
            f"UPDATE {_STAGE} s SET superseded = true FROM (SELECT seq, row_number() OVER "
            f"(PARTITION BY patient_id ORDER BY seq DESC) AS later FROM {_STAGE} "
            f"WHERE error IS NULL AND patient_id IS NOT NULL) r WHERE r.seq = s.seq AND r.later > 1"
        )

    def _update(self, cursor, job: BulkImport, actor) -> int:
        assignments, differs, changes = [], [], []
        for name in MAPPED_FIELDS:
            sent = f"NULLIF(s.{name}, '')" if name in TEXT_FIELDS else f"s.{name}"
            assignments.append(f"{name} = COALESCE({sent}, p.{name})")
            if name in PINYIN_FIELDS:
                continue
            differs.append(f"COALESCE({sent}, old.{name}) IS DISTINCT FROM old.{name}")
            old, new = f"old.{name}", f"p.{name}"
            if name in MASKED_FIELDS:
                old, new = (f"repeat('*', length({v}) / 2) || substr({v}, length({v}) / 2 + 1)" for v in (old, new))
            changes.append(
                f"'{name}', CASE WHEN old.{name} IS DISTINCT FROM p.{name} THEN jsonb_build_array({old}, {new}) END"
            )
        # jsonb_build_object takes at most 100 arguments; the mapped fields need fewer.
        cursor.execute(
            f"WITH changed AS ("
            f"  UPDATE {self.patient_table} p SET {', '.join(assignments)}, updated_at = statement_timestamp() "
            f"  FROM {_STAGE} s, {self.patient_table} old "
            f"  WHERE s.patient_id = p.id AND old.id = p.id AND s.error IS NULL AND NOT s.superseded "
            f"  AND ({' OR '.join(differs)}) "
            f"  RETURNING p.id, p.uuid, p.name, p.mrn, s.line, jsonb_strip_nulls(jsonb_build_object({', '.join(changes)})) AS changes"
            f") " + self._audit_insert("changed", AuditEntry.Action.UPDATE, "changed.changes"),
            self._audit_params(job, actor),
        )
        return cursor.rowcount

    def _audit_insert(self, source: str, action: int, changes: str) -> str:
        event = "create" if action == AuditEntry.Action.CREATE else "update"
        return (
            f"INSERT INTO {self.audit_table} (content_type_id, object_pk, object_id, object_repr, action, "
            f"changes_text, changes, actor_id, timestamp, additional_data, event, patient_uuid, reason, user_agent, client) "
            f"SELECT %(content_type)s, {source}.id::text, {source}.id, {source}.name || ' (' || {source}.mrn || ')', "
            f"{int(action)}, '', {changes}, %(actor)s, statement_timestamp(), "
            f"jsonb_build_object('bulk_import', %(job)s::text, 'line', {source}.line), '{event}', {source}.uuid, '', '', 'fhir_import' "
            f"FROM {source}"
        )

    def _audit_params(self, job: BulkImport, actor) -> dict:
        return {"content_type": self.content_type_id, "actor": getattr(actor, "pk", None), "job": str(job.uuid)}

    def _insert(self, cursor, count: int, job: BulkImport, actor) -> int:
        last = counter_next(name="mrn", count=count)
        cursor.execute(
            f"UPDATE {_STAGE} s SET mrn = %(prefix)s || CASE WHEN n < 100000000 THEN lpad(n::text, 8, '0') ELSE n::text END "
            f"FROM (SELECT seq, %(first)s + row_number() OVER (ORDER BY seq) - 1 AS n FROM {_STAGE} "
            f"      WHERE patient_id IS NULL AND error IS NULL) r WHERE r.seq = s.seq",
            {"prefix": settings.MRN_PREFIX, "first": last - count + 1},
        )
        explicit = {
            "uuid": "gen_random_uuid()",
            "created_at": "statement_timestamp()",
            "updated_at": "statement_timestamp()",
            "mrn": "s.mrn",
            "source": "'fhir_import'",
            "sex": "COALESCE(NULLIF(s.sex, ''), 'unknown')",
            "is_deceased": "COALESCE(s.is_deceased, false)",
        }
        columns, expressions, params = [], [], {}
        for model_field in Patient._meta.concrete_fields:
            if model_field.primary_key:
                continue
            columns.append(connection.ops.quote_name(model_field.column))
            if model_field.name in explicit:
                expressions.append(explicit[model_field.name])
            elif model_field.name in MAPPED_FIELDS:
                expressions.append(f"s.{model_field.name}")
            else:
                params[model_field.name] = model_field.get_db_prep_save(_field_default(model_field), connection)
                expressions.append(f"%({model_field.name})s")
        cursor.execute(
            f"WITH inserted AS ("
            f"  INSERT INTO {self.patient_table} ({', '.join(columns)}) "
            f"  SELECT {', '.join(expressions)} FROM {_STAGE} s WHERE s.mrn IS NOT NULL ORDER BY s.seq "
            f"  RETURNING id, uuid, name, mrn"
            f"), created AS (SELECT i.*, s.line FROM inserted i JOIN {_STAGE} s ON s.mrn = i.mrn) "
            + self._audit_insert("created", AuditEntry.Action.CREATE, "NULL"),
            params | self._audit_params(job, actor),
        )
        created = cursor.rowcount
        cursor.execute(
            f"UPDATE {_STAGE} s SET patient_id = p.id FROM {self.patient_table} p WHERE s.mrn IS NOT NULL AND p.mrn = s.mrn"
        )
        return created

    def _identifiers(self, cursor) -> None:
        cursor.execute(
            f"INSERT INTO {self.identifier_table} (uuid, created_at, updated_at, patient_id, kind, assigner, value) "
            f"SELECT gen_random_uuid(), statement_timestamp(), statement_timestamp(), s.patient_id, si.kind, si.assigner, si.value "
            f"FROM {_STAGE_IDENTIFIERS} si JOIN {_STAGE} s ON s.seq = si.seq "
            f"WHERE s.error IS NULL "
            f"ON CONFLICT (kind, assigner, value) DO NOTHING"
        )
        # ON CONFLICT skips the identifiers already on record: those the batch's patients were matched by, and
        # any another writer committed meanwhile, whose patient is not ours. The check below tells them apart.
        # (It skips them by the unique index; an anti-join against the whole identifier table cost more.)
        cursor.execute(
            f"SELECT count(*) FROM {_STAGE_IDENTIFIERS} si JOIN {_STAGE} s ON s.seq = si.seq "
            f"JOIN {self.identifier_table} pi ON pi.kind = si.kind AND pi.assigner = si.assigner AND pi.value = si.value "
            f"JOIN {self.patient_table} p ON p.id = pi.patient_id "
            f"WHERE s.error IS NULL AND COALESCE(p.merged_into_id, p.id) <> s.patient_id"
        )
        if cursor.fetchone()[0]:
            raise IdentityRace()

    def _candidates(self, cursor) -> int:
        cursor.execute(
            f"INSERT INTO {self.candidate_table} (uuid, created_at, updated_at, patient_a_id, patient_b_id, reason, "
            f"score, details, source, status) "
            f"SELECT DISTINCT ON (LEAST(n.id, o.id), GREATEST(n.id, o.id)) gen_random_uuid(), statement_timestamp(), statement_timestamp(), "
            f"LEAST(n.id, o.id), GREATEST(n.id, o.id), %(reason)s, %(score)s, '{{}}'::jsonb, 'fhir_import', 'open' "
            f"FROM {_STAGE} s JOIN {self.patient_table} n ON n.id = s.patient_id "
            # Patients sharing a phone (a number the new one has, as mobile or phone), found through the phone
            # indexes; OFFSET 0 keeps the name and birth-date conditions out of that look-up. Statistics not yet
            # counting this batch led the planner to read every patient born on the same day for each new one
            # instead, and one day can have thousands.
            f"JOIN LATERAL (SELECT x.id, x.name, x.birth_date, x.merged_into_id FROM {self.patient_table} x "
            f"  WHERE x.mobile = ANY(array_remove(ARRAY[n.mobile, n.phone], '')) "
            f"  OR x.phone = ANY(array_remove(ARRAY[n.mobile, n.phone], '')) OFFSET 0) o "
            f"ON o.name = n.name AND o.birth_date = n.birth_date AND o.id <> n.id AND o.merged_into_id IS NULL "
            f"WHERE s.mrn IS NOT NULL AND s.error IS NULL AND n.birth_date IS NOT NULL "
            f"ON CONFLICT DO NOTHING",
            {"reason": MatchCandidate.Reason.SAME_NAME_BIRTH_PHONE.value, "score": CANDIDATE_SCORE},
        )
        return cursor.rowcount


def _field_default(model_field: models.Field) -> Any:
    if model_field.has_default():
        return model_field.get_default()
    return None if model_field.null else ""
