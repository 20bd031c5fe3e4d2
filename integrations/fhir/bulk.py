"""FHIR Bulk Data import: NDJSON (plain or gzip) Patient exports into the archive, resumable, set-based.

Each line is parsed and mapped in Python (a background thread reads ahead while the database works);
batches are then applied in one transaction each, together with the job's committed position, so an
interrupted import resumes exactly after its last committed batch. On PostgreSQL a batch is COPied
into temporary staging tables and applied with a handful of set-based statements; on other databases
the same rules run through batched ORM queries.

Identity rules, the same as every other way in: an identifier with the same kind and assigning
authority → that patient; otherwise the same valid national ID → that patient; otherwise a new
patient, and a new patient with the same name, birth date and phone as another becomes a
MatchCandidate for review, never a merge. A matched patient is written only when a field it was sent
differs, so importing the same file again writes no patient, identifier or audit row.
"""

# SQL here names tables from model metadata and staging tables of this module; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.models import AuditEntry
from hcrm.services import counter_next
from integrations.fhir import codes
from integrations.fhir.inbound_map import DEFAULT_RULES, ProfileRules, identifier_meaning, rules_from_profile
from integrations.models import BulkImport, Protocol, SourceProfile
from patients.models import IdentifierKind, MatchCandidate, Patient, PatientIdentifier
from patients.pinyin import name_search_keys
from patients.validators import (
    national_id_birth_date,
    national_id_sex,
    normalize_mobile,
    normalize_national_id,
    normalize_phone,
    validate_national_id,
    validate_national_id_matches,
    validate_not_future,
)

BATCH_SIZE = 50_000
MAX_STORED_ERRORS = 1_000
SOURCE_DEFAULT = "fhir-bulk"
# Patient columns a FHIR Patient can set; "" (or None) in a mapped row means "not sent".
TEXT_FIELDS = (
    "name",
    "name_pinyin",
    "name_pinyin_initials",
    "name_pinyin_consonants",
    "sex",
    "national_id",
    "mobile",
    "phone",
    "email",
    "province",
    "city",
    "district",
    "address_detail",
    "postal_code",
    "marital_status",
)
DATE_FIELDS = ("birth_date", "deceased_date")
BOOLEAN_FIELDS = ("is_deceased",)
MAPPED_FIELDS = TEXT_FIELDS + DATE_FIELDS + BOOLEAN_FIELDS
_PINYIN_FIELDS = ("name_pinyin", "name_pinyin_initials", "name_pinyin_consonants")
_GENDERS = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
# HL7 v3 MaritalStatus and GB/T 2261.2 codes to the archive's GB/T 2261.2 values.
_MARITAL = {"S": "10", "U": "10", "M": "20", "W": "30", "D": "40", "10": "10", "20": "20", "30": "30", "40": "40"}
_MARITAL_OTHER = {"A", "I", "L", "P", "T", "C", "90"}
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATETIME_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_POSTAL_CODE = re.compile(r"^\d{6}$")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_MAX_LENGTHS = {f.name: f.max_length for f in Patient._meta.concrete_fields if getattr(f, "max_length", None)}
_ASSIGNER_MAX = PatientIdentifier._meta.get_field("assigner").max_length
_VALUE_MAX = PatientIdentifier._meta.get_field("value").max_length


class BulkLineError(Exception):
    """A line that cannot be imported: where in the resource, and why."""

    def __init__(self, location: str, message: str):
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


# --- Mapping: pure functions of one resource ---------------------------------------------------------


@dataclass(frozen=True)
class MappingProfile:
    """What the mapping needs from a SourceProfile, read once so the reader thread never queries."""

    source: str  # assigning authority of the sender's own logical ids
    rules: ProfileRules

    @classmethod
    def from_source(cls, profile: SourceProfile | None, source: str) -> MappingProfile:
        rules = rules_from_profile(profile) if profile is not None else DEFAULT_RULES
        return cls(source=source[:_ASSIGNER_MAX], rules=rules)


