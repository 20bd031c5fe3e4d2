"""Reads of the inbound log for the integration console: per-source statistics, the error queue, search."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection, models
from django.db.models import Count, F, Func, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import TruncHour
from django.utils import timezone

from integrations.models import InboundMessage, InboundStatus, SourceProfile

WINDOW_HOURS = 24
ERROR_STATUSES = (InboundStatus.FAILED, InboundStatus.REJECTED)


def profile_sender(profile: SourceProfile) -> str:
    """The `APP^FACILITY` a profile stands for, as the inbound log records senders."""
    return f"{profile.sending_application}^{profile.sending_facility}"


@dataclass
class SourceStats:
    """One row of the overview: a configured source, or a sender that has no profile."""

    profile: SourceProfile | None
    sender: str
    hourly: list[int] = field(default_factory=lambda: [0] * WINDOW_HOURS)
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(InboundStatus.values, 0))
    last_received_at: dt.datetime | None = None

    @property
    def received(self) -> int:
        return sum(self.hourly)

    @property
    def applied(self) -> int:
        return self.by_status[InboundStatus.APPLIED]

    @property
    def failed(self) -> int:
        return self.by_status[InboundStatus.FAILED]

    @property
    def rejected(self) -> int:
        return self.by_status[InboundStatus.REJECTED]

    @property
    def duplicates(self) -> int:
        return self.by_status[InboundStatus.DUPLICATE]

    @property
    def pending(self) -> int:
        return self.by_status[InboundStatus.RECEIVED]

    @property
    def peak(self) -> int:
        return max(self.hourly)


@dataclass
class Overview:
    hours: list[dt.datetime]  # start of each hour in the window, oldest first, in the current time zone
    sources: list[SourceStats]
    totals: SourceStats
    errors_waiting: int  # failed and rejected messages of any age


def inbound_overview(*, now: dt.datetime | None = None) -> Overview:
    """Messages per source over the last 24 hours (per hour and per status) and the last message time.

    Three queries whatever the volume: the window is a range scan over the
    `inbound_received_stats` index, the last message of each profile an index
    probe on (source, received_at), and the error count a scan of the
    (status, received_at) index limited to the two error statuses.
    """
    now = now or timezone.now()
    tz = timezone.get_current_timezone()
    current_hour = now.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    hours = [current_hour - dt.timedelta(hours=WINDOW_HOURS - 1 - index) for index in range(WINDOW_HOURS)]
    position = {hour: index for index, hour in enumerate(hours)}

    last_message = InboundMessage.objects.filter(source=OuterRef("pk")).order_by("-received_at")
    profiles = SourceProfile.objects.annotate(last_received_at=Subquery(last_message.values("received_at")[:1]))
    by_profile = {
        profile.pk: SourceStats(
            profile=profile, sender=profile_sender(profile), last_received_at=profile.last_received_at
        )
        for profile in profiles
    }
    by_sender = {stats.sender: stats for stats in by_profile.values()}
    unprofiled: dict[str, SourceStats] = {}
    totals = SourceStats(profile=None, sender="")

    window = (
        InboundMessage.objects.filter(received_at__gte=hours[0], received_at__lte=now)
        .annotate(hour=TruncHour("received_at", tzinfo=tz))
        # A profiled source's sender is the same on every row; only unprofiled rows are told apart by it.
        .annotate(group_sender=models.Case(models.When(source__isnull=True, then=F("sender")), default=Value("")))
        .values_list("source_id", "group_sender", "status", "hour")
        .annotate(count=Count("pk"), last=Max("received_at"))
        .order_by()
    )
    for source_id, sender, status, hour, count, last in window:
        if source_id is not None and source_id in by_profile:
            stats = by_profile[source_id]
        else:
            # Messages stored before their sender got a profile count for that profile.
            stats = by_sender.get(sender) or unprofiled.get(sender)
            if stats is None:
                stats = unprofiled[sender] = SourceStats(profile=None, sender=sender)
            if stats.last_received_at is None or last > stats.last_received_at:
                stats.last_received_at = last
        index = position.get(hour.astimezone(tz))
        if index is None:
            continue
        for row in (stats, totals):
            row.hourly[index] += count
            row.by_status[status] = row.by_status.get(status, 0) + count
    for stats in (*by_profile.values(), *unprofiled.values()):
        if stats.last_received_at and (
            totals.last_received_at is None or stats.last_received_at > totals.last_received_at
        ):
            totals.last_received_at = stats.last_received_at

    sources = list(by_profile.values()) + sorted(unprofiled.values(), key=lambda stats: stats.sender)
    errors_waiting = InboundMessage.objects.filter(status__in=ERROR_STATUSES).count()
    return Overview(hours=hours, sources=sources, totals=totals, errors_waiting=errors_waiting)


def senders_without_profile(
    *, days: int = 7, now: dt.datetime | None = None
) -> list[tuple[str, str, int, dt.datetime]]:
    """(sender, protocol, messages, last received) of senders seen in the last `days` days that have no profile.

    Messages stored before their sender got a profile keep no source until
    they are reprocessed; such a sender is no longer listed.
    """
    since = (now or timezone.now()) - dt.timedelta(days=days)
    rows = (
        InboundMessage.objects.filter(received_at__gte=since, source__isnull=True)
        .exclude(sender="")
        .values_list("sender", "protocol")
        .annotate(count=Count("pk"), last=Max("received_at"))
        .order_by("sender", "protocol")
    )
    profiled = {(profile_sender(profile), profile.protocol) for profile in SourceProfile.objects.all()}
    return [row for row in rows if (row[0], row[1]) not in profiled]


def messages_of_source(profile: SourceProfile) -> QuerySet[InboundMessage]:
    """A profile's messages, and those its sender sent before the profile existed."""
    return InboundMessage.objects.filter(
        Q(source=profile) | Q(source__isnull=True, protocol=profile.protocol, sender=profile_sender(profile))
    )


