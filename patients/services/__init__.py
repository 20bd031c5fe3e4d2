"""Every write to the patient archive goes through a function in this package."""

from patients.services.archive import (
    PATIENT_FIELDS,
    consent_set,
    mrn_next,
    patient_create,
    patient_delete,
    patient_reveal,
    patient_tags_set,
    patient_update,
    record_create,
    record_delete,
    record_update,
)

__all__ = [
    "mrn_next",
    "patient_create",
    "patient_update",
    "patient_tags_set",
    "patient_delete",
    "patient_reveal",
    "consent_set",
    "record_create",
    "record_update",
    "record_delete",
    "PATIENT_FIELDS",
]
