"""Celery tasks of the outbox."""
