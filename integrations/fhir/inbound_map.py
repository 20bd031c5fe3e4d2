"""FHIR R4 resources (already validated with fhir.resources) → archive fields. Pure functions.

Each mapper takes the resource as a JSON dict and the sender's `ProfileRules`, and returns plain
values; nothing here touches the database. A problem that makes a resource unusable raises
`MappingError` with the element path; one that only loses a detail is returned as a warning.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.fhir import codes
from integrations.fhir.outcome import Issue
from patients.models import Allergy, Diagnosis, Encounter, LabResult, MedicationOrder, Procedure
from patients.services.identity import IdentifierInput, PatientDemographics
from patients.validators import normalize_mobile, normalize_phone, validate_national_id

HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


class MappingError(Exception):
    def __init__(self, path: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.code = code


class Unsupported(Exception):
    """The resource is valid but holds nothing the archive can store (reported, not an error)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class ProfileRules:
    """What one sender's codes mean; built from its SourceProfile (see `rules_from_profile`)."""

    identifier_systems: dict[str, str] = field(default_factory=dict)
    identifier_types: dict[str, str] = field(default_factory=dict)
    mrn_assigner: str = ""
    condition_systems: dict[str, str] = field(default_factory=dict)
    department_codes: dict[str, str] = field(default_factory=dict)


DEFAULT_RULES = ProfileRules(
    identifier_systems=dict(codes.KNOWN_IDENTIFIER_SYSTEMS),
    identifier_types=dict(codes.IDENTIFIER_TYPE_MEANINGS),
    condition_systems=dict(codes.CONDITION_SYSTEMS),
)


def rules_from_profile(profile) -> ProfileRules:
    """A source profile's tables on top of the defaults: entries that look like URIs are systems, others type codes."""
    systems = dict(codes.KNOWN_IDENTIFIER_SYSTEMS)
    types = dict(codes.IDENTIFIER_TYPE_MEANINGS)
    for meaning, entries in (profile.identifier_types or {}).items():
        for entry in entries or ():
            (systems if ":" in entry else types)[entry] = meaning
    conditions = dict(codes.CONDITION_SYSTEMS)
    conditions.update({key: value for key, value in (profile.diagnosis_systems or {}).items() if ":" in key})
    return ProfileRules(
        identifier_systems=systems,
        identifier_types=types,
        mrn_assigner=profile.mrn_assigner or "",
        condition_systems=conditions,
        department_codes=dict(profile.department_codes or {}),
    )


# --- Small readers ------------------------------------------------------------------------------------


def parse_datetime(value: str | None, path: str) -> dt.datetime | None:
    """FHIR date or dateTime (also partial: `2012`, `2012-08`) → an aware datetime."""
    if not value:
        return None
    try:
        if len(value) == 4:
            parsed = dt.datetime(int(value), 1, 1)  # noqa: DTZ001 (made aware below)
        elif len(value) == 7:
            parsed = dt.datetime(int(value[:4]), int(value[5:7]), 1)  # noqa: DTZ001
        else:
            parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MappingError(path, _("Not a valid date and time: %(value)s.") % {"value": value}) from None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def parse_date(value: str | None) -> dt.date | None:
    if not value or len(value) < 10:
        return None  # a partial birth date (year or month) does not fit the archive's date
    return dt.date.fromisoformat(value[:10])


def concept_text(concept: dict | None) -> str:
    """A CodeableConcept as a person reads it: its text, or the first coding's display or code."""
    if not concept:
        return ""
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding") or ():
        if coding.get("display") or coding.get("code"):
            return coding.get("display") or coding["code"]
    return ""


def first_coding(concept: dict | None, systems: dict[str, str] | None = None) -> tuple[dict, str] | None:
    """The first coding (of one of `systems`, if given) and what its system maps to."""
    for coding in (concept or {}).get("coding") or ():
        if not coding.get("code"):
            continue
        if systems is None:
            return coding, ""
        target = systems.get(coding.get("system", ""))
        if target:
            return coding, target
    return None


def reference_of(value: dict | None) -> str:
    return (value or {}).get("reference") or ""


