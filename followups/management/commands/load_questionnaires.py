"""`manage.py load_questionnaires`: create or bring up to date the built-in questionnaires."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from followups.services import builtin_questionnaires_load


class Command(BaseCommand):
    help = (
        "Create or update the built-in questionnaires (satisfaction, post-discharge, hypertension, diabetes, "
        "TCM constitution); a version that has responses is kept and a new version made instead."
    )

    def handle(self, *args, **options) -> None:
        outcomes = builtin_questionnaires_load()
        summary = ", ".join(
            f"{outcomes[outcome]} {outcome.replace('_', ' ')}"
            for outcome in ("created", "updated", "new_version", "unchanged")
        )
        self.stdout.write(f"Built-in questionnaires: {summary}.")
