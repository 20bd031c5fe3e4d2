"""Sessions with slots, built directly (the schedule service builds them from weekly templates)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from appointments.models import Schedule, Slot


def session(
    *,
    doctor,
    department,
    date: dt.date | None = None,
    start: dt.time = dt.time(8, 0),
    slots: int = 4,
    minutes: int = 15,
    online: int = 1,
    phone: int = 0,
    window: int = 0,
    released: bool = True,
    session_name: str = "morning",
    location: str = "门诊楼 3 楼 301",
) -> Schedule:
    """A session of `slots` slots from `start`, each with the given places per channel."""
    date = date or timezone.localdate() + dt.timedelta(days=3)
    starts_at = timezone.make_aware(dt.datetime.combine(date, start))
    ends_at = starts_at + dt.timedelta(minutes=minutes * slots)
    schedule = Schedule.objects.create(
        doctor=doctor,
        department=department,
        date=date,
        session=session_name,
        location=location,
        starts_at=starts_at,
        ends_at=ends_at,
        releases_at=timezone.now() - dt.timedelta(days=1) if released else timezone.now() + dt.timedelta(days=1),
        capacity_online=online * slots,
        capacity_phone=phone * slots,
        capacity_window=window * slots,
    )
    Slot.objects.bulk_create(
        Slot(
            schedule=schedule,
            starts_at=starts_at + dt.timedelta(minutes=minutes * index),
            ends_at=starts_at + dt.timedelta(minutes=minutes * (index + 1)),
            capacity_online=online,
            capacity_phone=phone,
            capacity_window=window,
        )
        for index in range(slots)
    )
    return schedule
