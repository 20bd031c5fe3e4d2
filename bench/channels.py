"""A channel backend for benchmarks: counts every send per idempotency key in Redis, across worker processes."""

from __future__ import annotations

import redis
from django.conf import settings

from hcrm.channels import ChannelBackend, DeliveryReceipt, OutgoingMessage

SENDS_KEY = "hcrm:bench:sends"


class RedisCountingBackend(ChannelBackend):
    """In-memory delivery (Redis' memory): nothing leaves the machine, every send is counted."""

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(settings.REDIS_URL)

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        count = self.redis.hincrby(SENDS_KEY, message.reference, 1)
        return DeliveryReceipt(provider_id=f"bench-{message.reference}-{count}")
