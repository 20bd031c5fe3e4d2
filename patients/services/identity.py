"""One identity per patient: every way in (HL7, FHIR, spreadsheet, manual entry) matches here."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from auditlog.context import auditlog_disabled
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.rows import (
    row_insert,
    row_update,
    row_update_statement,
    rows_load,
    rows_load_joined,
    statement_run,
    value_for_database,
)
from patients.models import (
    BreakGlassGrant,
    Consent,
    IdentifierKind,
    MatchCandidate,
    MatchReason,
    MatchStatus,
    Patient,
    PatientIdentifier,
    PatientMerge,
    PatientSource,
    PatientStats,
    Sex,
)
from patients.pinyin import name_search_keys
from patients.validators import (
    national_id_birth_date,
    national_id_sex,
    normalize_mobile,
    normalize_national_id,
    normalize_phone,
    validate_national_id,
    validate_not_future,
)


@dataclass(frozen=True)
class IdentifierInput:
    kind: str  # an IdentifierKind value
    value: str
    assigner: str = ""


@dataclass
class PatientDemographics:
    """What a sender says about a patient; empty strings and None mean "not sent"."""

    name: str = ""
    sex: str = ""
    birth_date: date | None = None
    national_id: str = ""
    mrn: str = ""
    mobile: str = ""
    phone: str = ""
    email: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    address_detail: str = ""
    postal_code: str = ""
    ethnicity: str = ""
    marital_status: str = ""
    occupation: str = ""
    employer: str = ""
    preferred_language: str = ""
    is_deceased: bool | None = None
    deceased_date: date | None = None
    identifiers: list[IdentifierInput] = field(default_factory=list)
    # Fields the sender explicitly cleared (HL7 `""`), to be emptied on the matched patient.
    cleared: frozenset[str] = frozenset()


@dataclass
class MatchOutcome:
    patient: Patient
    created: bool
    matched_by: str  # "identifier", "national_id", "mrn" or "new"
    candidates: list = field(default_factory=list)  # MatchCandidate rows raised for review
    # Values that were sent but not stored, by field, with the reason (an invalid phone, a bad ID number).
    skipped: dict[str, str] = field(default_factory=dict)
    # Writes left to the caller (see `patient_match_or_create`'s `deferred`): (SQL, params) each.
    pending: list[tuple[str, list]] = field(default_factory=list)


# --- Cleaning what a sender says (pure) -------------------------------------------------------

DEMOGRAPHIC_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "national_id",
    "mobile",
    "phone",
    "email",
    "province",
    "city",
    "district",
    "address_detail",
    "postal_code",
    "ethnicity",
    "marital_status",
    "occupation",
    "employer",
    "preferred_language",
    "is_deceased",
    "deceased_date",
)
# What a cleared field becomes; the name cannot be cleared, every patient has one.
CLEARED_VALUES: dict[str, Any] = {
    **{name: "" for name in DEMOGRAPHIC_FIELDS if name != "name"},
    "sex": Sex.UNKNOWN,
    "birth_date": None,
    "deceased_date": None,
    "is_deceased": False,
    "preferred_language": Patient._meta.get_field("preferred_language").default,
}
# A change here can make a new likely duplicate (a phone only adds weight to a same-name pair already raised).
IDENTITY_FIELDS = frozenset({"name", "birth_date"})

# The choices' values, once (an enum's `.values` builds its list at each use).
IDENTIFIER_KINDS = frozenset(IdentifierKind.values)
PATIENT_SOURCES = frozenset(PatientSource.values)
SOURCE_ALIASES = {
    "hl7": PatientSource.HIS_IMPORT,
    "hl7v2": PatientSource.HIS_IMPORT,
    "his": PatientSource.HIS_IMPORT,
    "fhir": PatientSource.FHIR_IMPORT,
    "csv": PatientSource.SPREADSHEET,
    "xlsx": PatientSource.SPREADSHEET,
    "manual": PatientSource.WALK_IN,
}


@dataclass
class CleanDemographics:
    values: dict[str, Any]
    cleared: dict[str, Any]
    identifiers: list[IdentifierInput]
    mrn: str
    skipped: dict[str, str]


def _field_clean(name: str, value: Any) -> Any:
    if name == "mobile":
        return normalize_mobile(value)
    if name == "phone":
        return normalize_phone(value)
    if name in ("birth_date", "deceased_date"):
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ValidationError(_("Enter a date as YYYY-MM-DD."), code="invalid") from None
        validate_not_future(value)
        return value
    if name == "is_deceased":
        return bool(value)
    return Patient._meta.get_field(name).clean(value, None)


def demographics_clean(demographics: PatientDemographics) -> CleanDemographics:
    """Normalise what was sent; a value that cannot be stored is left out and named in `skipped`."""
    values: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in DEMOGRAPHIC_FIELDS:
        value = getattr(demographics, name)
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None):
            continue
        if name == "national_id":
            value = normalize_national_id(value)
            try:
                validate_national_id(value)
            except ValidationError as error:
                skipped[name] = error.messages[0]
                continue
            values[name] = value
            continue
        try:
            values[name] = _field_clean(name, value)
        except ValidationError as error:
            if name == "mobile":
                # A foreign mobile is still a phone number.
                try:
                    phone = normalize_phone(value)
                except ValidationError:
                    pass
                else:
                    values.setdefault("phone", phone)
                    continue
            skipped[name] = error.messages[0]
    national_id = values.get("national_id")
    if national_id:
        # A checked ID number is stronger evidence than a typed date or sex.
        for name, implied in (
            ("birth_date", national_id_birth_date(national_id)),
            ("sex", national_id_sex(national_id)),
        ):
            sent = values.get(name)
            if sent in (None, "", Sex.UNKNOWN):
                values[name] = implied
            elif sent != implied and sent != Sex.OTHER:
                skipped[name] = _("It does not match the national ID number.")
                values[name] = implied
    if values.get("deceased_date"):
        values["is_deceased"] = True
    if values.get("birth_date") and values.get("deceased_date") and values["deceased_date"] < values["birth_date"]:
        skipped["deceased_date"] = _("The date of death is before the birth date.")
        del values["deceased_date"]
    cleared = {name: CLEARED_VALUES[name] for name in demographics.cleared if name in CLEARED_VALUES}
    for name in cleared:
        values.pop(name, None)
    if "is_deceased" in cleared:
        cleared["deceased_date"] = None
    identifiers: list[IdentifierInput] = []
    seen: set[tuple[str, str, str]] = set()
    for identifier in demographics.identifiers:
        value, assigner = (identifier.value or "").strip(), (identifier.assigner or "").strip()
        key = (identifier.kind, assigner, value)
        if not value or key in seen:
            continue
        if identifier.kind not in IDENTIFIER_KINDS:
            skipped[f"identifiers.{identifier.kind}"] = _("Unknown identifier kind.")
            continue
        if len(value) > 64 or len(assigner) > 64:
            skipped[f"identifiers.{identifier.kind}"] = _("Identifiers and assigners have at most 64 characters.")
            continue
        seen.add(key)
        identifiers.append(IdentifierInput(kind=identifier.kind, value=value, assigner=assigner))
    mrn = (demographics.mrn or "").strip()
    if len(mrn) > Patient._meta.get_field("mrn").max_length:
        skipped["mrn"] = _("The MRN is too long.")
        mrn = ""
    return CleanDemographics(values=values, cleared=cleared, identifiers=identifiers, mrn=mrn, skipped=skipped)


# --- Likely duplicates (pure) -------------------------------------------------------------------


def within_one_edit(first: str, second: str) -> bool:
    """Whether one insertion, deletion or substitution turns `first` into `second` (or they are equal)."""
    if abs(len(first) - len(second)) > 1:
        return False
    if len(first) > len(second):
        first, second = second, first
    index = 0
    while index < len(first) and first[index] == second[index]:
        index += 1
    if len(first) == len(second):
        return first[index + 1 :] == second[index + 1 :]
    return first[index:] == second[index + 1 :]


def _name_parts(name: str) -> list[str]:
    words = name.lower().split()
    return sorted(words) if len(words) > 1 else sorted(name.replace(" ", ""))


def match_reason(first: tuple[str, str, set[str]], second: tuple[str, str, set[str]]) -> tuple[str, int] | None:
    """Why two people born on the same day may be one: (reason, score), or None.

    Each side is (name, full pinyin, normalised phones).
    """
    first_name, first_pinyin, first_phones = first
    second_name, second_pinyin, second_phones = second
    if first_name == second_name:
        if first_phones & second_phones:
            return MatchReason.SAME_NAME_BIRTH_PHONE, 95
        return MatchReason.SAME_NAME_BIRTH, 85
    if first_pinyin and first_pinyin == second_pinyin:
        return MatchReason.SAME_PINYIN, 80
    if len(first_name) > 1 and _name_parts(first_name) == _name_parts(second_name):
        return MatchReason.SWAPPED_CHARACTERS, 70
    if first_pinyin and second_pinyin and within_one_edit(first_pinyin, second_pinyin):
        return MatchReason.CLOSE_PINYIN, 65
    return None


def _phones(patient) -> set[str]:
    return {phone for phone in (patient.mobile, patient.phone) if phone}


# Birth dates used as placeholders ("1900-01-01") are shared by thousands: then only exact matches are compared.
SAME_BIRTH_DATE_LIMIT = 500


def _pair(first: Patient, second: Patient) -> tuple[Patient, Patient]:
    return (first, second) if first.pk < second.pk else (second, first)


def _same_day_matches(
    patient: Patient, mine: tuple[str, str, set[str]], same_day: list | None = None
) -> list[tuple[int, tuple[str, int]]]:
    """Active patients born the same day who may be `patient`: (id, (reason, score)), compared as plain rows.

    `same_day`, when given, are those patients' rows as the statement that registered `patient` read them.
    """
    if same_day is not None:
        rows = same_day
    else:
        quote = connection.ops.quote_name
        table = quote(Patient._meta.db_table)
        with connection.cursor() as cursor:
            # Asked for every new patient: prepared once per connection.
            statement_run(
                cursor,
                f"SELECT id, name, name_pinyin, mobile, phone FROM {table} "  # noqa: S608 (model metadata)
                "WHERE birth_date = %s AND merged_into_id IS NULL AND id <> %s LIMIT %s",
                [patient.birth_date, patient.pk, SAME_BIRTH_DATE_LIMIT + 1],
            )
            rows = cursor.fetchall()
    if len(rows) > SAME_BIRTH_DATE_LIMIT:
        # A placeholder birth date shared by thousands: only those close by name or phone are compared.
        same_day = Patient.objects.filter(birth_date=patient.birth_date, merged_into__isnull=True).exclude(
            pk=patient.pk
        )
        close = Q(name=patient.name) | Q(name_pinyin=patient.name_pinyin)
        phones = _phones(patient)
        if phones:
            close |= Q(mobile__in=phones) | Q(phone__in=phones)
        rows = list(
            same_day.filter(close).values_list("id", "name", "name_pinyin", "mobile", "phone")[:SAME_BIRTH_DATE_LIMIT]
        )
    matches = []
    for other_pk, name, pinyin, mobile, phone in rows:
        reason = match_reason(mine, (name, pinyin, {number for number in (mobile, phone) if number}))
        if reason is not None:
            matches.append((other_pk, reason))
    return matches


def _candidates_raise(
    patient: Patient, *, source: str, conflicts: list[tuple[Patient, dict]] = (), same_day: list | None = None
) -> list[MatchCandidate]:
    """Raise review candidates for `patient`: likely duplicates born the same day, and identifier conflicts.

    `same_day`: the rows `_same_day_matches` would read, when they were read already."""
    found: dict[int, tuple[Patient, str, int, dict]] = {}
    for other, details in conflicts:
        if other.pk != patient.pk and other.merged_into_id is None:
            found[other.pk] = (other, MatchReason.IDENTIFIER_CONFLICT, 100, details)
    if patient.birth_date and patient.name:
        mine = (patient.name, patient.name_pinyin, _phones(patient))
        close: list[int] = []
        for other_pk, reason in _same_day_matches(patient, mine, same_day):
            if other_pk not in found:
                close.append(other_pk)
                found[other_pk] = (None, reason[0], reason[1], {})
        if close:
            for other in rows_load(Patient, f"t.id IN ({', '.join(['%s'] * len(close))})", close):
                found[other.pk] = (other, *found[other.pk][1:])
            # Gone since they were compared (deleted meanwhile): nothing to review.
            found = {pk: entry for pk, entry in found.items() if entry[0] is not None}
    if not found:
        return []
    pairs = Q(pk__in=[])
    for other_pk in found:
        low, high = sorted((patient.pk, other_pk))
        pairs |= Q(patient_a_id=low, patient_b_id=high)
    existing = set(MatchCandidate.objects.filter(pairs).values_list("patient_a_id", "patient_b_id"))
    raised = []
    for other, reason, score, details in found.values():
        first, second = _pair(patient, other)
        if (first.pk, second.pk) in existing:
            continue
        candidate = MatchCandidate(
            patient_a=first, patient_b=second, reason=reason, score=score, details=details, source=source[:120]
        )
        try:
            with transaction.atomic():
                candidate.save()
        except IntegrityError:
            continue  # raised by a concurrent writer a moment ago
        raised.append(candidate)
    return raised


def candidates_for_patient(*, patient: Patient, source: str = "manual") -> list[MatchCandidate]:
    """Raise review candidates for a patient registered or changed outside the matching service."""
    return _candidates_raise(patient, source=source)


# --- Matching ---------------------------------------------------------------------------------


class _Retry(Exception):
    """A concurrent writer took a unique value first; match again."""


class _Refused(Exception):
    """Nothing can be written; raised before any write so the caller's transaction stays usable."""

    def __init__(self, error: ValidationError) -> None:
        self.error = error


