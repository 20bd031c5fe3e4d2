"""`manage.py generate_schedules --weeks N`: create the sessions of the weekly templates for the coming weeks."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from appointments.services import schedules_generate


class Command(BaseCommand):
    help = "Create clinic sessions and their slots from the active weekly templates; existing sessions are kept."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--weeks",
            type=int,
            default=settings.SCHEDULE_WEEKS_AHEAD,
            help=f"Weeks ahead, from today (default {settings.SCHEDULE_WEEKS_AHEAD}).",
        )
        parser.add_argument("--start", type=dt.date.fromisoformat, help="First day (YYYY-MM-DD); default today.")

    def handle(self, *args, weeks: int, start: dt.date | None, **options) -> None:
        if weeks < 1:
            raise CommandError("--weeks must be at least 1.")
        start = start or timezone.localdate(timezone=timezone.get_default_timezone())
        created = schedules_generate(start=start, weeks=weeks)
        self.stdout.write(f"{created} sessions created from {start} for {weeks} weeks.")
