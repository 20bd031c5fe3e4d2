"""Writes to the contact log."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from hcrm.audit import audit_acting_as
from patients.models import ContactEntry, OutboundMessage, Patient


def contact_record(
    *,
    actor,
    patient: Patient,
    channel: str,
    direction: str,
    purpose: str,
    outcome: str,
    occurred_at: dt.datetime | None = None,
    duration_seconds: int | None = None,
    summary: str = "",
    message: OutboundMessage | None = None,
) -> ContactEntry:
    """Log one contact with a patient; `actor` is the staff member who made it (None for the system)."""
    staff = actor if getattr(actor, "pk", None) else None
    department_id = min(staff.department_ids) if staff is not None and staff.department_ids else None
    entry = ContactEntry(
        patient=patient,
        staff=staff,
        department_id=department_id,
        channel=channel,
        direction=direction,
        purpose=purpose,
        outcome=outcome,
        occurred_at=occurred_at or timezone.now(),
        duration_seconds=duration_seconds,
        summary=summary,
        message=message,
    )
    entry.full_clean(exclude=["patient", "message", "recording"])
    with transaction.atomic(), audit_acting_as(actor):
        entry.save()
    return entry