def period_start_end(resource: dict, element: str, path: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    period = resource.get(element) or {}
    return (
        parse_datetime(period.get("start"), f"{path}.start"),
        parse_datetime(period.get("end"), f"{path}.end"),
    )


def _cut(value: str, length: int) -> str:
    value = (value or "").strip()
    return value if len(value) <= length else value[: length - 1] + "…"


# --- Patient -------------------------------------------------------------------------------------------


def identifier_meaning(identifier: dict, rules: ProfileRules) -> str:
    system = identifier.get("system") or ""
    if system in rules.identifier_systems:
        return rules.identifier_systems[system]
    for coding in (identifier.get("type") or {}).get("coding") or ():
        meaning = rules.identifier_types.get(coding.get("code") or "")
        if meaning:
            return meaning
    return "other"


def identifier_search_terms(identifier: dict, rules: ProfileRules) -> tuple[str, str, str]:
    """(meaning, assigner, value) of a FHIR identifier, as the archive stores and searches it."""
    system = identifier.get("system") or ""
    return identifier_meaning(identifier, rules), codes.assigner_for_system(system), (identifier.get("value") or "")


def patient_name(resource: dict) -> str:
    names = resource.get("name") or []
    chosen = next((name for name in names if name.get("use") == "official"), None)
    chosen = chosen or next((name for name in names if name.get("use") not in ("old", "nickname")), None)
    if chosen is None:
        return ""
    if chosen.get("text"):
        return chosen["text"].strip()
    family = (chosen.get("family") or "").strip()
    given = [part.strip() for part in chosen.get("given") or () if part and part.strip()]
    if HAN.search(family + "".join(given)):
        return family + "".join(given)
    return " ".join([*given, family]).strip()


def patient_demographics(resource: dict, rules: ProfileRules) -> tuple[PatientDemographics, list[Issue]]:
    """A FHIR Patient → what the identity service matches and stores, with warnings for dropped details."""
    warnings: list[Issue] = []
    name = patient_name(resource)
    if not name:
        raise MappingError("name", _("A patient needs a name."), code="required")
    demographics = PatientDemographics(name=_cut(name, 100))
    demographics.sex = codes.GENDER_TO_SEX.get(resource.get("gender") or "", "")
    demographics.birth_date = parse_date(resource.get("birthDate"))
    if resource.get("birthDate") and demographics.birth_date is None:
        warnings.append(Issue("warning", "incomplete", _("A partial birth date is not stored."), ("birthDate",)))
    identifiers = []
    for index, identifier in enumerate(resource.get("identifier") or ()):
        value = (identifier.get("value") or "").strip()
        if not value or identifier.get("use") == "old":
            continue
        meaning = identifier_meaning(identifier, rules)
        system = identifier.get("system") or ""
        if meaning == "national_id":
            try:
                validate_national_id(value.upper())
            except ValidationError:
                warnings.append(
                    Issue(
                        "warning",
                        "value",
                        _("Not a valid resident ID number; kept as another identifier."),
                        (f"identifier[{index}].value",),
                    )
                )
                meaning = "other"
            else:
                demographics.national_id = value.upper()
                continue
        if meaning == "mrn" and rules.mrn_assigner and system == rules.mrn_assigner:
            demographics.mrn = value[:32]
        if len(value) > 64:
            warnings.append(
                Issue(
                    "warning",
                    "too-long",
                    _("Identifier longer than 64 characters; not stored."),
                    (f"identifier[{index}].value",),
                )
            )
            continue
        identifiers.append(
            IdentifierInput(kind=codes.MEANING_KIND[meaning], value=value, assigner=codes.assigner_for_system(system))
        )
    demographics.identifiers = identifiers
    for index, telecom in enumerate(resource.get("telecom") or ()):
        value = (telecom.get("value") or "").strip()
        if not value or telecom.get("period", {}).get("end"):
            continue
        path = f"telecom[{index}].value"
        if telecom.get("system") == "email":
            demographics.email = demographics.email or value[:254]
        elif telecom.get("system") in ("phone", "sms", None):
            try:
                mobile = normalize_mobile(value)
            except ValidationError:
                mobile = ""
            if mobile and not demographics.mobile:
                demographics.mobile = mobile
                continue
            try:
                phone = normalize_phone(value)
            except ValidationError:
                warnings.append(Issue("warning", "value", _("Not a valid phone number; not stored."), (path,)))
                continue
            demographics.phone = demographics.phone or phone
    addresses = [address for address in resource.get("address") or () if address.get("use") != "old"]
    if addresses:
        address = next((item for item in addresses if item.get("use") == "home"), addresses[0])
        demographics.province = _cut(address.get("state") or "", 30)
        demographics.city = _cut(address.get("city") or "", 30)
        demographics.district = _cut(address.get("district") or "", 30)
        demographics.address_detail = _cut(" ".join(address.get("line") or ()) or address.get("text") or "", 200)
        postal = (address.get("postalCode") or "").strip()
        if postal and len(postal) <= 6:
            demographics.postal_code = postal
    marital = first_coding(resource.get("maritalStatus"))
    if marital:
        demographics.marital_status = codes.MARITAL_STATUS.get(marital[0]["code"], "90")
    for communication in resource.get("communication") or ():
        coding = first_coding(communication.get("language"))
        language = codes.LANGUAGES.get((coding[0]["code"] if coding else "").lower())
        if language:
            demographics.preferred_language = language
            break
    if "deceasedBoolean" in resource:
        demographics.is_deceased = bool(resource["deceasedBoolean"])
    elif resource.get("deceasedDateTime"):
        demographics.is_deceased = True
        demographics.deceased_date = parse_date(resource["deceasedDateTime"])
    return demographics, warnings


# Elements an update (PUT) replaces: left out, the stored value is emptied. Identity (name, identifiers,
# national ID, sex, birth date) is never erased by omission.
REPLACEABLE_FIELDS = frozenset(
    {"mobile", "phone", "email", "province", "city", "district", "address_detail", "postal_code", "marital_status"}
)


def cleared_by_replace(demographics: PatientDemographics) -> frozenset[str]:
    return frozenset(name for name in REPLACEABLE_FIELDS if not getattr(demographics, name))


# --- Clinical resources --------------------------------------------------------------------------------------


@dataclass
class MappedRecord:
    """Archive fields of one clinical resource; `subject` and `encounter` are references to resolve."""

    model: type
    fields: dict[str, Any]
    subject: str
    subject_path: str
    encounter: str = ""
    encounter_path: str = ""
    # Used only when the record is created: the resource did not say, and an update must not change it.
    create_defaults: dict[str, Any] = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)


