"""Celery tasks for patient statistics and segments."""
