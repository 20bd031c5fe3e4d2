"""The raw inbound log: every HL7 message and FHIR payload is stored here before it is processed."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from hcrm.rows import row_insert, row_update
from integrations.models import InboundMessage, SourceProfile


def inbound_store(
    *,
    protocol: str,
    transport: str,
    raw: bytes,
    sender: str = "",
    source: SourceProfile | None = None,
    source_id: int | None = None,
    peer: str = "",
    control_id: str = "",
    message_type: str = "",
    version: str = "",
    patient_identifiers: str = "",
    status: str = InboundMessage.Status.RECEIVED,
) -> InboundMessage:
    """Store what was received, committed on its own, before anything is applied."""
    message = InboundMessage(
        protocol=protocol,
        transport=transport,
        raw=raw,
        sender=sender[:201],
        source=source,
        **({"source_id": source_id} if source is None and source_id is not None else {}),
        peer=peer[:100],
        control_id=control_id[:199],
        message_type=message_type[:40],
        version=version[:10],
        patient_identifiers=patient_identifiers[:500],
        status=status,
    )
    with transaction.atomic():
        row_insert(message)
    return message


def inbound_finish(
    *,
    message: InboundMessage,
    status: str,
    patient=None,
    error_code: str = "",
    error_location: str = "",
    error: str = "",
) -> None:
    """Record the outcome of processing a stored message."""
    message.status = status
    message.patient = patient
    message.error_code = error_code[:20]
    message.error_location = error_location[:60]
    message.error = error
    message.processed_at = timezone.now()
    message.attempts += 1
    row_update(message, ["status", "patient", "error_code", "error_location", "error", "processed_at", "attempts"])
