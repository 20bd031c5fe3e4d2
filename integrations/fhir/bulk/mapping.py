"""Bulk import, mapping: one NDJSON Patient resource → the row the writers apply. Pure functions."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from integrations.fhir import codes
from integrations.fhir.inbound_map import DEFAULT_RULES, ProfileRules, identifier_meaning, rules_from_profile
from integrations.fhir.outcome import model_issues
from integrations.models import SourceProfile
from patients.models import IdentifierKind, Patient, PatientIdentifier
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
PINYIN_FIELDS = ("name_pinyin", "name_pinyin_initials", "name_pinyin_consonants")
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
            for name in PINYIN_FIELDS:
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
    except (KeyError, ValueError, TypeError):
        issue = model_issues(model, resource, str(resource_type))[0]
        return BulkLineError(issue.expression[0], issue.diagnostics)
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
