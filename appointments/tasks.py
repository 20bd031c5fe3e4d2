"""Celery tasks of the appointments app: thin, idempotent, run by beat (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from appointments.models import ScheduleStatus, WaitlistEntry, WaitlistStatus
from appointments.services import holds_expire, no_shows_mark, schedules_generate, waitlist_offer
from appointments.services.notices import reminders_queue

logger = logging.getLogger(__name__)


@shared_task(name="appointments.tasks.schedules_generate_ahead", time_limit=600, soft_time_limit=540)
def schedules_generate_ahead(weeks: int | None = None) -> int:
    """Create the sessions of the weekly templates for the coming weeks (daily; existing sessions are kept)."""
    weeks = weeks or settings.SCHEDULE_WEEKS_AHEAD
    created = schedules_generate(start=timezone.localdate(timezone=timezone.get_default_timezone()), weeks=weeks)
    logger.info("schedules: %d sessions created for the next %d weeks", created, weeks)
    return created


@shared_task(name="appointments.tasks.holds_expire", time_limit=120, soft_time_limit=100)
def holds_expire_due() -> int:
    """Free the places of holds nobody confirmed in time; each freed place is offered to the waitlist."""
    expired = holds_expire()
    if expired:
        logger.info("bookings: %d holds expired", expired)
    return expired


@shared_task(name="appointments.tasks.reminders_queue", time_limit=300, soft_time_limit=240)
def reminders_queue_due() -> int:
    """Queue the day-before reminders of tomorrow's bookings once the reminder hour has come."""
    queued = reminders_queue()
    if queued:
        logger.info("bookings: %d reminders queued", queued)
    return queued


@shared_task(name="appointments.tasks.no_shows_mark", time_limit=300, soft_time_limit=240)
def no_shows_mark_due() -> int:
    """Mark bookings nobody checked in for as no-shows once their session is over."""
    marked = no_shows_mark()
    if marked:
        logger.info("bookings: %d no-shows marked", marked)
    return marked


@shared_task(name="appointments.tasks.waitlist_offers_lapsed", time_limit=300, soft_time_limit=240)
def waitlist_offers_lapsed() -> int:
    """Pass on waitlist offers whose time ran out in sessions still to come.

    An offer is a hold, so `holds_expire` frees it and offers the place again as soon as the hold
    lapses; this catches what that missed (a worker stopped between the two steps).
    """
    offers = 0
    for schedule_id in _schedules_with_lapsed_offers(timezone.now()):
        offers += waitlist_offer(schedule_id=schedule_id)
    if offers:
        logger.info("waitlist: %d places offered again", offers)
    return offers


def _schedules_with_lapsed_offers(now, limit: int = 500) -> list[int]:
    return list(
        WaitlistEntry.objects.filter(
            status=WaitlistStatus.OFFERED,
            offer_expires_at__lte=now,
            schedule__status=ScheduleStatus.OPEN,
            schedule__ends_at__gt=now,
        )
        .order_by("schedule_id")
        .values_list("schedule_id", flat=True)
        .distinct()[:limit]
    )
