"""`manage.py fhir_import FILE.ndjson [FILE.ndjson.gz ...]`: FHIR Bulk Data exports into the archive."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from integrations.fhir.bulk import BATCH_SIZE, SOURCE_DEFAULT, bulk_import_job_for, bulk_import_run


class Command(BaseCommand):
    help = (
        "Import FHIR R4 NDJSON files (one resource per line, plain or .gz). An interrupted import of the same "
        "file resumes after its last committed batch; importing the same file again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", type=Path, help="NDJSON files, optionally gzip-compressed (.gz).")
        parser.add_argument(
            "--source",
            default=SOURCE_DEFAULT,
            help=f"Name of the sending system: its FHIR source profile and the assigner of its resource ids "
            f"(default {SOURCE_DEFAULT}).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"Lines per commit (default {BATCH_SIZE})."
        )
        parser.add_argument(
            "--validate",
            action="store_true",
            help="Also validate every resource with fhir.resources (R4B models); slower.",
        )
        parser.add_argument(
            "--restart", action="store_true", help="Start over instead of resuming an unfinished import."
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, **options) -> None:
        missing = [str(path) for path in options["files"] if not path.is_file()]
        if missing:
            raise CommandError(f"No such file: {', '.join(missing)}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        failed = 0
        for path in options["files"]:
            job = bulk_import_job_for(path=path.resolve(), source=options["source"], restart=options["restart"])
            if job.lines_done:
                self.stdout.write(f"{path}: resuming after line {job.lines_done:,}")
            bar = tqdm(
                total=job.size,
                initial=min(job.bytes_done, job.size),
                unit="B",
                unit_scale=True,
                desc=path.name,
                disable=options["no_progress"],
            )

            def progress(position: int, bar=bar) -> None:
                bar.update(max(0, position - bar.n))

            try:
                job = bulk_import_run(
                    job=job, batch_size=options["batch_size"], validate=options["validate"], progress=progress
                )
            finally:
                bar.close()
            self.stdout.write(
                f"{path}: {job.lines_done:,} lines; patients created {job.created_count:,}, updated "
                f"{job.updated_count:,}, unchanged {job.unchanged_count:,}; possible duplicates for review "
                f"{job.candidate_count:,}; lines refused {job.error_count:,}"
            )
            for error in job.errors:
                self.stdout.write(f"  line {error['line']}: {error['location']}: {error['message']}")
            if job.error_count > len(job.errors):
                self.stdout.write(f"  … and {job.error_count - len(job.errors):,} more")
            failed += job.error_count
        if failed:
            self.stderr.write(self.style.WARNING(f"{failed:,} lines were refused; the others were imported."))
