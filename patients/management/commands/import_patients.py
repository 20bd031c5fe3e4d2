"""`python manage.py import_patients FILE [--dry-run] [--good-rows-only]`: the console's import, from a shell."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from hcrm.models import Department
from patients.models import ImportMode, ImportStatus, PatientImport
from patients.services import imports as services

# Exit codes: 0 imported (or a clean dry run), 1 bad rows and nothing imported, 2 the file could not be read.
EXIT_BAD_ROWS = 1
EXIT_UNREADABLE = 2


class Command(BaseCommand):
    help = (
        "Check a CSV or XLSX file of patients and import it through identity matching. "
        "A file with bad rows imports nothing unless --good-rows-only is given."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Check every row and import nothing.")
        parser.add_argument("--good-rows-only", action="store_true", help="Import the good rows and skip bad ones.")
        parser.add_argument("--user", help="Username recorded as the importer (audited as theirs).")
        parser.add_argument(
            "--department", action="append", default=[], help="Department code linked to created patients."
        )
        parser.add_argument("--assigner", default="", help="Who issued the visit card and insurance numbers.")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.", returncode=EXIT_UNREADABLE)
        actor = self._user(options["user"])
        departments = list(Department.objects.filter(code__in=options["department"]))
        missing = sorted(set(options["department"]) - {department.code for department in departments})
        if missing:
            raise CommandError(f"Unknown department code: {', '.join(missing)}.", returncode=EXIT_UNREADABLE)
        with path.open("rb") as stream:
            try:
                patient_import = services.patient_import_create(
                    actor=actor,
                    upload=File(stream, name=path.name),
                    original_name=path.name,
                    assigner=options["assigner"],
                )
            except ValidationError as error:
                raise CommandError(f"{path.name}: {' '.join(error.messages)}", returncode=EXIT_UNREADABLE) from None
        self._report(patient_import)
        if options["dry_run"]:
            if patient_import.bad_rows:
                raise CommandError(
                    f"{patient_import.bad_rows} bad rows; nothing imported (dry run).", returncode=EXIT_BAD_ROWS
                )
            self.stdout.write(f"All {patient_import.total_rows} rows are good; nothing imported (dry run).")
            return
        if patient_import.bad_rows and not options["good_rows_only"]:
            raise CommandError(
                f"{patient_import.bad_rows} bad rows; nothing imported. "
                "Correct the file, or run again with --good-rows-only to skip them.",
                returncode=EXIT_BAD_ROWS,
            )
        mode = ImportMode.GOOD_ROWS_ONLY if options["good_rows_only"] else ImportMode.ALL_OR_NOTHING
        try:
            patient_import = services.patient_import_run(
                patient_import=patient_import, actor=actor, mode=mode, default_departments=departments
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages), returncode=EXIT_BAD_ROWS) from None
        if patient_import.status != ImportStatus.IMPORTED:
            self._report(patient_import, only_new=True)
            raise CommandError(patient_import.error, returncode=EXIT_BAD_ROWS)
        if patient_import.report:
            self._report(patient_import, only_new=True)
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {path.name}: {patient_import.created_count} created, {patient_import.updated_count} updated, "
                f"{patient_import.unchanged_count} unchanged, {patient_import.skipped_count} skipped, "
                f"{patient_import.review_count} queued for review."
            )
        )

    def _user(self, username: str | None):
        if not username:
            return None
        try:
            return get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {username!r}.", returncode=EXIT_UNREADABLE) from None

    def _report(self, patient_import: PatientImport, *, only_new: bool = False) -> None:
        if not only_new:
            self.stdout.write(
                f"{patient_import.original_name}: {patient_import.total_rows} rows, "
                f"{patient_import.bad_rows} bad, columns: "
                + ", ".join(f"{header}→{field}" for field, header in patient_import.columns.items())
            )
            if patient_import.ignored_columns:
                self.stdout.write("Ignored columns: " + ", ".join(patient_import.ignored_columns))
        for entry in patient_import.report:
            self.stdout.write(f"row {entry['row']}\t{entry['field']}\t{entry['code']}\t{entry['message']}")
