"""The booking rules (one row): release, holds, cancellation deadline, limits, no-shows, reminders."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from appointments.models import BookingPolicy, Schedule, ScheduleStatus
from appointments.selectors import booking_policy, release_moment
from appointments.services import inputs
from hcrm.audit import Event, audit_acting_as, audit_write

POLICY_PARSERS = {
    "release_days_ahead": lambda value: inputs.whole(value, minimum=0, maximum=90),
    "release_time": inputs.time,
    "window_fallback_hours": lambda value: inputs.whole(value, minimum=0, maximum=48),
    "hold_minutes": lambda value: inputs.whole(value, minimum=1, maximum=60),
    "cancel_days_before": lambda value: inputs.whole(value, minimum=0, maximum=30),
    "cancel_time": inputs.time,
    "max_open_bookings": lambda value: inputs.whole(value, minimum=1, maximum=50),
    "no_show_limit": lambda value: inputs.whole(value, minimum=0, maximum=50),
    "no_show_window_days": lambda value: inputs.whole(value, minimum=1, maximum=3650),
    "no_show_block_days": lambda value: inputs.whole(value, minimum=1, maximum=3650),
    "reminder_time": inputs.time,
    "waitlist_offer_minutes": lambda value: inputs.whole(value, minimum=5, maximum=1440),
    "login_code_minutes": lambda value: inputs.whole(value, minimum=1, maximum=30),
}
POLICY_FIELDS = tuple(POLICY_PARSERS)


def booking_policy_update(*, actor, data: dict[str, Any], now: dt.datetime | None = None) -> BookingPolicy:
    """Change the booking rules; every error is reported at once.

    A new release rule moves the release moment of sessions not yet released (a released day stays open).
    """
    values = inputs.parse(data, POLICY_PARSERS)
    now = now or timezone.now()
    with transaction.atomic(), audit_acting_as(actor):
        row = BookingPolicy.objects.select_for_update().filter(pk=booking_policy().pk).get()
        release_changed = any(
            field in values and values[field] != getattr(row, field) for field in ("release_days_ahead", "release_time")
        )
        for field, value in values.items():
            setattr(row, field, value)
        if getattr(actor, "pk", None):
            row.updated_by = actor
        row.save()
        if release_changed:
            waiting = Schedule.objects.filter(releases_at__gt=now, status=ScheduleStatus.OPEN)
            moved = 0
            for date in waiting.order_by("date").values_list("date", flat=True).distinct():
                moved += waiting.filter(date=date).update(releases_at=release_moment(date, row), updated_at=now)
            if moved:
                audit_write(event=Event.UPDATE, instance=row, details={"sessions_release_moved": moved})
    return row
