"""Code systems and value sets used when mapping FHIR R4 to the archive and back.

Every coded element the mapping reads or writes is translated through a named table here, so a
reader sees in one place which FHIR codes the archive understands.
"""

from __future__ import annotations

import hashlib

# --- Identifier systems ---------------------------------------------------------------------------

# 居民身份证 (GB 11643) in the national health information standards' OID tree.
NATIONAL_ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
# The archive's own medical record numbers.
MRN_SYSTEM = "urn:hcrm:mrn"
# Assigning authorities that are not URIs (HL7 v2 namespace ids such as `HOSP`) are shown under this prefix.
ASSIGNER_PREFIX = "urn:hcrm:assigner:"
ASSIGNER_MAX_LENGTH = 64

# Well-known identifier systems and what they mean in the archive (a source profile may add more).
KNOWN_IDENTIFIER_SYSTEMS: dict[str, str] = {
    NATIONAL_ID_SYSTEM: "national_id",
    "urn:oid:2.16.156.10011.1.3.1": "national_id",
    "http://hl7.org/fhir/sid/us-ssn": "other",
    "http://hl7.org/fhir/sid/us-medicare": "insurance",
    "http://hl7.org/fhir/sid/us-mbi": "insurance",
    "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber": "passport",
    MRN_SYSTEM: "mrn",
}

# HL7 table 0203 identifier type codes (Identifier.type) that FHIR senders use, when the
# source profile does not list them.
IDENTIFIER_TYPE_MEANINGS: dict[str, str] = {
    "NI": "national_id",
    "NNCHN": "national_id",
    "MR": "mrn",
    "PI": "mrn",
    "PT": "mrn",
    "VN": "visit_card",
    "SN": "insurance",
    "HC": "insurance",
    "MC": "insurance",
    "PPN": "passport",
    "SS": "other",
    "DL": "other",
}

# Archive identifier kind for each meaning; MRN-type identifiers of other systems are HIS patient ids.
MEANING_KIND: dict[str, str] = {
    "mrn": "his",
    "visit_card": "visit_card",
    "insurance": "insurance",
    "passport": "passport",
    "other": "other",
}