def error_queue(
    *,
    source: SourceProfile | None = None,
    sender: str = "",
    message_type: str = "",
    received_from: dt.date | None = None,
    received_to: dt.date | None = None,
) -> QuerySet[InboundMessage]:
    """Failed and rejected messages, newest first, narrowed by source, type and received date."""
    messages = InboundMessage.objects.filter(status__in=ERROR_STATUSES)
    if source is not None:
        messages = messages.filter(source=source)
    elif sender:
        messages = messages.filter(source__isnull=True, sender=sender)
    if message_type:
        messages = messages.filter(message_type=message_type)
    tz = timezone.get_current_timezone()
    if received_from:
        messages = messages.filter(received_at__gte=dt.datetime.combine(received_from, dt.time.min, tzinfo=tz))
    if received_to:
        start_of_next = dt.datetime.combine(received_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        messages = messages.filter(received_at__lt=start_of_next)
    return messages.select_related("source").order_by("-received_at", "-id")


def messages_with_identifier(value: str) -> QuerySet[InboundMessage]:
    """Messages that carry `value` as one of their patient identifiers (a whole token, not a substring)."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.fields import ArrayField

        # The same expression as the `inbound_identifier_tokens` GIN index, so the index answers.
        tokens = Func(
            F("patient_identifiers"),
            Value(" "),
            function="string_to_array",
            output_field=ArrayField(models.TextField()),
        )
        return InboundMessage.objects.annotate(identifier_tokens=tokens).filter(identifier_tokens__contains=[value])
    return InboundMessage.objects.filter(
        Q(patient_identifiers=value)
        | Q(patient_identifiers__startswith=f"{value} ")
        | Q(patient_identifiers__endswith=f" {value}")
        | Q(patient_identifiers__contains=f" {value} ")
    )


def inbound_search(*, control_id: str = "", identifier: str = "") -> QuerySet[InboundMessage]:
    """Messages by exact control id (MSH-10) and/or exact patient identifier, newest first."""
    messages = InboundMessage.objects.all()
    if identifier:
        messages = messages_with_identifier(identifier)
    if control_id:
        messages = messages.filter(control_id=control_id)
    return messages.select_related("source", "patient").order_by("-received_at", "-id")
