"""Celery tasks of the patients app; Celery's autodiscovery imports this package."""

from patients.tasks import messages, segments  # noqa: F401