KIND_TYPE_CODE: dict[str, tuple[str, str]] = {
    "his": ("PI", "Patient internal identifier"),
    "mrn": ("MR", "Medical record number"),
    "visit_card": ("VN", "Visit number"),
    "insurance": ("SN", "Subscriber Number"),
    "passport": ("PPN", "Passport number"),
}
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def assigner_for_system(system: str) -> str:
    """The archive's assigning authority for a FHIR identifier system (reversible unless it is very long)."""
    system = (system or "").strip()
    if system.startswith(ASSIGNER_PREFIX):
        return system[len(ASSIGNER_PREFIX) :][:ASSIGNER_MAX_LENGTH]
    if len(system) <= ASSIGNER_MAX_LENGTH:
        return system
    digest = hashlib.sha1(system.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{system[: ASSIGNER_MAX_LENGTH - 9]}#{digest}"


def system_for_assigner(assigner: str) -> str:
    if not assigner:
        return ""
    return assigner if ":" in assigner else ASSIGNER_PREFIX + assigner


# --- Administrative gender and marital status -------------------------------------------------------

GENDER_TO_SEX = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
SEX_TO_GENDER = {value: key for key, value in GENDER_TO_SEX.items()}

# v3 MaritalStatus → GB/T 2261.2.
MARITAL_STATUS = {"S": "10", "U": "10", "M": "20", "T": "20", "W": "30", "D": "40", "L": "40", "A": "40"}
MARITAL_STATUS_OUT = {"10": "S", "20": "M", "30": "W", "40": "D", "90": "UNK"}
MARITAL_STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"

LANGUAGES = {"zh": "zh-hans", "zh-cn": "zh-hans", "zh-hans": "zh-hans", "en": "en", "en-us": "en", "en-gb": "en"}

# --- Encounters -----------------------------------------------------------------------------------------

ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENCOUNTER_CLASS_TO_KIND = {
    "AMB": "outpatient",
    "HH": "outpatient",
    "VR": "outpatient",
    "FLD": "outpatient",
    "PRENC": "outpatient",
    "SS": "outpatient",
    "EMER": "emergency",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "OBSENC": "inpatient",
}
KIND_TO_ENCOUNTER_CLASS = {
    "outpatient": ("AMB", "ambulatory"),
    "emergency": ("EMER", "emergency"),
    "inpatient": ("IMP", "inpatient encounter"),
    "physical_exam": ("AMB", "ambulatory"),
}
ENCOUNTER_STATUS = {
    "planned": "planned",
    "arrived": "in_progress",
    "triaged": "in_progress",
    "in-progress": "in_progress",
    "onleave": "in_progress",
    "finished": "finished",
    "cancelled": "cancelled",
    "entered-in-error": "cancelled",
    "unknown": "finished",
}
ENCOUNTER_STATUS_OUT = {
    "planned": "planned",
    "in_progress": "in-progress",
    "finished": "finished",
    "cancelled": "cancelled",
}

# --- Diagnoses, procedures, lab results ----------------------------------------------------------------

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
TCM_DISEASE_SYSTEM = "urn:hcrm:CodeSystem:gbt15657-disease"
TCM_SYNDROME_SYSTEM = "urn:hcrm:CodeSystem:gbt15657-syndrome"
SNOMED_SYSTEM = "http://snomed.info/sct"

# FHIR code systems → archive diagnosis code systems; a source profile's `diagnosis_systems` may add more.
CONDITION_SYSTEMS: dict[str, str] = {
    ICD10_SYSTEM: "icd10",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10",
    "http://hl7.org/fhir/sid/icd-10-cn": "icd10",
    "urn:oid:2.16.840.1.113883.6.3": "icd10",
    TCM_DISEASE_SYSTEM: "tcm_disease",
    TCM_SYNDROME_SYSTEM: "tcm_syndrome",
    SNOMED_SYSTEM: "snomed",
}
CONDITION_SYSTEMS_OUT = {
    "icd10": ICD10_SYSTEM,
    "tcm_disease": TCM_DISEASE_SYSTEM,
    "tcm_syndrome": TCM_SYNDROME_SYSTEM,
    "snomed": SNOMED_SYSTEM,
}
CONDITION_CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"

PROCEDURE_SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-9-cm": "icd9cm3",
    "urn:oid:2.16.840.1.113883.6.104": "icd9cm3",
    "urn:hcrm:CodeSystem:tcm-technique": "tcm_technique",
}
PROCEDURE_SYSTEMS_OUT = {
    "icd9cm3": "http://hl7.org/fhir/sid/icd-9-cm",
    "tcm_technique": "urn:hcrm:CodeSystem:tcm-technique",
}
LOCAL_CODE_SYSTEM = "urn:hcrm:CodeSystem:local"
# SNOMED CT concept "Surgical procedure"; a Procedure in this category is recorded as surgery.
SURGICAL_PROCEDURE_CATEGORY = "387713003"

LOINC_SYSTEM = "http://loinc.org"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
INTERPRETATION_TO_FLAG = {
    "N": "N",
    "L": "L",
    "H": "H",
    "LL": "LL",
    "HH": "HH",
    "LU": "LL",
    "HU": "HH",
    "A": "A",
    "AA": "A",
}
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"

# --- Medication requests and allergies ---------------------------------------------------------------------

MEDICATION_STATUS = {
    "active": "active",
    "on-hold": "active",
    "draft": "active",
    "unknown": "active",
    "completed": "completed",
    "cancelled": "cancelled",
    "stopped": "cancelled",
    "entered-in-error": "cancelled",
}
MEDICATION_STATUS_OUT = {"active": "active", "completed": "completed", "cancelled": "cancelled"}
ALLERGY_SEVERITY = {"mild": "mild", "moderate": "moderate", "severe": "severe"}
ALLERGY_CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"

# --- Schedules, slots and appointments ----------------------------------------------------------------

CLINIC_LEVEL_SYSTEM = "urn:hcrm:CodeSystem:clinic-level"
DEPARTMENT_SYSTEM = "urn:hcrm:CodeSystem:department"
VISIT_NUMBER_SYSTEM = "urn:hcrm:visit-number"
APPOINTMENT_STATUS_OUT = {
    "held": "pending",
    "booked": "booked",
    "checked_in": "arrived",
    "no_show": "noshow",
    "cancelled": "cancelled",
    "expired": "cancelled",
}
# FHIR Appointment.status searched → the booking states it covers (an expired hold reads as cancelled).
APPOINTMENT_STATUS = {
    "pending": ("held",),
    "booked": ("booked",),
    "arrived": ("checked_in",),
    "noshow": ("no_show",),
    "cancelled": ("cancelled", "expired"),
}
SLOT_STATUSES = ("free", "busy", "busy-unavailable")