def _required_time(value: dt.datetime | None, path: str) -> dt.datetime:
    if value is None:
        raise MappingError(path, _("A date and time is required here."), code="required")
    return value


def encounter_fields(resource: dict, rules: ProfileRules) -> MappedRecord:
    klass = resource.get("class") or {}
    kind = codes.ENCOUNTER_CLASS_TO_KIND.get(klass.get("code") or "", "outpatient")
    started, ended = period_start_end(resource, "period", "period")
    department_code = ""
    for concept in [resource.get("serviceType"), *(resource.get("type") or ())]:
        coding = first_coding(concept)
        if coding and coding[0]["code"] in rules.department_codes:
            department_code = rules.department_codes[coding[0]["code"]]
            break
    participants = resource.get("participant") or []
    doctor = next(
        (p["individual"].get("display") for p in participants if (p.get("individual") or {}).get("display")), ""
    )
    identifiers = resource.get("identifier") or []
    reason = next((concept_text(concept) for concept in resource.get("reasonCode") or () if concept_text(concept)), "")
    return MappedRecord(
        model=Encounter,
        fields={
            "kind": kind,
            "status": codes.ENCOUNTER_STATUS.get(resource.get("status") or "", "finished"),
            "encounter_number": _cut(identifiers[0].get("value", "") if identifiers else "", 40),
            "department_code": department_code,
            "doctor_name": _cut(doctor, 100),
            "started_at": _required_time(started, "period.start"),
            "ended_at": ended,
            "chief_complaint": _cut(reason, 300),
        },
        subject=reference_of(resource.get("subject")),
        subject_path="subject",
    )


def condition_fields(resource: dict, rules: ProfileRules) -> MappedRecord:
    found = first_coding(resource.get("code"), rules.condition_systems)
    if found is None:
        systems = sorted({c.get("system", "") for c in (resource.get("code") or {}).get("coding") or ()})
        raise Unsupported(
            "code",
            _("No coding in a code system the archive stores (ICD-10, GB/T 15657); sent: %(systems)s.")
            % {"systems": ", ".join(systems) or "-"},
        )
    coding, system = found
    onset = resource.get("onsetDateTime") or (resource.get("onsetPeriod") or {}).get("start")
    diagnosed = parse_datetime(resource.get("recordedDate") or onset, "recordedDate")
    categories = [first_coding(concept) for concept in resource.get("category") or ()]
    return MappedRecord(
        model=Diagnosis,
        fields={
            "system": system,
            "code": _cut(coding["code"], 32).upper() if system == "icd10" else _cut(coding["code"], 32),
            "name": _cut(concept_text(resource.get("code")), 200),
            "is_primary": any(c and c[0]["code"] == "primary" for c in categories),
            "diagnosed_at": _required_time(diagnosed, "recordedDate"),
        },
        subject=reference_of(resource.get("subject")),
        subject_path="subject",
        encounter=reference_of(resource.get("encounter")),
        encounter_path="encounter",
    )