def _survivor(patient: Patient) -> Patient:
    hops = 0
    while patient.merged_into_id is not None and hops < 10:
        patient = patient.merged_into
        hops += 1
    return patient


def _patient_source(source: str) -> str:
    if source in PATIENT_SOURCES:
        return source
    return SOURCE_ALIASES.get((source or "").lower(), PatientSource.OTHER)


@dataclass
class _Holders:
    """Who holds what was sent, loaded by one statement: identifiers, national ID and MRN."""

    by_identifier: dict[tuple[str, str, str], Patient]
    by_number: list[Patient]  # holders of the national ID or the MRN, by id


def _holders_load(clean: CleanDemographics) -> _Holders:
    """The patients holding the sent identifiers, national ID or MRN, with one statement (no queryset compiled)."""
    national_id, mrn = clean.values.get("national_id", ""), clean.mrn
    if not (clean.identifiers or national_id or mrn):
        return _Holders({}, [])
    quote = connection.ops.quote_name
    patients, identifiers = quote(Patient._meta.db_table), quote(PatientIdentifier._meta.db_table)
    matches = " OR ".join(["(i.kind = %s AND i.assigner = %s AND i.value = %s)"] * len(clean.identifiers))
    match_params = [part for item in clean.identifiers for part in (item.kind, item.assigner, item.value)]
    wanted, params = [], []
    if clean.identifiers:
        wanted.append(f"SELECT i.patient_id FROM {identifiers} i WHERE {matches}")  # noqa: S608 (model metadata)
        params += match_params
    # Merged patients keep their ID number: a few of them at most, then the active holder.
    for column, value in (("national_id", national_id), ("mrn", mrn)):
        if value:
            wanted.append(
                f"SELECT h.id FROM (SELECT p.id FROM {patients} p WHERE p.{column} = %s ORDER BY p.id LIMIT 20) h"  # noqa: S608
            )
            params.append(value)
    joined = f"LEFT JOIN {identifiers} i ON i.patient_id = t.id AND ({matches or 'FALSE'})"
    found = rows_load_joined(
        Patient,
        joined,
        ("i.kind", "i.assigner", "i.value"),
        f"t.id IN ({' UNION ALL '.join(wanted)}) ORDER BY t.id",
        [*match_params, *params],
    )
    holders = _Holders({}, [])
    for patient, (kind, assigner, value) in found:
        if kind is not None:
            holders.by_identifier[(kind, assigner, value)] = patient
        holds_number = (national_id and patient.national_id == national_id) or (mrn and patient.mrn == mrn)
        if holds_number and (not holders.by_number or holders.by_number[-1].pk != patient.pk):
            holders.by_number.append(patient)
    return holders