@dataclass
class PatientRow:
    """One patient as a bulk file states it; lines that name the same patient are folded into one row."""

    lines: list[int]
    values: dict[str, Any]
    identifiers: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, assigner, value)

    @property
    def line(self) -> int:
        return self.lines[-1]

    def identity_keys(self) -> list[tuple]:
        keys: list[tuple] = [("identifier", *identifier) for identifier in self.identifiers]
        if self.values["national_id"]:
            keys.append(("national_id", self.values["national_id"]))
        return keys

    def absorb(self, later: PatientRow) -> None:
        """Fold a later line about the same patient into this row: what it sends wins."""
        for name, value in later.values.items():
            if value not in ("", None):
                self.values[name] = value
        if later.values["name"]:
            for name in _PINYIN_FIELDS:
                self.values[name] = later.values[name]
        self.identifiers.extend(i for i in later.identifiers if i not in self.identifiers)
        self.lines.extend(later.lines)


def assigner_for(system: str) -> str:
    """An identifier system as the archive's assigning authority, the same as the FHIR REST facade stores it."""
    return codes.assigner_for_system(system)


def _text(value: Any, location: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BulkLineError(location, _("Expected a string."))
    return value.strip()


def _list(resource: dict, key: str, location: str) -> list:
    value = resource.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BulkLineError(location, _("Expected a list of objects."))
    return value


def _fits(values: dict[str, Any], name: str, location: str) -> None:
    if len(values[name]) > _MAX_LENGTHS[name]:
        raise BulkLineError(location, _("Longer than %(limit)d characters.") % {"limit": _MAX_LENGTHS[name]})


def _fhir_date(value: Any, location: str) -> date | None:
    """A FHIR date; a year or year-month only is not a birth date the archive can hold, so "not sent"."""
    text = _text(value, location)
    if not text:
        return None
    match = _DATE.match(text)
    if not match:
        raise BulkLineError(location, _("Not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)."))
    if match[3] is None:
        return None
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise BulkLineError(location, _("Not a real calendar date.")) from None
    try:
        validate_not_future(day)
    except ValidationError as error:
        raise BulkLineError(location, error.messages[0]) from None
    return day


def _human_name(names: list[dict]) -> tuple[dict | None, int]:
    for use in ("official", "usual", None):
        for index, name in enumerate(names):
            if use is None and name.get("use") not in ("old", "anonymous", "maiden"):
                return name, index
            if use is not None and name.get("use") == use:
                return name, index
    return (names[0], 0) if names else (None, 0)


def _name(resource: dict) -> str:
    names = _list(resource, "name", "Patient.name")
    chosen, index = _human_name(names)
    location = f"Patient.name[{index}]"
    if chosen is None:
        raise BulkLineError("Patient.name", _("A patient needs a name."))
    text = _text(chosen.get("text"), f"{location}.text")
    if not text:
        family = _text(chosen.get("family"), f"{location}.family")
        given = chosen.get("given") or []
        if not isinstance(given, list):
            raise BulkLineError(f"{location}.given", _("Expected a list of strings."))
        given = [_text(part, f"{location}.given") for part in given]
        if _CJK.search(family + "".join(given)):
            text = family + "".join(given)
        else:
            text = " ".join(part for part in [*given, family] if part)
    if not text:
        raise BulkLineError(location, _("A patient needs a name."))
    return text


def _identifiers(resource: dict, profile: MappingProfile, values: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Identifiers read as the FHIR REST facade reads them (`identifier_meaning`, `assigner_for_system`)."""
    identifiers: list[tuple[str, str, str]] = []
    for index, identifier in enumerate(_list(resource, "identifier", "Patient.identifier")):
        location = f"Patient.identifier[{index}]"
        value = _text(identifier.get("value"), f"{location}.value")
        if not value or identifier.get("use") == "old":
            continue  # an identifier without a value identifies nobody
        system = _text(identifier.get("system"), f"{location}.system")
        meaning = identifier_meaning(identifier, profile.rules)
        if meaning == "national_id":
            national_id = normalize_national_id(value)
            try:
                validate_national_id(national_id)
            except ValidationError:
                meaning = "other"  # kept as another identifier, as the REST facade does
            else:
                values["national_id"] = national_id
                continue
        if len(value) > _VALUE_MAX:
            raise BulkLineError(f"{location}.value", _("Longer than %(limit)d characters.") % {"limit": _VALUE_MAX})
        entry = (codes.MEANING_KIND.get(meaning, str(IdentifierKind.OTHER)), assigner_for(system), value)
        if entry not in identifiers:
            identifiers.append(entry)
    return identifiers


def _telecom(resource: dict, values: dict[str, Any]) -> None:
    for index, contact in enumerate(_list(resource, "telecom", "Patient.telecom")):
        location = f"Patient.telecom[{index}]"
        value = _text(contact.get("value"), f"{location}.value")
        system = contact.get("system")
        if not value:
            continue
        if system in ("phone", "sms"):
            if not values["mobile"]:
                try:
                    values["mobile"] = normalize_mobile(value)
                    continue
                except ValidationError:
                    pass
            if not values["phone"]:
                # A number no dialling plan knows is not kept (see the module's notes).
                with contextlib.suppress(ValidationError):
                    values["phone"] = normalize_phone(value)
        elif system == "email" and not values["email"]:
            try:
                validate_email(value)
            except ValidationError:
                raise BulkLineError(f"{location}.value", _("Not a valid email address.")) from None
            values["email"] = value
            _fits(values, "email", f"{location}.value")


def _address(resource: dict, values: dict[str, Any]) -> None:
    addresses = _list(resource, "address", "Patient.address")
    if not addresses:
        return
    index = next((i for i, a in enumerate(addresses) if a.get("use") == "home"), 0)
    address = addresses[index]
    location = f"Patient.address[{index}]"
    for key, name in (("state", "province"), ("city", "city"), ("district", "district")):
        values[name] = _text(address.get(key), f"{location}.{key}")
        _fits(values, name, f"{location}.{key}")
    lines = address.get("line") or []
    if not isinstance(lines, list):
        raise BulkLineError(f"{location}.line", _("Expected a list of strings."))
    values["address_detail"] = " ".join(_text(line, f"{location}.line") for line in lines).strip() or _text(
        address.get("text"), f"{location}.text"
    )
    _fits(values, "address_detail", f"{location}.line")
    postal_code = _text(address.get("postalCode"), f"{location}.postalCode")
    values["postal_code"] = postal_code if _POSTAL_CODE.match(postal_code) else ""


def patient_row_from_resource(resource: Any, *, profile: MappingProfile, line: int = 0) -> PatientRow:
    """Map one FHIR R4 Patient to archive fields and identifiers; BulkLineError names what is wrong."""
    if not isinstance(resource, dict):
        raise BulkLineError("(line)", _("A line must hold one JSON object."))
    resource_type = resource.get("resourceType")
    if resource_type != "Patient":
        raise BulkLineError(
            "resourceType",
            _("%(type)s resources are not imported; this import takes Patient resources.")
            % {"type": resource_type or _("(missing)")},
        )
    values: dict[str, Any] = dict.fromkeys(TEXT_FIELDS, "") | dict.fromkeys(DATE_FIELDS + BOOLEAN_FIELDS)
    values["name"] = _name(resource)
    _fits(values, "name", "Patient.name")
    values["name_pinyin"], values["name_pinyin_initials"], values["name_pinyin_consonants"] = name_search_keys(
        values["name"]
    )
    gender = resource.get("gender")
    if gender is not None:
        if gender not in _GENDERS:
            raise BulkLineError("Patient.gender", _("Use one of male, female, other, unknown."))
        values["sex"] = _GENDERS[gender]
    values["birth_date"] = _fhir_date(resource.get("birthDate"), "Patient.birthDate")
    identifiers = _identifiers(resource, profile, values)
    logical_id = _text(resource.get("id"), "Patient.id")
    if logical_id:
        # The sender's own id for the resource: a re-export of the same patient finds the same row.
        identifiers.append((str(IdentifierKind.OTHER), profile.source, logical_id[:_VALUE_MAX]))
    if values["national_id"]:
        national_id = values["national_id"]
        for name, error in validate_national_id_matches(
            national_id, birth_date=values["birth_date"], sex=values["sex"]
        ).items():
            raise BulkLineError("Patient.birthDate" if name == "birth_date" else "Patient.gender", error.messages[0])
        values["birth_date"] = values["birth_date"] or national_id_birth_date(national_id)
        if values["sex"] in ("", "unknown"):
            values["sex"] = national_id_sex(national_id)
    _telecom(resource, values)
    _address(resource, values)
    if "deceasedBoolean" in resource:
        if not isinstance(resource["deceasedBoolean"], bool):
            raise BulkLineError("Patient.deceasedBoolean", _("Expected true or false."))
        values["is_deceased"] = resource["deceasedBoolean"]
    elif "deceasedDateTime" in resource:
        text = _text(resource["deceasedDateTime"], "Patient.deceasedDateTime")
        match = _DATETIME_DAY.match(text)
        values["is_deceased"] = True
        values["deceased_date"] = _fhir_date(match[0] if match else text, "Patient.deceasedDateTime")
    marital = resource.get("maritalStatus")
    if isinstance(marital, dict):
        for coding in marital.get("coding") or []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if code in _MARITAL or code in _MARITAL_OTHER:
                values["marital_status"] = _MARITAL.get(code, "90")
                break
    if values["deceased_date"] and values["birth_date"] and values["deceased_date"] < values["birth_date"]:
        raise BulkLineError("Patient.deceasedDateTime", _("The date of death is before the birth date."))
    if not identifiers and not values["national_id"]:
        raise BulkLineError("Patient.identifier", _("A patient needs an id or an identifier to be imported again."))
    return PatientRow(lines=[line], values=values, identifiers=identifiers)


def fhir_validation_error(resource: dict) -> BulkLineError | None:
    """Full validation with fhir.resources (R4B models): the first problem, by element path."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError as PydanticValidationError

    resource_type = resource.get("resourceType")
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, TypeError):
        return BulkLineError("resourceType", _("Unknown resource type %(type)s.") % {"type": resource_type})
    try:
        model.model_validate(resource)
    except PydanticValidationError as error:
        first = error.errors()[0]
        location = str(resource_type)
        for part in first["loc"]:
            if isinstance(part, int):
                location += f"[{part}]"
            elif part != "__root__":
                location += f".{part}"
        return BulkLineError(location, first["msg"])
    return None


# --- Reading the file ------------------------------------------------------------------------------


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256) of the file as stored."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


