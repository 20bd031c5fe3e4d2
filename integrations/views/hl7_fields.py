"""Names of the HL7 v2 fields the console shows, for the segments HCRM receives (v2.5.1 names)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

FIELD_NAMES: dict[str, dict[int, str]] = {
    "MSH": {
        1: _("Field separator"), 2: _("Encoding characters"), 3: _("Sending application"),
        4: _("Sending facility"), 5: _("Receiving application"), 6: _("Receiving facility"),
        7: _("Date/time of message"), 8: _("Security"), 9: _("Message type"), 10: _("Message control id"),
        11: _("Processing id"), 12: _("Version id"), 13: _("Sequence number"), 14: _("Continuation pointer"),
        15: _("Accept acknowledgment type"), 16: _("Application acknowledgment type"), 17: _("Country code"),
        18: _("Character set"), 19: _("Principal language of message"),
        20: _("Alternate character set handling scheme"), 21: _("Message profile identifier"),
    },
    "EVN": {
        1: _("Event type code"), 2: _("Recorded date/time"), 3: _("Date/time planned event"),
        4: _("Event reason code"), 5: _("Operator id"), 6: _("Event occurred"), 7: _("Event facility"),
    },
    "PID": {
        1: _("Set id"), 2: _("Patient id"), 3: _("Patient identifier list"), 4: _("Alternate patient id"),
        5: _("Patient name"), 6: _("Mother's maiden name"), 7: _("Date/time of birth"),
        8: _("Administrative sex"), 9: _("Patient alias"), 10: _("Race"), 11: _("Patient address"),
        12: _("County code"), 13: _("Phone number - home"), 14: _("Phone number - business"),
        15: _("Primary language"), 16: _("Marital status"), 17: _("Religion"), 18: _("Patient account number"),
        19: _("SSN number"), 20: _("Driver's license number"), 21: _("Mother's identifier"),
        22: _("Ethnic group"), 23: _("Birth place"), 24: _("Multiple birth indicator"), 25: _("Birth order"),
        26: _("Citizenship"), 27: _("Veterans military status"), 28: _("Nationality"),
        29: _("Patient death date and time"), 30: _("Patient death indicator"),
    },
    "PD1": {3: _("Patient primary facility"), 4: _("Patient primary care provider")},
    "NK1": {
        1: _("Set id"), 2: _("Name"), 3: _("Relationship"), 4: _("Address"), 5: _("Phone number"),
        6: _("Business phone number"), 7: _("Contact role"),
    },
    "PV1": {
        1: _("Set id"), 2: _("Patient class"), 3: _("Assigned patient location"), 4: _("Admission type"),
        5: _("Preadmit number"), 6: _("Prior patient location"), 7: _("Attending doctor"),
        8: _("Referring doctor"), 9: _("Consulting doctor"), 10: _("Hospital service"),
        14: _("Admit source"), 17: _("Admitting doctor"), 18: _("Patient type"), 19: _("Visit number"),
        36: _("Discharge disposition"), 44: _("Admit date/time"), 45: _("Discharge date/time"),
    },
    "PV2": {3: _("Admit reason"), 8: _("Expected admit date/time"), 9: _("Expected discharge date/time")},
    "DG1": {
        1: _("Set id"), 2: _("Diagnosis coding method"), 3: _("Diagnosis code"), 4: _("Diagnosis description"),
        5: _("Diagnosis date/time"), 6: _("Diagnosis type"), 16: _("Diagnosing clinician"),
    },
    "AL1": {
        1: _("Set id"), 2: _("Allergen type code"), 3: _("Allergen code"), 4: _("Allergy severity code"),
        5: _("Allergy reaction code"), 6: _("Identification date"),
    },
    "PR1": {
        1: _("Set id"), 2: _("Procedure coding method"), 3: _("Procedure code"), 4: _("Procedure description"),
        5: _("Procedure date/time"), 6: _("Procedure functional type"), 11: _("Surgeon"),
    },
    "IN1": {
        1: _("Set id"), 2: _("Insurance plan id"), 3: _("Insurance company id"), 4: _("Insurance company name"),
        36: _("Policy number"),
    },
    "ORC": {
        1: _("Order control"), 2: _("Placer order number"), 3: _("Filler order number"), 5: _("Order status"),
        9: _("Date/time of transaction"), 12: _("Ordering provider"),
    },
    "OBR": {
        1: _("Set id"), 2: _("Placer order number"), 3: _("Filler order number"),
        4: _("Universal service identifier"), 7: _("Observation date/time"), 16: _("Ordering provider"),
        22: _("Results report/status change date/time"), 25: _("Result status"),
    },
    "OBX": {
        1: _("Set id"), 2: _("Value type"), 3: _("Observation identifier"), 4: _("Observation sub-id"),
        5: _("Observation value"), 6: _("Units"), 7: _("Reference range"), 8: _("Abnormal flags"),
        11: _("Observation result status"), 14: _("Date/time of the observation"),
    },
    "NTE": {1: _("Set id"), 2: _("Source of comment"), 3: _("Comment"), 4: _("Comment type")},
    "MRG": {
        1: _("Prior patient identifier list"), 2: _("Prior alternate patient id"),
        3: _("Prior patient account number"), 4: _("Prior patient id"), 5: _("Prior visit number"),
        6: _("Prior alternate visit id"), 7: _("Prior patient name"),
    },
    "SCH": {
        1: _("Placer appointment id"), 2: _("Filler appointment id"), 6: _("Event reason"),
        7: _("Appointment reason"), 8: _("Appointment type"), 9: _("Appointment duration"),
        10: _("Appointment duration units"), 11: _("Appointment timing quantity"), 25: _("Filler status code"),
    },
    "RGS": {1: _("Set id"), 2: _("Segment action code")},
    "AIS": {1: _("Set id"), 3: _("Universal service identifier"), 4: _("Start date/time")},
    "AIG": {1: _("Set id"), 3: _("Resource id"), 4: _("Resource type")},
    "AIL": {1: _("Set id"), 3: _("Location resource id"), 6: _("Start date/time")},
    "AIP": {1: _("Set id"), 3: _("Personnel resource id"), 4: _("Resource type"), 6: _("Start date/time")},
    "MSA": {1: _("Acknowledgment code"), 2: _("Message control id"), 3: _("Text message")},
    "ERR": {
        1: _("Error code and location"), 2: _("Error location"), 3: _("HL7 error code"), 4: _("Severity"),
        8: _("User message"),
    },
    "FHS": {
        3: _("File sending application"), 4: _("File sending facility"), 7: _("File creation date/time"),
        11: _("File control id"),
    },
    "BHS": {
        3: _("Batch sending application"), 4: _("Batch sending facility"), 7: _("Batch creation date/time"),
        11: _("Batch control id"),
    },
    "BTS": {1: _("Batch message count"), 2: _("Batch comment")},
    "FTS": {1: _("File batch count"), 2: _("File trailer comment")},
}  # fmt: skip


def field_name(segment: str, number: int) -> str:
    """The field's name, or an empty string for fields and Z-segments without one here."""
    names = FIELD_NAMES.get(segment)
    if names is None:
        return ""
    name = names.get(number)
    return str(name) if name is not None else ""