def _quantity_text(quantity: dict) -> str:
    value = quantity.get("value")
    unit = quantity.get("unit") or quantity.get("code") or ""
    return f"{value:g} {unit}".strip() if isinstance(value, (int, float)) else f"{value} {unit}".strip()


def _observation_value(resource: dict) -> tuple[str, float | None, str]:
    if "valueQuantity" in resource:
        quantity = resource["valueQuantity"]
        number = quantity.get("value")
        unit = quantity.get("unit") or quantity.get("code") or ""
        return (
            (f"{number:g}" if isinstance(number, (int, float)) else str(number or "")),
            (float(number) if isinstance(number, (int, float)) else None),
            unit,
        )
    for key in ("valueString", "valueDateTime", "valueTime"):
        if resource.get(key):
            return str(resource[key]), None, ""
    if "valueInteger" in resource:
        return str(resource["valueInteger"]), float(resource["valueInteger"]), ""
    if "valueBoolean" in resource:
        return ("true" if resource["valueBoolean"] else "false"), None, ""
    if resource.get("valueCodeableConcept"):
        return concept_text(resource["valueCodeableConcept"]), None, ""
    parts = []
    for component in resource.get("component") or ():
        label = concept_text(component.get("code"))
        value, _number, unit = _observation_value(component)
        if value:
            parts.append(f"{label} {value} {unit}".strip())
    if parts:
        return "; ".join(parts), None, ""
    if resource.get("dataAbsentReason"):
        return concept_text(resource["dataAbsentReason"]), None, ""
    return "", None, ""


def observation_fields(resource: dict, rules: ProfileRules) -> MappedRecord:
    code = resource.get("code") or {}
    loinc = first_coding(code, {codes.LOINC_SYSTEM: "loinc"})
    coding, system = loinc if loinc else (first_coding(code) or ({"code": ""}, ""))
    if not coding.get("code"):
        raise MappingError("code", _("An observation needs a coded test."), code="required")
    value, number, unit = _observation_value(resource)
    if not value:
        raise MappingError("value[x]", _("An observation needs a value or a data-absent reason."), code="required")
    effective = (
        resource.get("effectiveDateTime")
        or (resource.get("effectivePeriod") or {}).get("start")
        or resource.get("effectiveInstant")
        or resource.get("issued")
    )
    ranges = resource.get("referenceRange") or []
    reference = ""
    if ranges:
        first = ranges[0]
        if first.get("text"):
            reference = first["text"]
        else:
            low = _quantity_text(first["low"]) if first.get("low") else ""
            high = _quantity_text(first["high"]) if first.get("high") else ""
            reference = f"{low} - {high}".strip(" -") if low or high else ""
    flag = ""
    for concept in resource.get("interpretation") or ():
        found = first_coding(concept)
        if found and found[0]["code"] in codes.INTERPRETATION_TO_FLAG:
            flag = codes.INTERPRETATION_TO_FLAG[found[0]["code"]]
            break
    category = next((concept_text(concept) for concept in resource.get("category") or () if concept_text(concept)), "")
    notes = "\n".join(note.get("text", "") for note in resource.get("note") or () if note.get("text"))
    return MappedRecord(
        model=LabResult,
        fields={
            "panel_name": _cut(category, 100),
            "code_system": system or "local",
            "code": _cut(coding["code"], 32),
            "name": _cut(concept_text(code), 100),
            "value": _cut(value, 200),
            "value_numeric": number,
            "unit": _cut(unit, 30),
            "reference_range": _cut(reference, 60),
            "abnormal_flag": flag,
            "observed_at": _required_time(parse_datetime(effective, "effective[x]"), "effective[x]"),
            "note": notes,
        },
        subject=reference_of(resource.get("subject")),
        subject_path="subject",
        encounter=reference_of(resource.get("encounter")),
        encounter_path="encounter",
    )