@dataclass
class Chunk:
    """Mapped rows of one batch and where the stream stands after its last line."""

    rows: list[PatientRow]
    errors: list[dict]
    resource_counts: dict[str, int]
    end_offset: int  # bytes of the (decompressed) stream
    end_line: int
    file_position: int  # bytes of the file on disk, for progress


def _read_chunks(
    path: Path,
    *,
    start_offset: int,
    start_line: int,
    batch_size: int,
    profile: MappingProfile,
    validate: bool,
) -> Iterator[Chunk]:
    raw = open(path, "rb")  # noqa: SIM115 (closed below, also wrapped by gzip)
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.endswith(".gz") else raw
    try:
        stream.seek(start_offset)
        offset, line_number = start_offset, start_line
        rows: list[PatientRow] = []
        keyed: dict[tuple, PatientRow] = {}
        errors: list[dict] = []
        counts: dict[str, int] = {}
        for line in stream:
            offset += len(line)
            line_number += 1
            text = line.strip()
            if not text:
                continue
            try:
                resource = json.loads(text)
            except (ValueError, UnicodeDecodeError) as error:
                errors.append(
                    {
                        "line": line_number,
                        "location": "(line)",
                        "message": _("Not valid JSON: %(error)s") % {"error": error},
                    }
                )
                continue
            kind = resource.get("resourceType") if isinstance(resource, dict) else None
            counts[str(kind)] = counts.get(str(kind), 0) + 1
            try:
                if validate and isinstance(resource, dict) and (problem := fhir_validation_error(resource)):
                    raise problem
                row = patient_row_from_resource(resource, profile=profile, line=line_number)
            except BulkLineError as error:
                errors.append({"line": line_number, "location": error.location, "message": error.message})
                continue
            holders = {id(keyed[key]): keyed[key] for key in row.identity_keys() if key in keyed}
            if len(holders) > 1:
                # The line ties together patients this batch holds apart: settle them first.
                yield Chunk(rows, errors, counts, offset - len(line), line_number - 1, raw.tell())
                rows, keyed, errors, counts = [], {}, [], {str(kind): 1}
                holders = {}
            if holders:
                target = next(iter(holders.values()))
                target.absorb(row)
            else:
                target = row
                rows.append(row)
            for key in target.identity_keys():
                keyed[key] = target
            if len(rows) >= batch_size:
                yield Chunk(rows, errors, counts, offset, line_number, raw.tell())
                rows, keyed, errors, counts = [], {}, [], {}
        if rows or errors or counts or line_number > start_line:
            yield Chunk(rows, errors, counts, offset, line_number, raw.tell())
    finally:
        stream.close()
        raw.close()


