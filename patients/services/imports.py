"""Patients from spreadsheets: upload and check every row (the dry run), then import through the identity service."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.models import Department
from patients.imports import ImportFileError, Lookups, ParsedRow, RowError, columns_map, rows_parse, sheet_open
from patients.imports.reading import file_format_detect
from patients.models import ImportMode, ImportStatus, PatientDepartment, PatientImport, PatientSource, Tag
from patients.services.archive import patient_update
from patients.services.identity import patient_match_or_create

_CHUNK = 1 << 16
# The background import's limit; a file that needs longer must be split.
IMPORT_TIME_LIMIT = 3600
PROGRESS_EVERY = 250


def import_max_bytes() -> int:
    return settings.PATIENT_IMPORT_MAX_MB * 1024 * 1024


def _file_error(message: str, code: str) -> ValidationError:
    return ValidationError({"file": ValidationError(message, code=code)})


def _binary(stream):
    """The real file object under Django's File wrappers, which io.TextIOWrapper cannot read through."""
    while isinstance(stream, File):
        stream = stream.file
    return stream


@contextmanager
def _rows(
    patient_import: PatientImport, lookups: Lookups
) -> Iterator[tuple[dict[str, str], list[str], Iterator[ParsedRow]]]:
    """(recognised columns, ignored headers, parsed rows) of the stored file, streamed."""
    with (
        patient_import.file.open("rb") as stored,
        sheet_open(_binary(stored), name=patient_import.original_name) as sheet,
    ):
        mapping = columns_map(sheet.header)
        if "name" not in mapping.index:
            raise ImportFileError(
                _("The first row must hold the column headers, with at least a name column (姓名 or name).")
            )
        rows = rows_parse(sheet.rows, mapping.index, lookups, assigner=patient_import.assigner)
        yield mapping.headers, mapping.ignored + mapping.duplicated, rows


def patient_import_create(*, actor, upload: File, original_name: str = "", assigner: str = "") -> PatientImport:
    """Store an uploaded spreadsheet and check every row (the dry run); nothing is imported yet."""
    name = (original_name or upload.name or "patients.csv").rsplit("/", 1)[-1][:255]
    size = upload.size or 0
    if size > import_max_bytes():
        raise _file_error(
            _("The file is %(size)s MB; files up to %(limit)s MB can be imported. Split it into smaller files.")
            % {"size": round(size / 1024 / 1024, 1), "limit": settings.PATIENT_IMPORT_MAX_MB},
            "too_large",
        )
    if size == 0:
        raise _file_error(_("The file is empty."), "empty")
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks(_CHUNK):
        digest.update(chunk)
    upload.seek(0)
    try:
        file_format = file_format_detect(upload.read(8), name)
    except ImportFileError as error:
        raise _file_error(str(error), "format") from None
    upload.seek(0)
    patient_import = PatientImport(
        original_name=name,
        file_format=file_format,
        size=size,
        sha256=digest.hexdigest(),
        uploaded_by=actor if getattr(actor, "pk", None) else None,
        assigner=assigner.strip(),
    )
    patient_import.file.save(name, upload, save=False)
    try:
        _dry_run(patient_import)
    except ImportFileError as error:
        patient_import.file.delete(save=False)
        raise _file_error(str(error), "unreadable") from None
    with transaction.atomic(), audit_acting_as(actor):
        patient_import.save()
        audit_write(
            event=Event.CREATE,
            instance=patient_import,
            details={"file": name, "sha256": patient_import.sha256, "rows": patient_import.total_rows},
        )
    return patient_import


def _dry_run(patient_import: PatientImport) -> None:
    report: list[dict] = []
    total = bad = 0
    with _rows(patient_import, Lookups.load()) as (columns, ignored, rows):
        for parsed in rows:
            total += 1
            if parsed.errors:
                bad += 1
                report.extend(error.as_dict() for error in parsed.errors)
    if total == 0:
        raise ImportFileError(_("The file has a header row but no patients below it."))
    patient_import.columns = columns
    patient_import.ignored_columns = ignored
    patient_import.total_rows = total
    patient_import.bad_rows = bad
    patient_import.report = report


@dataclass
class _Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    review: int = 0
    bad_rows: int = 0
    total: int = 0
    report: list[dict] = field(default_factory=list)


class _Refused(Exception):
    """An all-or-nothing import met a bad row: everything it wrote is rolled back."""


def _refuse_early(patient_import: PatientImport, mode: str) -> None:
    """The checks that need no lock: a wrong mode, an imported file, bad rows of the dry run in all-or-nothing mode."""
    if mode not in ImportMode.values:
        raise ValidationError({"mode": ValidationError(_("Choose how to import the file."), code="invalid")})
    if patient_import.status == ImportStatus.IMPORTED:
        raise ValidationError(_("This file has already been imported."), code="imported")
    if patient_import.status == ImportStatus.FAILED:
        return  # its counts are those of the failed run; running again checks every row afresh
    if patient_import.good_rows <= 0:
        raise ValidationError(_("This file has no good rows to import."), code="nothing")
    if mode == ImportMode.ALL_OR_NOTHING and patient_import.bad_rows:
        raise ValidationError(
            {
                "mode": ValidationError(
                    _("The file has %(count)s bad rows: correct them, or import only the good rows.")
                    % {"count": patient_import.bad_rows},
                    code="bad_rows",
                )
            }
        )


