"""Fixtures of the patients tests: the outbox's live in tests/patients/outbox.py."""

from tests.patients.outbox import memory_sms, no_quiet_hours, scripted, sms_template  # noqa: F401