def _read_ahead(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """Map the next batch in a thread while the database applies this one."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(done)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(error)

    worker = threading.Thread(target=produce, name="fhir-bulk-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


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


def _mrn_block(count: int) -> list[str]:
    last = counter_next(name="mrn", count=count)
    return [f"{settings.MRN_PREFIX}{number:08d}" for number in range(last - count + 1, last + 1)]


def _audit_details(job: BulkImport, row_lines: list[int]) -> dict:
    return {"bulk_import": str(job.uuid), "line": row_lines[-1]}


_MASKED = set(Patient.SENSITIVE_FIELDS)


def _mask(value: Any) -> Any:
    if value in ("", None):
        return value
    text = str(value)
    half = len(text) // 2
    return "*" * half + text[half:]


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
                outcome.errors.append(_error(row, "Patient.identifier", _conflict_message()))
                continue
            patient_id = next(iter(found), None) or by_national_id.get(row.values["national_id"])
            target[index] = patient_id
        patients = Patient.objects.in_bulk({pid for pid in target.values() if pid})
        for index, patient_id in list(target.items()):
            problem = patient_id and _matched_conflict(rows[index], patients[patient_id], by_national_id)
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
                if name in _PINYIN_FIELDS:
                    setattr(patient, name, value)
                    continue
                old = getattr(patient, name)
                changes[name] = [_mask(old), _mask(value)] if name in _MASKED else [_json(old), _json(value)]
                setattr(patient, name, value)
            if changes:
                patient.updated_at = now
                changed_patients.append(patient)
                audits.append(_audit_entry(patient, AuditEntry.Action.UPDATE, changes, job, row, actor))
            else:
                outcome.unchanged += 1
        if changed_patients:
            Patient.objects.bulk_update(changed_patients, [*MAPPED_FIELDS, "updated_at"])
        outcome.updated = len(changed_patients)
        created = []
        if new_rows:
            for row, mrn in zip(new_rows, _mrn_block(len(new_rows)), strict=True):
                patient = Patient(mrn=mrn, source="fhir_import", **_creation_values(row))
                created.append((row, patient))
            Patient.objects.bulk_create([patient for _row, patient in created])
            audits.extend(
                _audit_entry(patient, AuditEntry.Action.CREATE, None, job, row, actor) for row, patient in created
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
        outcome.candidates = _candidates_orm([patient.pk for _row, patient in created])
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


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _conflict_message() -> str:
    return _("The identifiers of this patient belong to different patients in the archive.")


def _error(row: PatientRow, location: str, message: str) -> dict:
    return {"line": row.line, "location": location, "message": message}


def _matched_conflict(row: PatientRow, patient: Patient, by_national_id: dict[str, int]) -> dict | None:
    national_id = row.values["national_id"]
    if national_id and by_national_id.get(national_id, patient.pk) != patient.pk:
        return _error(row, "Patient.identifier", _national_id_taken_message())
    if not national_id and len(patient.national_id) == 18:
        mismatch = validate_national_id_matches(
            patient.national_id, birth_date=row.values["birth_date"], sex=row.values["sex"] or None
        )
        if "birth_date" in mismatch:
            return _error(row, "Patient.birthDate", _birth_mismatch_message())
        if "sex" in mismatch:
            return _error(row, "Patient.gender", _sex_mismatch_message())
    return None


def _national_id_taken_message() -> str:
    return _("This national ID number belongs to another patient than the one the identifiers name.")


def _birth_mismatch_message() -> str:
    return _("The birth date does not match the national ID number on record.")


def _sex_mismatch_message() -> str:
    return _("The sex does not match the national ID number on record.")


def _creation_values(row: PatientRow) -> dict[str, Any]:
    values = {name: value for name, value in row.values.items() if value not in ("", None)}
    values.setdefault("sex", "unknown")
    values.setdefault("is_deceased", False)
    return values


def _audit_entry(patient: Patient, action: int, changes, job: BulkImport, row: PatientRow, actor) -> AuditEntry:
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
        additional_data=_audit_details(job, row.lines),
    )


def _candidates_orm(new_ids: list[int]) -> int:
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


_NULL = r"\N"
_STAGE = "fhir_bulk_patient_stage"
_STAGE_IDENTIFIERS = "fhir_bulk_identifier_stage"


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
        for seq, row in enumerate(rows):
            values = row.values
            patient_csv.writerow(
                [seq, row.line, *(values[name] for name in TEXT_FIELDS)]
                + [_NULL if values[name] is None else values[name] for name in DATE_FIELDS + BOOLEAN_FIELDS]
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
            cursor.execute(f"ANALYZE {_STAGE}, {_STAGE_IDENTIFIERS}")
            self._match(cursor)
            cursor.execute(f"ANALYZE {_STAGE}")
            cursor.execute(f"SELECT seq, error_location, error FROM {_STAGE} WHERE error IS NOT NULL ORDER BY seq")
            outcome.errors = [_error(rows[seq], location, message) for seq, location, message in cursor.fetchall()]
            outcome.updated = self._update(cursor, job, actor)
            cursor.execute(
                f"SELECT count(*) FILTER (WHERE patient_id IS NULL), count(*) FILTER (WHERE patient_id IS NOT NULL) "
                f"FROM {_STAGE} WHERE error IS NULL"
            )
            new, matched = cursor.fetchone()
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
            [_conflict_message()],
        )
        cursor.execute(f"ANALYZE {_STAGE}")  # the planner must know how many rows found their patient
        cursor.execute(
            f"UPDATE {_STAGE} s SET patient_id = p.id FROM {patients} p WHERE s.patient_id IS NULL "
            f"AND s.error IS NULL AND s.national_id <> '' AND p.national_id = s.national_id AND p.merged_into_id IS NULL"
        )
        cursor.execute(
            f"UPDATE {_STAGE} s SET error_location = 'Patient.identifier', error = %s FROM {patients} p "
            f"WHERE s.error IS NULL AND s.patient_id IS NOT NULL AND s.national_id <> '' AND p.national_id <> '' "
            f"AND p.national_id = s.national_id AND p.merged_into_id IS NULL AND p.id <> s.patient_id",
            [_national_id_taken_message()],
        )
        on_record = f"FROM {patients} p WHERE s.patient_id = p.id AND s.error IS NULL AND s.national_id = '' AND length(p.national_id) = 18 AND p.national_id ~ '^[0-9]{{17}}[0-9X]$'"
        cursor.execute(
            f"UPDATE {_STAGE} s SET error_location = 'Patient.birthDate', error = %s {on_record} "
            f"AND s.birth_date IS NOT NULL AND substr(p.national_id, 7, 8) <> to_char(s.birth_date, 'YYYYMMDD')",
            [_birth_mismatch_message()],
        )
        cursor.execute(
            f"UPDATE {_STAGE} s SET error_location = 'Patient.gender', error = %s {on_record} "
            f"AND s.sex IN ('male', 'female') AND (substr(p.national_id, 17, 1)::int %% 2 = 1) <> (s.sex = 'male')",
            [_sex_mismatch_message()],
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
            if name in _PINYIN_FIELDS:
                continue
            differs.append(f"COALESCE({sent}, old.{name}) IS DISTINCT FROM old.{name}")
            old, new = f"old.{name}", f"p.{name}"
            if name in _MASKED:
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
            f"LEFT JOIN {self.identifier_table} pi ON pi.kind = si.kind AND pi.assigner = si.assigner AND pi.value = si.value "
            f"WHERE s.error IS NULL AND pi.id IS NULL "
            f"ON CONFLICT (kind, assigner, value) DO NOTHING"
        )
        # ON CONFLICT skips an identifier another writer committed meanwhile: then its patient is not ours.
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
            f"JOIN {self.patient_table} o ON o.name = n.name AND o.birth_date = n.birth_date AND o.id <> n.id "
            f"AND o.merged_into_id IS NULL "
            f"AND ((n.mobile <> '' AND n.mobile IN (o.mobile, o.phone)) OR (n.phone <> '' AND n.phone IN (o.mobile, o.phone))) "
            f"WHERE s.mrn IS NOT NULL AND s.error IS NULL AND n.birth_date IS NOT NULL "
            f"ON CONFLICT DO NOTHING",
            {"reason": MatchCandidate.Reason.SAME_NAME_BIRTH_PHONE.value, "score": CANDIDATE_SCORE},
        )
        return cursor.rowcount


def _field_default(model_field: models.Field) -> Any:
    if model_field.has_default():
        return model_field.get_default()
    return None if model_field.null else ""


# --- The job -----------------------------------------------------------------------------------------


def _writer() -> OrmWriter | PostgresWriter:
    return PostgresWriter() if connection.vendor == "postgresql" else OrmWriter()


def _source_profile(source: str) -> SourceProfile:
    profile = SourceProfile.objects.filter(
        protocol=Protocol.FHIR, sending_application=source, sending_facility=""
    ).first()
    if profile is None:
        profile, _created = SourceProfile.objects.get_or_create(
            protocol=Protocol.FHIR, sending_application=source, sending_facility="", defaults={"name": source}
        )
    return profile


def bulk_import_job_for(*, path: Path, source: str = SOURCE_DEFAULT, actor=None, restart: bool = False) -> BulkImport:
    """The job for this file: the unfinished one for the same content (to resume), else a new one."""
    path = Path(path)
    size, sha256 = file_digest(path)
    with transaction.atomic():
        # A file that changed since an unfinished import of it starts over.
        BulkImport.objects.filter(path=str(path), status=BulkImport.Status.RUNNING).exclude(sha256=sha256).update(
            status=BulkImport.Status.FAILED, finished_at=timezone.now()
        )
        running = BulkImport.objects.select_for_update().filter(sha256=sha256, status=BulkImport.Status.RUNNING).first()
        if running is not None and restart:
            running.status = BulkImport.Status.FAILED
            running.finished_at = timezone.now()
            running.save(update_fields=["status", "finished_at", "updated_at"])
            running = None
        if running is not None:
            if running.path != str(path):
                running.path = str(path)
                running.save(update_fields=["path", "updated_at"])
            return running
        return BulkImport.objects.create(
            path=str(path)[:500], size=size, sha256=sha256, source=_source_profile(source), actor=actor
        )


def bulk_import_run(
    *,
    job: BulkImport,
    actor=None,
    batch_size: int = BATCH_SIZE,
    validate: bool = False,
    progress: Callable[[int], None] | None = None,
    after_batch: Callable[[BulkImport], None] | None = None,
) -> BulkImport:
    """Import the job's file from its committed position; each batch commits with the new position."""
    path = Path(job.path)
    source = job.source.sending_application if job.source_id else SOURCE_DEFAULT
    profile = MappingProfile.from_source(job.source, source)
    writer = _writer()
    chunks = _read_ahead(
        _read_chunks(
            path,
            start_offset=job.bytes_done,
            start_line=job.lines_done,
            batch_size=batch_size,
            profile=profile,
            validate=validate,
        )
    )
    for chunk in chunks:
        outcome = _apply_with_retry(writer, chunk, job=job, actor=actor)
        if progress is not None:
            progress(chunk.file_position)
        if after_batch is not None:
            after_batch(job)
    job.status = BulkImport.Status.COMPLETED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at", "updated_at"])
    del outcome
    return job


def _apply_with_retry(writer, chunk: Chunk, *, job: BulkImport, actor, attempts: int = 3) -> BatchOutcome:
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                outcome = writer.apply(chunk.rows, job=job, actor=actor)
                _job_advance(job, chunk, outcome)
            return outcome
        except (IdentityRace, IntegrityError):
            # Another writer created one of these patients meanwhile; matching again finds it.
            job.refresh_from_db()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _job_advance(job: BulkImport, chunk: Chunk, outcome: BatchOutcome) -> None:
    errors = sorted(chunk.errors + outcome.errors, key=lambda error: error["line"])
    counts = dict(job.resource_counts)
    for kind, count in chunk.resource_counts.items():
        counts[kind] = counts.get(kind, 0) + count
    room = max(0, MAX_STORED_ERRORS - len(job.errors))
    BulkImport.objects.filter(pk=job.pk).update(
        bytes_done=chunk.end_offset,
        lines_done=chunk.end_line,
        resource_counts=counts,
        created_count=F("created_count") + outcome.created,
        updated_count=F("updated_count") + outcome.updated,
        unchanged_count=F("unchanged_count") + outcome.unchanged,
        candidate_count=F("candidate_count") + outcome.candidates,
        error_count=F("error_count") + len(errors),
        errors=job.errors + errors[:room],
        updated_at=timezone.now(),
    )
    job.refresh_from_db()


def bulk_import_file(
    *,
    path: Path,
    source: str = SOURCE_DEFAULT,
    actor=None,
    batch_size: int = BATCH_SIZE,
    validate: bool = False,
    restart: bool = False,
    progress: Callable[[int], None] | None = None,
    after_batch: Callable[[BulkImport], None] | None = None,
) -> BulkImport:
    """Import one NDJSON(.gz) file of FHIR resources, resuming an unfinished import of the same content."""
    job = bulk_import_job_for(path=path, source=source, actor=actor, restart=restart)
    return bulk_import_run(
        job=job, actor=actor, batch_size=batch_size, validate=validate, progress=progress, after_batch=after_batch
    )
