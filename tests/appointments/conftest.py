"""Tests run without migrations: load the built-in booking message templates the data migration adds."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps


def load_booking_templates() -> None:
    migration = importlib.import_module("appointments.migrations.0003_booking_message_templates")
    defaults = importlib.import_module("patients.migrations.0003_default_message_templates")
    defaults.add_templates(apps, None)
    migration.add_templates(apps, None)


@pytest.fixture(autouse=True)
def booking_templates(db):
    load_booking_templates()


@pytest.fixture
def warm_caches():
    """Content types are cached per process; count queries as a running server does, with them warm."""
    from django.contrib.contenttypes.models import ContentType

    from appointments.models import Appointment, BookingRestriction
    from hcrm.models import AuditEntry

    for model in (AuditEntry, Appointment, BookingRestriction):
        ContentType.objects.get_for_model(model)