def _holders(
    clean: CleanDemographics, matched: Patient | None, loaded: _Holders
) -> tuple[Patient | None, Patient | None]:
    """Active holders of the sent national ID and MRN (`matched` when it holds them itself)."""
    national_id = clean.values.get("national_id", "")
    mrn = clean.mrn
    by_national_id = by_mrn = None
    if national_id:
        if matched is not None and matched.national_id == national_id:
            by_national_id = matched
        else:
            # An active holder first: merged patients keep their ID number but are no longer anyone's record.
            holders = [row for row in loaded.by_number if row.national_id == national_id]
            active = [row for row in holders if row.merged_into_id is None]
            by_national_id = active[0] if active else (_survivor(holders[0]) if holders else None)
    if mrn:
        if matched is not None and matched.mrn == mrn:
            by_mrn = matched
        else:
            holder = next((row for row in loaded.by_number if row.mrn == mrn), None)
            by_mrn = _survivor(holder) if holder else None
    return by_national_id, by_mrn


def _match_once(clean: CleanDemographics, *, source: str, origin: str, deferred: bool = False) -> MatchOutcome:
    """One matching pass; `source` is how the patient came in, `origin` the label kept on candidates."""
    matched: Patient | None = None
    matched_by = "new"
    conflicts: dict[int, tuple[Patient, dict]] = {}
    held: set[tuple[str, str, str]] = set()
    loaded = _holders_load(clean)
    if clean.identifiers:
        for identifier in clean.identifiers:
            holder = loaded.by_identifier.get((identifier.kind, identifier.assigner, identifier.value))
            if holder is None:
                continue
            held.add((identifier.kind, identifier.assigner, identifier.value))
            holder = _survivor(holder)
            if matched is None:
                matched, matched_by = holder, "identifier"
            elif holder.pk != matched.pk:
                conflicts.setdefault(
                    holder.pk, (holder, {"identifier": {"kind": identifier.kind, "assigner": identifier.assigner}})
                )
    by_national_id, by_mrn = _holders(clean, matched, loaded)
    values = dict(clean.values)
    for holder, how in ((by_national_id, "national_id"), (by_mrn, "mrn")):
        if holder is None:
            continue
        if matched is None:
            matched, matched_by = holder, how
        elif holder.pk != matched.pk:
            conflicts.setdefault(holder.pk, (holder, {how: True}))
            if how == "national_id":
                values.pop("national_id")  # it stays with the patient who holds it
    new_identifiers = [
        identifier
        for identifier in clean.identifiers
        if (identifier.kind, identifier.assigner, identifier.value) not in held
    ]
    if matched is None:
        patient, same_day = _patient_create(values, clean, new_identifiers, source=source)
        candidates = _candidates_raise(patient, source=origin, same_day=same_day)
        return MatchOutcome(patient=patient, created=True, matched_by="new", candidates=candidates)
    changed, pending = _patient_change(matched, values, clean.cleared, new_identifiers, deferred=deferred)
    candidates = []
    if conflicts or changed & IDENTITY_FIELDS:
        candidates = _candidates_raise(matched, source=origin, conflicts=list(conflicts.values()) if conflicts else [])
    return MatchOutcome(patient=matched, created=False, matched_by=matched_by, candidates=candidates, pending=pending)


