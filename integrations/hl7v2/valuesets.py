"""Named value sets: the sender's codes (HL7 tables and Chinese national standards) → archive values."""

from __future__ import annotations

# HL7 table 0002 and GB/T 2261.2 → patients.MaritalStatus.
MARITAL_STATUS = {
    "S": "10",
    "M": "20",
    "W": "30",
    "D": "40",
    "A": "90",
    "P": "90",
    "O": "90",
    "10": "10",
    "20": "20",
    "21": "20",
    "22": "20",
    "23": "20",
    "30": "30",
    "40": "40",
    "90": "90",
}

# HL7 table 0063 and GB/T 4761 (by its first digit, see `relationship`) → patients.Relationship.
RELATIONSHIP = {
    "SPO": "spouse",
    "WI": "spouse",
    "HU": "spouse",
    "DOM": "spouse",
    "FTH": "parent",
    "MTH": "parent",
    "PAR": "parent",
    "CHD": "child",
    "SON": "child",
    "DAU": "child",
    "STP": "child",
    "FCH": "child",
    "SIB": "sibling",
    "BRO": "sibling",
    "SIS": "sibling",
    "GRD": "guardian",
    "FND": "friend",
    "GRP": "relative",
    "GCH": "relative",
    "EXF": "relative",
    "UNC": "relative",
    "ANT": "relative",
    "COU": "relative",
    "NEP": "relative",
    "NIE": "relative",
    "REL": "relative",
}
_GB_T_4761 = {
    "1": "spouse",
    "2": "child",
    "3": "child",
    "4": "relative",
    "5": "parent",
    "6": "relative",
    "7": "sibling",
}
EMERGENCY_CONTACT_CODES = frozenset({"C", "EC", "EMC", "EMR", "EMERGENCY"})


def relationship(code: str) -> str:
    code = code.strip().upper()
    if code in RELATIONSHIP:
        return RELATIONSHIP[code]
    if code.isdigit() and len(code) == 2:
        return _GB_T_4761.get(code[0], "other")
    return "other"


# HL7 table 0004 (PV1-2) → (encounter kind, status when the message does not say otherwise); None: no encounter.
PATIENT_CLASS = {
    "O": ("outpatient", "in_progress"),
    "R": ("outpatient", "in_progress"),
    "C": ("outpatient", "in_progress"),
    "E": ("emergency", "in_progress"),
    "I": ("inpatient", "in_progress"),
    "B": ("inpatient", "in_progress"),
    "P": ("inpatient", "planned"),
    "N": None,
    "": None,
}

# HL7 table 0128 → patients.AllergySeverity.
ALLERGY_SEVERITY = {"SV": "severe", "MO": "moderate", "MI": "mild", "U": ""}

# HL7 table 0078 → patients.LabFlag.
LAB_FLAGS = {
    "N": "N",
    "NEG": "N",
    "L": "L",
    "<": "L",
    "H": "H",
    ">": "H",
    "LL": "LL",
    "HH": "HH",
    "A": "A",
    "AA": "A",
    "POS": "A",
    "U": "H",
    "D": "L",
}

# HL7 code systems (CWE-3) for lab tests → patients.LabCodeSystem.
LAB_CODE_SYSTEMS = {"LN": "loinc", "LOINC": "loinc"}

# PR1-3.3 coding systems → patients.ProcedureSystem; everything else is a local code.
PROCEDURE_SYSTEMS = {
    "I9C": "icd9cm3",
    "I9CP": "icd9cm3",
    "ICD9CM3": "icd9cm3",
    "ICD-9-CM-3": "icd9cm3",
    "ICD9CM": "icd9cm3",
    "TCM": "tcm_technique",
    "TCMT": "tcm_technique",
}

# HL7 table 0278 (SCH-25 filler status) → appointments.HisAppointmentStatus.
APPOINTMENT_STATUS = {
    "PENDING": "pending",
    "WAITLIST": "pending",
    "BOOKED": "booked",
    "OVERBOOK": "booked",
    "STARTED": "arrived",
    "COMPLETE": "completed",
    "CANCELLED": "cancelled",
    "DC": "cancelled",
    "DELETED": "cancelled",
    "NOSHOW": "noshow",
}

# Units of SCH-10 / AIS-8 durations, in minutes.
DURATION_UNITS = {"S": 1 / 60, "SEC": 1 / 60, "MIN": 1, "M": 1, "MINUTES": 1, "H": 60, "HR": 60, "HOURS": 60, "D": 1440}
