"""Celery tasks of the patients app; Celery's autodiscovery imports this package."""

from patients.tasks import imports, messages, segments  # noqa: F401
