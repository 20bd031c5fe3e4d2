"""The interface between domain apps and outbound channel backends.

Domain apps call `channel_backend("sms").send(...)`; which provider sits
behind it is a dotted path in settings (`SMS_BACKEND`, `EMAIL_CHANNEL_BACKEND`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class OutgoingMessage:
    to: str
    body: str
    subject: str = ""
    reference: str = ""  # the caller's idempotency key, passed to providers that deduplicate
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryReceipt:
    provider_id: str


class ChannelError(Exception):
    """A send failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ChannelBackend:
    channel = ""

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        raise NotImplementedError


@cache
def channel_backend(channel: str) -> ChannelBackend:
    try:
        path = settings.CHANNEL_BACKENDS[channel]
    except KeyError:
        raise ValueError(f"No backend is configured for channel {channel!r}.") from None
    return import_string(path)()
