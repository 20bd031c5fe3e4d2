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

from integrations.fhir.bulk.jobs import (
    BATCH_SIZE,
    MAX_STORED_ERRORS,
    SOURCE_DEFAULT,
    bulk_import_file,
    bulk_import_job_for,
    bulk_import_run,
)
from integrations.fhir.bulk.mapping import (
    BulkLineError,
    MappingProfile,
    PatientRow,
    assigner_for,
    fhir_validation_error,
    patient_row_from_resource,
)

__all__ = [
    "BATCH_SIZE",
    "MAX_STORED_ERRORS",
    "SOURCE_DEFAULT",
    "BulkLineError",
    "MappingProfile",
    "PatientRow",
    "assigner_for",
    "bulk_import_file",
    "bulk_import_job_for",
    "bulk_import_run",
    "fhir_validation_error",
    "patient_row_from_resource",
]