def _set_name(patient: Patient, name: str) -> list[str]:
    patient.name = name
    patient.name_pinyin, patient.name_pinyin_initials, patient.name_pinyin_consonants = name_search_keys(name)
    return ["name", "name_pinyin", "name_pinyin_initials", "name_pinyin_consonants"]


def _patient_create(
    values: dict[str, Any], clean: CleanDemographics, identifiers: list[IdentifierInput], *, source: str
) -> tuple[Patient, list | None]:
    """The new patient, and the rows of those born the same day when the insert read them too (else None)."""
    from patients.services.archive import mrn_next

    if not values.get("name"):
        raise _Refused(ValidationError({"name": ValidationError(_("Enter the patient's name."), code="required")}))
    patient = Patient(**{name: value for name, value in values.items() if name != "name"})
    _set_name(patient, values["name"])
    patient.source = _patient_source(source)
    if connection.vendor == "postgresql" and auditlog_disabled.get():
        patient.mrn = clean.mrn
        inserted, same_day = _patient_insert(patient, identifiers)
        if inserted is not None:
            if not inserted:
                raise _Retry
            return patient, same_day
    try:
        with transaction.atomic():
            patient.mrn = clean.mrn or _mrn_allocate() or mrn_next()
            row_insert(patient)
            _identifiers_add(patient, identifiers)
    except IntegrityError:
        raise _Retry from None
    return patient, None


_patient_insert_statements: dict[tuple, tuple[str, list]] = {}


