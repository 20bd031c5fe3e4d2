"""Bulk import jobs: create or resume a job for a file and run it batch by batch, committing its position."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from integrations.fhir.bulk.batch import BatchOutcome, IdentityRace
from integrations.fhir.bulk.mapping import MappingProfile
from integrations.fhir.bulk.orm_writer import OrmWriter
from integrations.fhir.bulk.postgres_writer import PostgresWriter
from integrations.fhir.bulk.reading import Chunk, file_digest, read_ahead, read_chunks
from integrations.models import BulkImport, Protocol, SourceProfile

BATCH_SIZE = 50_000
# The first batch is smaller: the database starts applying it while the reader maps the next one,
# instead of waiting for a whole batch to be mapped first.
FIRST_BATCH_SIZE = 5_000
MAX_STORED_ERRORS = 1_000
SOURCE_DEFAULT = "fhir-bulk"


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
    chunks = read_ahead(
        read_chunks(
            path,
            start_offset=job.bytes_done,
            start_line=job.lines_done,
            batch_size=batch_size,
            profile=profile,
            validate=validate,
            first_batch_size=FIRST_BATCH_SIZE,
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