def import_stale_before():
    """An import marked as running since before this has died with its worker and may be started again."""
    return timezone.now() - dt.timedelta(seconds=IMPORT_TIME_LIMIT + 60)


def patient_import_start(
    *, patient_import: PatientImport, actor, mode: str, default_departments: Iterable[Department] = ()
) -> PatientImport:
    """Claim a checked file for import and hand the work to a background task (large files outlast a request)."""
    from patients.tasks.imports import patient_import_task

    _refuse_early(patient_import, mode)
    startable = Q(status__in=[ImportStatus.DRY_RUN, ImportStatus.FAILED]) | Q(
        status=ImportStatus.IMPORTING, started_at__lt=import_stale_before()
    )
    with transaction.atomic(), audit_acting_as(actor):
        claimed = PatientImport.objects.filter(startable, pk=patient_import.pk).update(
            status=ImportStatus.IMPORTING,
            mode=mode,
            imported_by=actor if getattr(actor, "pk", None) else None,
            started_at=timezone.now(),
            error="",
        )
        if not claimed:
            raise ValidationError(_("This file is being imported or has been imported already."), code="running")
        patient_import.refresh_from_db()
        audit_write(event=Event.UPDATE, instance=patient_import, details={"mode": mode, "started": True})
        actor_id = actor.pk if getattr(actor, "pk", None) else None
        department_ids = [department.pk for department in default_departments]
        transaction.on_commit(
            lambda: patient_import_task.delay(
                import_id=patient_import.pk, actor_id=actor_id, mode=mode, department_ids=department_ids
            )
        )
    return patient_import


def import_progress(patient_import: PatientImport) -> int:
    """Rows a running import has been through (kept in the cache: the import's own transaction hides its writes)."""
    return cache.get(_progress_key(patient_import), 0)


def _progress_key(patient_import: PatientImport) -> str:
    return f"patients:import-progress:{patient_import.uuid}"


def patient_import_run(
    *, patient_import: PatientImport, actor, mode: str, default_departments: Iterable[Department] = ()
) -> PatientImport:
    """Import a checked file through the identity service: every row in one transaction or none, or only the good rows.

    `default_departments` are linked to patients this import creates from rows that name no department
    (the importer's own, so they can see whom they registered).
    """
    _refuse_early(patient_import, mode)
    lookups = Lookups.load()
    tags = {tag.name: tag for tag in Tag.objects.all()}
    departments = {department.code: department for department in Department.objects.filter(is_active=True)}
    defaults = list(default_departments)
    tally = _Tally()
    progress = _progress_key(patient_import)
    try:
        with transaction.atomic(), audit_acting_as(actor):
            locked = PatientImport.objects.select_for_update().get(pk=patient_import.pk)
            if locked.status == ImportStatus.IMPORTED:
                raise ValidationError(_("This file has already been imported."), code="imported")
            with _rows(locked, lookups) as (_columns, _ignored, rows):
                for parsed in rows:
                    tally.total += 1
                    _row_import(
                        parsed,
                        tally,
                        mode=mode,
                        actor=actor,
                        tags=tags,
                        departments=departments,
                        defaults=defaults,
                        system=locked.original_name,
                    )
                    if tally.total % PROGRESS_EVERY == 0:
                        cache.set(progress, tally.total, IMPORT_TIME_LIMIT)
            if mode == ImportMode.ALL_OR_NOTHING and tally.bad_rows:
                raise _Refused
            locked.status = ImportStatus.IMPORTED
            locked.error = ""
            _finish(locked, tally, mode=mode, actor=actor)
            audit_write(event=Event.UPDATE, instance=locked, details={"mode": mode, **_counts(locked)})
    except _Refused:
        message = _("Nothing was imported: %(count)s rows failed.") % {"count": tally.bad_rows}
        _failed(patient_import, tally, mode=mode, actor=actor, error=message)
    except ImportFileError as error:
        _failed(patient_import, tally, mode=mode, actor=actor, error=str(error))
    except SoftTimeLimitExceeded:
        message = _("The import took too long and was stopped; nothing was imported. Split the file into smaller ones.")
        _failed(patient_import, tally, mode=mode, actor=actor, error=message)
    except ValidationError:
        raise
    except Exception:
        # Rolled back; the row must not stay "importing" until it goes stale.
        message = _("The import stopped on an unexpected error; nothing was imported.")
        _failed(patient_import, tally, mode=mode, actor=actor, error=message)
        raise
    finally:
        cache.delete(progress)
    patient_import.refresh_from_db()
    return patient_import