def _patient_insert_sql(allocate: bool, identifiers: int, same_day: bool) -> tuple[str, list]:
    """The statement `_patient_insert` sends, and the fields whose values it takes in order; built once per shape."""
    shape = (allocate, identifiers, same_day)
    built = _patient_insert_statements.get(shape)
    if built is not None:
        return built
    from hcrm.models import Counter

    quote = connection.ops.quote_name
    fields = [column for column in Patient._meta.concrete_fields if not column.primary_key]
    columns, expressions = [], []
    for model_field in fields:
        columns.append(quote(model_field.column))
        if model_field.name == "mrn" and allocate:
            # As f"{prefix}{value:08d}": at least eight digits, never cut.
            expressions.append(
                "%s || CASE WHEN number.value < 100000000 THEN lpad(number.value::text, 8, '0') ELSE number.value::text END"
            )
            continue
        expressions.append("%s")
    counter_sql = ""
    if allocate:
        # The number is used even if the row is skipped: a gap in MRNs, as with any sequence.
        counter_sql = (
            f"number AS (UPDATE {quote(Counter._meta.db_table)} SET value = value + 1 "  # noqa: S608 (model metadata)
            "WHERE name = 'mrn' RETURNING value), "
        )
    identifier_sql = ""
    if identifiers:
        rows = ", ".join(["(%s::uuid, %s::timestamptz, %s::timestamptz, %s, %s, %s)"] * identifiers)
        identifier_sql = (
            f", identified AS (INSERT INTO {quote(PatientIdentifier._meta.db_table)} "  # noqa: S608 (model metadata)
            "(uuid, created_at, updated_at, patient_id, kind, assigner, value) "
            "SELECT v.uuid, v.created_at, v.updated_at, created.id, v.kind, v.assigner, v.value "
            f"FROM created, (VALUES {rows}) AS v (uuid, created_at, updated_at, kind, assigner, value) "
            "ON CONFLICT DO NOTHING RETURNING 1)"
        )
    sql = (
        f"WITH {counter_sql}created AS (INSERT INTO {quote(Patient._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"SELECT {', '.join(expressions)}{' FROM number' if allocate else ''} "
        "ON CONFLICT DO NOTHING RETURNING id, mrn)"
        f"{identifier_sql} "
        f"SELECT {'(SELECT count(*) FROM number)' if allocate else '1'}, (SELECT id FROM created), "
        f"(SELECT mrn FROM created), {'(SELECT count(*) FROM identified)' if identifiers else '0'}"
    )
    if same_day:
        # The likely duplicates' candidates in the same round trip; the new row is not among them, as
        # the rest of a statement does not see what its WITH inserts.
        table = quote(Patient._meta.db_table)
        sql += (
            ", (SELECT coalesce(json_agg(json_build_array(s.id, s.name, s.name_pinyin, s.mobile, s.phone)), '[]'::json) "  # noqa: S608 (model metadata)
            f"FROM (SELECT id, name, name_pinyin, mobile, phone FROM {table} "
            "WHERE birth_date = %s AND merged_into_id IS NULL LIMIT %s) s)"
        )
    built = _patient_insert_statements[shape] = (sql, fields)
    return built


def _patient_insert(patient: Patient, identifiers: list[IdentifierInput]) -> tuple[bool | None, list | None]:
    """INSERT a new patient with its identifiers, and its MRN from the counter when it has none, in one statement.

    PostgreSQL, for writes not audited row by row; no savepoint is needed because a unique value
    taken meanwhile (MRN, national ID, identifier) makes the statement skip the row instead of
    failing. Returns True when all was written, False when such a value was taken (nothing of the
    patient is kept: match again), None when the MRN counter does not exist yet; and beside it the
    rows `_same_day_matches` compares, read by the same statement (None when it has no birth date).
    """
    from django.conf import settings

    quote = connection.ops.quote_name
    database = connections[connection.alias]
    allocate = not patient.mrn
    same_day = bool(patient.birth_date and patient.name)
    sql, fields = _patient_insert_sql(allocate, len(identifiers), same_day)
    params = []
    for model_field in fields:
        if model_field.name == "mrn" and allocate:
            params.append(settings.MRN_PREFIX)
            continue
        params.append(value_for_database(model_field, model_field.pre_save(patient, add=True), database))
    identifier_meta = PatientIdentifier._meta
    now = timezone.now()
    identifier_params = []
    for identifier in identifiers:
        identifier_params += [uuid.uuid4(), now, now, identifier.kind, identifier.assigner, identifier.value]
    same_day_params = [patient.birth_date, SAME_BIRTH_DATE_LIMIT + 1] if same_day else []
    with connection.cursor() as cursor:
        # The same text for every new patient with as many identifiers: prepared once per connection.
        statement_run(cursor, sql, [*params, *identifier_params, *same_day_params])
        numbered, patient_id, mrn, identified, *read = cursor.fetchone()
        if not numbered:
            return None, None
        if patient_id is None:
            return False, None
        if identified < len(identifiers):
            # An identifier was taken meanwhile: take the patient back out; matching again finds its holder.
            cursor.execute(f"DELETE FROM {quote(identifier_meta.db_table)} WHERE patient_id = %s", [patient_id])  # noqa: S608
            cursor.execute(f"DELETE FROM {quote(Patient._meta.db_table)} WHERE id = %s", [patient_id])  # noqa: S608
            return False, None
    patient.pk, patient.mrn = patient_id, mrn
    patient._state.adding = False
    patient._state.db = connection.alias
    if not read:
        return True, None
    rows = read[0]
    return True, json.loads(rows) if isinstance(rows, str) else rows


