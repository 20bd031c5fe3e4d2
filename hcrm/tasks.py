"""Platform housekeeping run by Celery beat."""

import logging

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="hcrm.tasks.sessions_clear_expired")
def sessions_clear_expired() -> int:
    """Delete expired console sessions."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    logger.info("cleared %d expired sessions", deleted)
    return deleted