def _row_import(
    parsed: ParsedRow,
    tally: _Tally,
    *,
    mode: str,
    actor,
    tags: dict[str, Tag],
    departments: dict[str, Department],
    defaults: list[Department],
    system: str,
) -> None:
    errors = list(parsed.errors)
    if not errors and not (mode == ImportMode.ALL_OR_NOTHING and tally.bad_rows):
        # Only rows that may be skipped need a savepoint; all-or-nothing rolls everything back anyway.
        guard = transaction.atomic() if mode == ImportMode.GOOD_ROWS_ONLY else nullcontext()
        try:
            with guard:
                outcome, queued = _patient_apply(
                    parsed, actor=actor, tags=tags, departments=departments, defaults=defaults, system=system
                )
        except ValidationError as error:
            errors = _service_errors(parsed.row, error)
        else:
            setattr(tally, outcome, getattr(tally, outcome) + 1)
            tally.review += queued
    if errors:
        tally.bad_rows += 1
        tally.skipped += 1
        tally.report.extend(error.as_dict() for error in errors)


def _service_errors(row: int, error: ValidationError) -> list[RowError]:
    if hasattr(error, "error_dict"):
        items = [(name, item) for name, items in error.error_dict.items() for item in items]
    else:
        items = [("", item) for item in error.error_list]
    return [
        RowError(row, "" if name == "__all__" else name, item.code or "invalid", message)
        for name, item in items
        for message in item.messages
    ]


def _patient_apply(
    parsed: ParsedRow,
    *,
    actor,
    tags: dict[str, Tag],
    departments: dict[str, Department],
    defaults: list[Department],
    system: str,
) -> tuple[str, int]:
    """One good row through the identity service; ("created" | "updated" | "unchanged", 1 if queued for review)."""
    started = timezone.now()
    outcome = patient_match_or_create(
        demographics=parsed.demographics, source=PatientSource.SPREADSHEET, actor=actor, system=system
    )
    patient = outcome.patient
    changed = patient.updated_at >= started
    if outcome.created:
        # The sheet's 来源 says how the patient first came; it does not rewrite an existing patient's history.
        source = parsed.source or PatientSource.SPREADSHEET
        if patient.source != source:
            patient_update(actor=actor, patient=patient, data={"source": source})
    if parsed.tags:
        present = set(patient.tags.values_list("name", flat=True))
        missing = [tags[name] for name in parsed.tags if name not in present]
        if missing:
            patient.tags.add(*missing)
            changed = True
    wanted = [departments[code] for code in parsed.departments] or (defaults if outcome.created else [])
    if wanted:
        linked = set(PatientDepartment.objects.filter(patient=patient).values_list("department_id", flat=True))
        for department in wanted:
            if department.pk not in linked:
                PatientDepartment.objects.create(patient=patient, department=department)
                changed = True
    if outcome.created:
        return "created", int(bool(outcome.candidates))
    return ("updated" if changed else "unchanged"), int(bool(outcome.candidates))


def _counts(patient_import: PatientImport) -> dict[str, int]:
    return {
        "rows": patient_import.total_rows,
        "created": patient_import.created_count,
        "updated": patient_import.updated_count,
        "unchanged": patient_import.unchanged_count,
        "skipped": patient_import.skipped_count,
        "queued_for_review": patient_import.review_count,
    }


def _finish(patient_import: PatientImport, tally: _Tally, *, mode: str, actor) -> None:
    patient_import.mode = mode
    patient_import.total_rows = tally.total
    patient_import.bad_rows = tally.bad_rows
    patient_import.created_count = tally.created
    patient_import.updated_count = tally.updated
    patient_import.unchanged_count = tally.unchanged
    patient_import.skipped_count = tally.skipped
    patient_import.review_count = tally.review
    patient_import.report = tally.report
    patient_import.imported_by = actor if getattr(actor, "pk", None) else None
    patient_import.finished_at = timezone.now()
    patient_import.save()


def _failed(patient_import: PatientImport, tally: _Tally, *, mode: str, actor, error: str) -> PatientImport:
    """Record why an import wrote nothing; its counts say what the rolled-back run met, nothing was kept."""
    with transaction.atomic(), audit_acting_as(actor):
        failed = PatientImport.objects.select_for_update().get(pk=patient_import.pk)
        if failed.status == ImportStatus.IMPORTED:
            return failed  # a concurrent run finished first
        failed.status = ImportStatus.FAILED
        failed.error = error
        tally.created = tally.updated = tally.unchanged = tally.review = 0
        tally.skipped = tally.total
        _finish(failed, tally, mode=mode, actor=actor)
        audit_write(event=Event.UPDATE, instance=failed, details={"mode": mode, "error": error, **_counts(failed)})
    return failed