def procedure_fields(resource: dict, rules: ProfileRules) -> MappedRecord:
    code = resource.get("code") or {}
    found = first_coding(code, codes.PROCEDURE_SYSTEMS) or first_coding(code)
    coding, system = found if found else ({"code": ""}, "")
    name = concept_text(code)
    if not name:
        raise MappingError("code", _("A procedure needs a code or a name."), code="required")
    performed = resource.get("performedDateTime") or (resource.get("performedPeriod") or {}).get("start")
    categories = (resource.get("category") or {}).get("coding") or []
    performers = resource.get("performer") or []
    performer = next((p["actor"].get("display") for p in performers if (p.get("actor") or {}).get("display")), "")
    notes = "\n".join(note.get("text", "") for note in resource.get("note") or () if note.get("text"))
    return MappedRecord(
        model=Procedure,
        fields={
            "system": system or "local",
            "code": _cut(coding.get("code", ""), 32),
            "name": _cut(name, 200),
            "is_surgery": any(c.get("code") == codes.SURGICAL_PROCEDURE_CATEGORY for c in categories),
            "body_site": _cut(next((concept_text(c) for c in resource.get("bodySite") or ()), ""), 100),
            "performed_at": _required_time(parse_datetime(performed, "performed[x]"), "performed[x]"),
            "performer_name": _cut(performer, 100),
            "note": notes,
        },
        subject=reference_of(resource.get("subject")),
        subject_path="subject",
        encounter=reference_of(resource.get("encounter")),
        encounter_path="encounter",
    )


def medication_request_fields(resource: dict, rules: ProfileRules) -> MappedRecord:
    concept = resource.get("medicationCodeableConcept")
    name = concept_text(concept) or (resource.get("medicationReference") or {}).get("display", "")
    if not name:
        raise MappingError("medication[x]", _("A medication request needs a named medication."), code="required")
    coding = first_coding(concept)
    dosage = (resource.get("dosageInstruction") or [{}])[0]
    dose = ""
    for rate in dosage.get("doseAndRate") or ():
        if rate.get("doseQuantity"):
            dose = _quantity_text(rate["doseQuantity"])
            break
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency = concept_text((dosage.get("timing") or {}).get("code"))
    if not frequency and repeat.get("frequency"):
        frequency = f"{repeat['frequency']}/{repeat.get('period', 1):g} {repeat.get('periodUnit', '')}".strip()
    supply = (resource.get("dispenseRequest") or {}).get("expectedSupplyDuration") or {}
    days = (
        int(supply["value"])
        if supply.get("value") and supply.get("code", supply.get("unit")) in ("d", "day", "days")
        else None
    )
    authored = _required_time(parse_datetime(resource.get("authoredOn"), "authoredOn"), "authoredOn")
    return MappedRecord(
        model=MedicationOrder,
        fields={
            "kind": "western",
            "status": codes.MEDICATION_STATUS.get(resource.get("status") or "", "active"),
            "name": _cut(name, 200),
            "code": _cut(coding[0]["code"], 32) if coding else "",
            "dose": _cut(dose or dosage.get("text", ""), 50),
            "route": _cut(concept_text(dosage.get("route")), 30),
            "frequency": _cut(frequency, 50),
            "days": days,
            "ordered_at": authored,
        },
        subject=reference_of(resource.get("subject")),
        subject_path="subject",
        encounter=reference_of(resource.get("encounter")),
        encounter_path="encounter",
    )


def allergy_fields(resource: dict, rules: ProfileRules) -> MappedRecord:
    substance = concept_text(resource.get("code"))
    if not substance:
        raise MappingError("code", _("An allergy needs the substance."), code="required")
    coding = first_coding(resource.get("code"))
    reactions = resource.get("reaction") or []
    reaction_text = ""
    severity = ""
    if reactions:
        manifestations = [concept_text(m) for m in reactions[0].get("manifestation") or ()]
        reaction_text = reactions[0].get("description") or ", ".join(text for text in manifestations if text)
        severity = codes.ALLERGY_SEVERITY.get(reactions[0].get("severity") or "", "")
    clinical = first_coding(resource.get("clinicalStatus"))
    recorded = parse_datetime(resource.get("recordedDate") or resource.get("onsetDateTime"), "recordedDate")
    fields: dict[str, Any] = {
        "substance": _cut(substance, 100),
        "code": _cut(coding[0]["code"], 32) if coding else "",
        "reaction": _cut(reaction_text, 200),
        "severity": severity,
        "is_active": clinical is None or clinical[0]["code"] == "active",
    }
    record = MappedRecord(
        model=Allergy, fields=fields, subject=reference_of(resource.get("patient")), subject_path="patient"
    )
    if recorded is not None:
        fields["recorded_at"] = recorded
    else:
        record.create_defaults["recorded_at"] = timezone.now()
    return record


CLINICAL_MAPPERS = {
    "Encounter": encounter_fields,
    "Condition": condition_fields,
    "Observation": observation_fields,
    "Procedure": procedure_fields,
    "MedicationRequest": medication_request_fields,
    "AllergyIntolerance": allergy_fields,
}
