"""Reprocessing from the console: one failed message, or every failed message of a source after a profile fix."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from celery import shared_task
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_write
from integrations.models import InboundMessage, Protocol, SourceProfile
from integrations.selectors import ERROR_STATUSES, messages_of_source

logger = logging.getLogger(__name__)

# Up to this many messages are reprocessed while the operator waits; more go to a Celery task.
REPROCESS_INLINE_LIMIT = 20
REPROCESS_BATCH_SIZE = 200


def _pipeline_reprocess(*, message: InboundMessage, actor) -> InboundMessage:
    if message.protocol == Protocol.FHIR:
        from integrations.fhir.services import fhir_reprocess

        before = message.status
        fhir_reprocess(message=message, actor=actor)
        message.refresh_from_db()
        with audit_acting_as(actor):
            audit_write(
                event=Event.UPDATE,
                instance=message,
                details={"action": "fhir_reprocess", "status_before": before, "status": message.status},
            )
        return message
    from integrations.hl7v2.pipeline import hl7_reprocess

    return hl7_reprocess(message=message, actor=actor)


def inbound_reprocess(*, message: InboundMessage, actor) -> InboundMessage:
    """Run a failed or rejected HL7 message or FHIR payload again with its source's current profile."""
    if message.status not in ERROR_STATUSES:
        raise ValidationError(
            _("Only failed or rejected messages are reprocessed; this one is %(status)s.")
            % {"status": message.get_status_display()}
        )
    # The HL7 pipeline records the reprocessing, with the status before and after, in the audit trail.
    return _pipeline_reprocess(message=message, actor=actor)


@dataclass(frozen=True)
class SourceReprocessing:
    """What "reprocess all" did: messages reprocessed now and how many were applied, or that a task took them."""

    reprocessed: int = 0
    applied: int = 0
    queued: bool = False


def _waiting(profile: SourceProfile):
    return messages_of_source(profile).filter(status__in=ERROR_STATUSES)


def source_reprocess_all(*, profile: SourceProfile, actor) -> SourceReprocessing:
    """Reprocess every failed or rejected message of a source received so far, in the order received."""
    waiting = list(_waiting(profile).order_by("id").values_list("id", flat=True)[: REPROCESS_INLINE_LIMIT + 1])
    if not waiting:
        return SourceReprocessing()
    if len(waiting) <= REPROCESS_INLINE_LIMIT:
        reprocessed, applied = inbound_reprocess_batch(
            source_id=profile.pk, actor=actor, after_id=0, up_to_id=waiting[-1]
        )
        return SourceReprocessing(reprocessed=reprocessed, applied=applied)
    # Messages that fail after this moment are not part of the run, so a message failing again cannot loop it.
    up_to_id = _waiting(profile).order_by("-id").values_list("id", flat=True).first()
    with transaction.atomic():
        audit_write(
            event=Event.UPDATE,
            instance=profile,
            details={"action": "reprocess_all", "up_to_message": up_to_id},
        )
        transaction.on_commit(
            lambda: reprocess_source_messages.delay(
                source_id=profile.pk, actor_id=getattr(actor, "pk", None), after_id=0, up_to_id=up_to_id
            )
        )
    return SourceReprocessing(queued=True)


def inbound_reprocess_batch(*, source_id: int, actor, after_id: int, up_to_id: int) -> tuple[int, int]:
    """Reprocess up to one batch of a source's waiting messages with ids in (after_id, up_to_id]; (done, applied)."""
    profile = SourceProfile.objects.filter(pk=source_id).first()
    if profile is None:
        return 0, 0
    ids = list(
        _waiting(profile)
        .filter(id__gt=after_id, id__lte=up_to_id)
        .order_by("id")
        .values_list("id", flat=True)[:REPROCESS_BATCH_SIZE]
    )
    reprocessed = applied = 0
    for message in InboundMessage.objects.filter(id__in=ids).order_by("id"):
        try:
            result = inbound_reprocess(message=message, actor=actor)
        except ValidationError:
            continue  # taken care of since the batch was read (another operator, a redelivery)
        except Exception:
            # One message the pipeline chokes on must not hold up the rest; it stays in the error queue.
            logger.exception("reprocessing inbound message %s failed", message.pk)
            continue
        reprocessed += 1
        applied += result.status == InboundMessage.Status.APPLIED
    return reprocessed, applied


@shared_task(name="integrations.reprocess_source_messages", time_limit=900, soft_time_limit=840)
def reprocess_source_messages(*, source_id: int, actor_id: int | None, after_id: int, up_to_id: int) -> int:
    """Reprocess one batch of a source's waiting messages, then queue the next batch."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    profile = SourceProfile.objects.filter(pk=source_id).first()
    if profile is None:
        return 0
    batch = list(
        _waiting(profile)
        .filter(id__gt=after_id, id__lte=up_to_id)
        .order_by("id")
        .values_list("id", flat=True)[:REPROCESS_BATCH_SIZE]
    )
    if not batch:
        return 0
    reprocessed, applied = inbound_reprocess_batch(
        source_id=source_id, actor=actor, after_id=after_id, up_to_id=batch[-1]
    )
    logger.info("source %s: reprocessed %s messages, %s applied", source_id, reprocessed, applied)
    if len(batch) == REPROCESS_BATCH_SIZE:
        transaction.on_commit(
            lambda: reprocess_source_messages.delay(
                source_id=source_id, actor_id=actor_id, after_id=batch[-1], up_to_id=up_to_id
            )
        )
    return reprocessed