def _mrn_allocate() -> str:
    """The next MRN from the counter in one statement; "" when the counter does not exist yet."""
    from django.conf import settings

    from hcrm.models import Counter

    table = connection.ops.quote_name(Counter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET value = value + 1 WHERE name = %s RETURNING value", ["mrn"])  # noqa: S608 (a table name from the model)
        row = cursor.fetchone()
    return f"{settings.MRN_PREFIX}{row[0]:08d}" if row else ""


def _identifiers_add(patient: Patient, identifiers: list[IdentifierInput]) -> None:
    rows = [
        PatientIdentifier(patient=patient, kind=identifier.kind, assigner=identifier.assigner, value=identifier.value)
        for identifier in identifiers
    ]
    if len(rows) > 1 and auditlog_disabled.get():
        PatientIdentifier.objects.bulk_create(rows)
        return
    for row in rows:  # one by one, so that each is audited
        row_insert(row)


def _patient_change(
    patient: Patient,
    values: dict[str, Any],
    cleared: dict[str, Any],
    identifiers: list[IdentifierInput],
    *,
    deferred: bool = False,
) -> tuple[set[str], list[tuple[str, list]]]:
    """Write what differs; returns the changed fields, and the write left to the caller when `deferred`
    (one that touches no unique column). Touching unique columns happens in a savepoint."""
    changed: list[str] = []
    for name, value in {**values, **cleared}.items():
        if getattr(patient, name) == value:
            continue
        if name == "name":
            changed += _set_name(patient, value)
        else:
            setattr(patient, name, value)
            changed.append(name)
    if patient.deceased_date and not patient.is_deceased:
        patient.deceased_date = None
        changed.append("deceased_date")
    if not changed and not identifiers:
        return set(), []
    unique = "national_id" in changed or bool(identifiers)
    if deferred and not unique:
        statement = row_update_statement(patient, changed)
        if statement is not None:
            return set(changed), [statement]
    try:
        with transaction.atomic(savepoint=unique):
            if changed:
                row_update(patient, changed)
            _identifiers_add(patient, identifiers)
    except IntegrityError:
        if not unique:
            raise
        raise _Retry from None
    return set(changed), []


def _audit_label(actor, source: str, system: str):
    if actor is not None:
        return actor
    label = f"{source}:{system}" if system else source
    return label or None


def patient_match_or_create(
    *, demographics: PatientDemographics, source: str, actor=None, system: str = "", deferred: bool = False
) -> MatchOutcome:
    """Find the one patient these demographics belong to, update it, or create it; raise review candidates.

    `source` is how the patient came in (a PatientSource value, or hl7 / fhir / spreadsheet / manual);
    `system` names the sending system. With `actor=None` the write is audited as the system's.
    With `deferred` (PostgreSQL), a change to a matched patient that touches no unique column and is
    not audited row by row is not written here: it comes back in `outcome.pending`, for the caller to
    send in the same transaction, with a statement of its own.
    """
    clean = demographics_clean(demographics)
    origin = f"{source}:{system}" if system else source
    deferred = deferred and connection.vendor == "postgresql"
    # Refusals leave the block normally: an exception through it would doom the caller's transaction.
    outcome: MatchOutcome | None = None
    error: ValidationError | None = None
    with transaction.atomic(savepoint=False), audit_acting_as(_audit_label(actor, source, system)):
        for _attempt in range(3):
            try:
                outcome = _match_once(clean, source=source, origin=origin, deferred=deferred)
            except _Retry:
                continue
            except _Refused as refusal:
                error = refusal.error
            break
    if outcome is None:
        raise error or ValidationError(
            _("The patient was changed by another message at the same time; send it again."), code="conflict"
        )
    outcome.skipped = clean.skipped
    return outcome


# --- Merge ------------------------------------------------------------------------------------

# Rows that stay with the prior patient: a reveal opened that record and must not open another one;
# statistics are recomputed; the identity rows are handled by the merge itself.
MERGE_KEEPS = (BreakGlassGrant, PatientStats, MatchCandidate, PatientMerge)
FILL_FIELDS = (
    "national_id",
    "birth_date",
    "mobile",
    "phone",
    "email",
    "province",
    "city",
    "district",
    "region_code",
    "address_detail",
    "postal_code",
    "employer",
    "occupation",
    "ethnicity",
    "marital_status",
)
_CHUNK = 2000


def _patient_relations() -> list[models.ForeignKey]:
    """Every foreign key to Patient in every installed app (hidden ones and many-to-many tables too)."""
    fields = []
    for model in apps.get_models(include_auto_created=True):
        if issubclass(model, MERGE_KEEPS):
            continue
        for model_field in model._meta.concrete_fields:
            if model_field.is_relation and model_field.related_model is Patient:
                fields.append(model_field)
    return sorted(fields, key=lambda f: (f.model._meta.label_lower, f.name))


def _unique_sets(model: type[models.Model], field_name: str) -> list[tuple[list[str], Q | None]]:
    """Unique column sets of `model` that include `field_name`, with the partial condition if any."""
    sets: list[tuple[list[str], Q | None]] = []
    model_field = model._meta.get_field(field_name)
    if model_field.unique:
        sets.append(([field_name], None))
    for together in model._meta.unique_together:
        if field_name in together:
            sets.append((list(together), None))
    for constraint in model._meta.constraints:
        fields = list(getattr(constraint, "fields", ()) or ())
        if isinstance(constraint, models.UniqueConstraint) and field_name in fields:
            sets.append((fields, constraint.condition))
    return sets


def _consent_clash(prior_row: Consent, survivor_row: Consent) -> dict | None:
    """The later decision of the two wins; returns what the survivor's row held before."""
    if prior_row.updated_at <= survivor_row.updated_at:
        return None
    before = {"pk": survivor_row.pk, "granted": survivor_row.granted, "note": survivor_row.note}
    Consent.objects.filter(pk=survivor_row.pk).update(
        granted=prior_row.granted, note=prior_row.note, updated_at=timezone.now()
    )
    return before


CLASH_RESOLVERS = {"patients.consent": _consent_clash}


def _move_rows(
    model_field: models.ForeignKey, *, source: Patient, target: Patient, pks: list[int] | None = None
) -> list[int]:
    """Re-point rows of `model_field` from `source` to `target` (only `pks` if given); returns the moved pks."""
    model = model_field.model
    rows = model._default_manager.filter(**{model_field.attname: source.pk})
    if pks is not None:
        rows = rows.filter(pk__in=pks)
    moving = list(rows.values_list("pk", flat=True))
    changes: dict[str, Any] = {model_field.attname: target.pk}
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        changes["updated_at"] = timezone.now()
    for start in range(0, len(moving), _CHUNK):
        model._default_manager.filter(pk__in=moving[start : start + _CHUNK]).update(**changes)
    return moving


def _clashing_rows(model_field: models.ForeignKey, *, prior: Patient, survivor: Patient) -> dict[int, Any]:
    """Rows of `prior` that would break a unique constraint next to `survivor`'s: {prior pk: survivor row}."""
    model = model_field.model
    clashes: dict[int, Any] = {}
    for fields, condition in _unique_sets(model, model_field.name):
        others = [name for name in fields if name != model_field.name]
        survivor_rows = model._default_manager.filter(**{model_field.attname: survivor.pk})
        prior_rows = model._default_manager.filter(**{model_field.attname: prior.pk})
        if condition is not None:
            survivor_rows, prior_rows = survivor_rows.filter(condition), prior_rows.filter(condition)
        columns = [model._meta.get_field(name).attname for name in others]
        taken = {tuple(getattr(row, column) for column in columns): row for row in survivor_rows}
        if not taken:
            continue
        for row in prior_rows:
            key = tuple(getattr(row, column) for column in columns)
            if key in taken:
                clashes.setdefault(row.pk, taken[key])
    return clashes


def _lock(*patients: Patient) -> dict[int, Patient]:
    rows = Patient.objects.select_for_update().filter(pk__in=[p.pk for p in patients]).order_by("pk")
    return {row.pk: row for row in rows}


def _stats_refresh(*patients: Patient) -> None:
    from patients.services.stats import patient_stats_recompute

    patient_stats_recompute(patient_ids=[patient.pk for patient in patients])


def patients_merge(
    *, survivor: Patient, prior: Patient, actor=None, reason: str = "", source: str = ""
) -> PatientMerge:
    """Move every record of `prior` to `survivor`, keep the link, and return the undoable PatientMerge."""
    if survivor.pk == prior.pk:
        raise ValidationError(_("A patient cannot be merged into itself."), code="same_patient")
    with transaction.atomic(), audit_acting_as(_audit_label(actor, source or "merge", "")):
        locked = _lock(survivor, prior)
        survivor, prior = locked[survivor.pk], locked[prior.pk]
        if survivor.merged_into_id is not None:
            raise ValidationError(_("The surviving patient has itself been merged into another."), code="merged")
        if prior.merged_into_id is not None:
            raise ValidationError(_("This patient has already been merged into another."), code="merged")
        moved: dict[str, Any] = {
            "rows": {},
            "kept": {},
            "overwritten": {},
            "filled": {},
            "candidates": [],
            "resolved": [],
        }
        for model_field in _patient_relations():
            label = model_field.model._meta.label_lower
            if model_field.model is Patient and model_field.name != "merged_into":
                continue
            clashes = _clashing_rows(model_field, prior=prior, survivor=survivor)
            resolver = CLASH_RESOLVERS.get(label)
            if clashes and resolver is not None:
                prior_rows = model_field.model._default_manager.in_bulk(list(clashes))
                for pk, survivor_row in clashes.items():
                    before = resolver(prior_rows[pk], survivor_row)
                    if before is not None:
                        moved["overwritten"].setdefault(label, []).append(before)
            ids = list(
                model_field.model._default_manager.filter(**{model_field.attname: prior.pk})
                .exclude(pk__in=list(clashes))
                .values_list("pk", flat=True)
            )
            moving = _move_rows(model_field, source=prior, target=survivor, pks=ids) if ids else []
            if moving:
                moved["rows"].setdefault(label, {})[model_field.name] = moving
            if clashes:
                moved["kept"].setdefault(label, {})[model_field.name] = sorted(clashes)
        prior.merged_into = survivor
        prior.save(update_fields=["merged_into", "updated_at"])
        filled = []
        for name in FILL_FIELDS:
            value = getattr(prior, name)
            if value not in ("", None) and getattr(survivor, name) in ("", None):
                moved["filled"][name] = value if not isinstance(value, dt.date) else value.isoformat()
                setattr(survivor, name, value)
                filled.append(name)
        if filled:
            survivor.save(update_fields=[*filled, "updated_at"])
        merge = PatientMerge.objects.create(
            survivor=survivor,
            prior=prior,
            actor=actor if getattr(actor, "pk", None) else None,
            reason=reason,
            source=source[:120],
            moved=moved,
        )
        _candidates_after_merge(merge, survivor=survivor, prior=prior, actor=actor)
        merge.save(update_fields=["moved", "updated_at"])
        _stats_refresh(survivor, prior)
        details = {"merge": str(merge.uuid), "prior": str(prior.uuid), "survivor": str(survivor.uuid)}
        details["moved"] = {label: sum(len(pks) for pks in fields.values()) for label, fields in moved["rows"].items()}
        audit_write(event=Event.UPDATE, instance=survivor, reason=reason, details={"merged_in": details})
        audit_write(event=Event.UPDATE, instance=prior, reason=reason, details={"merged_into": details})
    return merge


def _candidates_after_merge(merge: PatientMerge, *, survivor: Patient, prior: Patient, actor) -> None:
    """The pair's own candidate is settled; the prior's other open candidates now concern the survivor."""
    low, high = _pair(survivor, prior)
    pair = MatchCandidate.objects.filter(patient_a=low, patient_b=high, status=MatchStatus.OPEN).first()
    if pair is not None:
        merge.moved["resolved"].append(pair.pk)
        pair.status, pair.merge = MatchStatus.MERGED, merge
        pair.decided_by = actor if getattr(actor, "pk", None) else None
        pair.decided_at = timezone.now()
        pair.save(update_fields=["status", "merge", "decided_by", "decided_at", "updated_at"])
    others = MatchCandidate.objects.filter(Q(patient_a=prior) | Q(patient_b=prior), status=MatchStatus.OPEN)
    for candidate in others.select_related("patient_a", "patient_b"):
        other = candidate.patient_b if candidate.patient_a_id == prior.pk else candidate.patient_a
        if other.pk == survivor.pk:
            continue
        first, second = _pair(survivor, other)
        if MatchCandidate.objects.filter(patient_a=first, patient_b=second).exists():
            continue
        merge.moved["candidates"].append({"pk": candidate.pk, "a": candidate.patient_a_id, "b": candidate.patient_b_id})
        MatchCandidate.objects.filter(pk=candidate.pk).update(
            patient_a=first, patient_b=second, updated_at=timezone.now()
        )


def patient_merge_undo(*, merge, actor=None) -> None:
    """Give back to the prior patient everything the merge moved."""
    with transaction.atomic(), audit_acting_as(_audit_label(actor, merge.source or "merge", "")):
        merge = PatientMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.undone_at is not None:
            raise ValidationError(_("This merge has already been undone."), code="undone")
        locked = _lock(merge.survivor, merge.prior)
        survivor, prior = locked[merge.survivor_id], locked[merge.prior_id]
        if survivor.merged_into_id is not None:
            raise ValidationError(
                _("The surviving patient has since been merged into another; undo that merge first."), code="merged"
            )
        if prior.merged_into_id != survivor.pk:
            raise ValidationError(_("The merged patient is no longer linked to the survivor."), code="unlinked")
        moved = merge.moved
        restored = []
        for name, value in moved.get("filled", {}).items():
            current = getattr(survivor, name)
            if (current.isoformat() if isinstance(current, dt.date) else current) == value:
                setattr(survivor, name, CLEARED_VALUES.get(name, ""))
                restored.append(name)
        if restored:
            survivor.save(update_fields=[*restored, "updated_at"])
        if prior.national_id and (
            Patient.objects.filter(national_id=prior.national_id, merged_into__isnull=True)
            .exclude(pk=prior.pk)
            .exists()
        ):
            raise ValidationError(
                {
                    "national_id": ValidationError(
                        _("Another patient now has this patient's national ID number; change it before undoing."),
                        code="duplicate",
                    )
                }
            )
        prior.merged_into = None
        prior.save(update_fields=["merged_into", "updated_at"])
        relations = {(f.model._meta.label_lower, f.name): f for f in _patient_relations()}
        for label, fields in moved.get("rows", {}).items():
            for name, pks in fields.items():
                model_field = relations.get((label, name))
                if model_field is not None:
                    _move_rows(model_field, source=survivor, target=prior, pks=pks)
        for label, rows in moved.get("overwritten", {}).items():
            model = apps.get_model(label)
            for before in rows:
                values = {key: value for key, value in before.items() if key != "pk"}
                model._default_manager.filter(pk=before["pk"]).update(**values)
        for entry in moved.get("candidates", []):
            if not MatchCandidate.objects.filter(patient_a_id=entry["a"], patient_b_id=entry["b"]).exists():
                MatchCandidate.objects.filter(pk=entry["pk"]).update(
                    patient_a_id=entry["a"], patient_b_id=entry["b"], updated_at=timezone.now()
                )
        MatchCandidate.objects.filter(pk__in=moved.get("resolved", []), merge=merge).update(
            status=MatchStatus.OPEN, merge=None, decided_by=None, decided_at=None, updated_at=timezone.now()
        )
        merge.undone_at = timezone.now()
        merge.undone_by = actor if getattr(actor, "pk", None) else None
        merge.save(update_fields=["undone_at", "undone_by", "updated_at"])
        _stats_refresh(survivor, prior)
        details = {"merge": str(merge.uuid), "prior": str(prior.uuid), "survivor": str(survivor.uuid)}
        audit_write(event=Event.UPDATE, instance=survivor, details={"merge_undone": details})
        audit_write(event=Event.UPDATE, instance=prior, details={"merge_undone": details})


# --- Review ------------------------------------------------------------------------------------


class Decision:
    MERGE = "merge"
    DIFFERENT = "different"


def match_candidate_resolve(
    *, candidate: MatchCandidate, decision: str, actor, survivor: Patient | None = None, reason: str = ""
) -> PatientMerge | None:
    """A person's decision on a candidate pair: merge it (into `survivor`) or mark the two as different people."""
    if decision not in (Decision.MERGE, Decision.DIFFERENT):
        raise ValidationError({"decision": ValidationError(_("Choose merge or different."), code="invalid")})
    with transaction.atomic(), audit_acting_as(actor):
        candidate = (
            MatchCandidate.objects.select_for_update().select_related("patient_a", "patient_b").get(pk=candidate.pk)
        )
        if candidate.status != MatchStatus.OPEN:
            raise ValidationError(_("This pair has already been decided."), code="decided")
        if decision == Decision.DIFFERENT:
            candidate.status = MatchStatus.DIFFERENT
            candidate.decided_by = actor if getattr(actor, "pk", None) else None
            candidate.decided_at = timezone.now()
            candidate.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
            for patient, other in (
                (candidate.patient_a, candidate.patient_b),
                (candidate.patient_b, candidate.patient_a),
            ):
                audit_write(
                    event=Event.UPDATE,
                    instance=patient,
                    reason=reason,
                    details={"different_from": str(other.uuid), "match_candidate": str(candidate.uuid)},
                )
            return None
        if survivor is None or survivor.pk not in (candidate.patient_a_id, candidate.patient_b_id):
            raise ValidationError(
                {"survivor": ValidationError(_("Choose which of the two records survives."), code="required")}
            )
        prior = candidate.other(survivor)
        return patients_merge(survivor=survivor, prior=prior, actor=actor, reason=reason, source="review")
