"""Celery tasks of the follow-ups app: thin, idempotent, run by beat (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from django.utils import timezone

from followups.services import followups_sweep

logger = logging.getLogger(__name__)

# The sweep looks back further than it runs often, so a missed run or a late message is caught next time.
SWEEP_LOOKBACK = dt.timedelta(days=3)


@shared_task(name="followups.tasks.followups_sweep_recent", time_limit=1800, soft_time_limit=1700)
def followups_sweep_recent() -> int:
    """Make the follow-up tasks of recent discharges, visits, diagnoses, procedures and segments (idempotent)."""
    created = followups_sweep(since=timezone.now() - SWEEP_LOOKBACK)
    if created:
        logger.info("follow-ups: %d tasks made by the sweep", created)
    return created


@shared_task(name="followups.tasks.followup_links_send_due", time_limit=600, soft_time_limit=550)
def followup_links_send_due_task() -> int:
    """Send the links of due SMS and email follow-ups (each task claimed once, so never sent twice)."""
    from followups.services.links import followup_links_send_due

    return followup_links_send_due()


@shared_task(name="followups.tasks.followup_link_reminders_send", time_limit=600, soft_time_limit=550)
def followup_link_reminders_send_task() -> int:
    """Remind, once, patients who have not submitted a follow-up link's answers."""
    from followups.services.links import followup_link_reminders_send

    return followup_link_reminders_send()


@shared_task(name="followups.alerts_escalate", time_limit=600, soft_time_limit=550)
def alerts_escalate_task() -> int:
    """Escalate alerts nobody acknowledged in time, and send staff messages about alerts still queued."""
    from followups.services.alerts import alert_messages_send_due, alerts_escalate

    escalated = alerts_escalate()
    sent = alert_messages_send_due()
    if escalated or sent:
        logger.info("follow-up alerts: %d escalated, %d staff messages sent", escalated, sent)
    return escalated


@shared_task(name="followups.alert_message_deliver", time_limit=120, soft_time_limit=100)
def alert_message_deliver_task(message_id: int) -> str:
    """Send one staff message about an alert (claimed first, so never sent twice)."""
    from followups.services.alerts import alert_message_deliver

    return alert_message_deliver(message_id=message_id)
