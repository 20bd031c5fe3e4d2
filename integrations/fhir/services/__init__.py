"""FHIR writes: plan and validate a payload (`plan`), apply it for a caller (`apply`, `records`),
and the ways in that store, apply and record it (`receive`)."""

from integrations.fhir.services.apply import (
    APPLY_ORDER,
    PATIENT_FIELD_ELEMENTS,
    Applier,
    EntryResult,
    entries_ordered,
)
from integrations.fhir.services.callers import FhirCaller, SystemPrincipal, caller_for, source_profile_for
from integrations.fhir.services.plan import STORED_TYPES, Entry, bundle_validate, entry_plan, resource_validate
from integrations.fhir.services.receive import (
    Received,
    batch_apply,
    fhir_process,
    fhir_receive,
    fhir_reprocess,
    transaction_apply,
)
from integrations.fhir.services.records import EntryFailed, RecordPlan

__all__ = [
    "APPLY_ORDER",
    "PATIENT_FIELD_ELEMENTS",
    "STORED_TYPES",
    "Applier",
    "Entry",
    "EntryFailed",
    "EntryResult",
    "FhirCaller",
    "Received",
    "RecordPlan",
    "SystemPrincipal",
    "batch_apply",
    "bundle_validate",
    "caller_for",
    "entries_ordered",
    "entry_plan",
    "fhir_process",
    "fhir_receive",
    "fhir_reprocess",
    "resource_validate",
    "source_profile_for",
    "transaction_apply",
]
