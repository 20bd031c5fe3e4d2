"""`manage.py seed_demo`: load (or complete) the demo hospital and print its logins."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from patients.demo.load import DemoError, seed_demo
from patients.models import Patient


class Command(BaseCommand):
    help = "Load a deterministic demo TCM hospital: departments, staff, patients and their clinical record."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=2000, help="Demo patients wanted in total (default 2000).")
        parser.add_argument("--seed", type=int, default=2026, help="Seed of the generated data (default 2026).")
        parser.add_argument("--batch-size", type=int, default=10_000, help="Patients per transaction (default 10000).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, patients: int, seed: int, batch_size: int, no_progress: bool, **options) -> None:
        if patients < 0 or batch_size < 1:
            raise CommandError("--patients must be 0 or more and --batch-size at least 1.")
        bars = []

        def progress(done: int, total: int):
            bar = tqdm(
                total=total,
                initial=done,
                unit="patient",
                file=sys.stderr,
                disable=no_progress or not sys.stderr.isatty(),
            )
            bars.append(bar)
            return bar.update

        try:
            result = seed_demo(patients=patients, seed=seed, batch_size=batch_size, progress=progress)
        except DemoError as error:
            raise CommandError(str(error)) from error
        finally:
            for bar in bars:
                bar.close()

        added = result.rows.get(Patient, 0)
        notes = [f"{sum(result.rows.values()):,} rows", f"{added / result.seconds:,.0f} patients/s"] if added else []
        if result.bulk:
            notes.append("indexes rebuilt after loading")
        if result.repaired:
            notes.append(f"{result.repaired} indexes left by an interrupted load rebuilt")
        self.stdout.write(
            f"Demo hospital (seed {seed}): {result.last_index:,} demo patients, {added:,} added"
            + (f" ({', '.join(notes)})" if notes else "")
            + f"; {result.staff_created} of {result.staff_total} staff and {result.departments_created} departments"
            f" created; {result.seconds:.1f} s."
        )
        for line in result.extras:
            self.stdout.write(f"  {line}")
        width = max(len(username) for username, _role, _password in [("username", "", ""), *result.logins])
        self.stdout.write("Demo logins:")
        self.stdout.write(f"  {'username':<{width}}  {'role':<15}  password")
        for username, role, password in result.logins:
            self.stdout.write(f"  {username:<{width}}  {role:<15}  {password}")
