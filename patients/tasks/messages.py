"""Celery tasks of the outbox, on the `messages` queue: thin wrappers around patients.services.messages."""

from __future__ import annotations

import logging

from celery import shared_task

from patients.services import messages as outbox

logger = logging.getLogger(__name__)


@shared_task(name="patients.tasks.messages.message_deliver", ignore_result=True, acks_late=True)
def message_deliver_task(message_id: int) -> str:
    """Send one message if it is still due (safe to run twice: the claim lets one worker through)."""
    outcome = outbox.message_deliver(message_id=message_id)
    logger.info("message %s: %s", message_id, outcome)
    return outcome


@shared_task(name="patients.tasks.messages.messages_dispatch_due", ignore_result=True)
def messages_dispatch_due() -> int:
    """Hand every due message to a worker (deferred ones whose time has come, retries)."""
    count = outbox.messages_dispatch_due()
    if count:
        logger.info("dispatched %d due messages", count)
    return count


@shared_task(name="patients.tasks.messages.messages_fail_interrupted", ignore_result=True)
def messages_fail_interrupted() -> int:
    """Close messages a dead worker left half-sent, so staff see and resend them."""
    count = outbox.messages_fail_interrupted()
    if count:
        logger.warning("%d messages were interrupted while sending", count)
    return count
