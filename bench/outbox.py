"""Outbox figures: messages queued and delivered through a real Celery worker on Redis, none twice, none lost."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count

from bench.channels import SENDS_KEY
from bench.harness import Report, table

# Sending waits on the provider's network round trip: threads overlap those waits (README: the
# `messages` worker runs with a thread pool).
WORKER_POOL = "threads"
WORKER_CONCURRENCY = 4


def outbox(report: Report, *, count: int = 100_000) -> None:
    from patients.models import MessageStatus, MessageTemplate, OutboundMessage, Patient
    from patients.selectors.outreach import outreach_settings
    from patients.services.messages import message_send

    policy = outreach_settings()
    saved_policy = (policy.quiet_hours_start, policy.quiet_hours_end, policy.daily_message_cap)
    # The benchmark may run at night: quiet hours off, so every message is due at once.
    policy.quiet_hours_start = policy.quiet_hours_end = dt.time(8, 0)
    policy.daily_message_cap = 100
    policy.save()
    store = redis.Redis.from_url(settings.REDIS_URL)
    store.delete(SENDS_KEY)
    template = MessageTemplate.objects.get(code="general_notice", channel="sms", language="zh-hans")
    patients = list(
        Patient.objects.filter(is_deceased=False, merged_into__isnull=True).exclude(mobile="").order_by("pk")[:count]
    )
    run = uuid.uuid4().hex[:8]
    worker = _start_worker()
    try:
        started = time.perf_counter()
        for index, patient in enumerate(patients):
            message_send(
                patient=patient, channel="sms", purpose="appointment", template=template,
                context={"content": "您预约的复诊时间为明天上午9点。"}, idempotency_key=f"bench:{run}:{index}",
                source="bench",
            )  # fmt: skip
        queued_seconds = time.perf_counter() - started
        keys = OutboundMessage.objects.filter(idempotency_key__startswith=f"bench:{run}:")
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            pending = keys.exclude(status__in=[MessageStatus.SENT, MessageStatus.SUPPRESSED]).count()
            if pending == 0:
                break
            time.sleep(1)
        total_seconds = time.perf_counter() - started
    finally:
        _stop_worker(worker)
        policy.quiet_hours_start, policy.quiet_hours_end, policy.daily_message_cap = saved_policy
        policy.save()
    statuses = dict(keys.values_list("status").annotate(n=Count("id")))
    sends = {key.decode(): int(value) for key, value in store.hgetall(SENDS_KEY).items()}
    sent = statuses.get(MessageStatus.SENT, 0)
    suppressed = statuses.get(MessageStatus.SUPPRESSED, 0)
    duplicates = sum(1 for value in sends.values() if value > 1)
    lost = len(patients) - sent - suppressed
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM patients_contactentry ce JOIN patients_outboundmessage m ON m.id = ce.message_id "
                       "WHERE m.idempotency_key LIKE %s", [f"bench:{run}:%"])  # fmt: skip
        contacts = cursor.fetchone()[0]
    report.section(
        "Outbox",
        [
            f"{len(patients):,} SMS queued with `message_send` (rules checked, rendered, stored, handed to the "
            f"`messages` queue on commit) and delivered by a real Celery worker (`--pool {WORKER_POOL} --concurrency "
            f"{WORKER_CONCURRENCY}`) on Redis, through a backend that counts every send per idempotency key in Redis; PostgreSQL.",
            "",
            *table(
                ["figure", "value"],
                [
                    ["queueing", f"{queued_seconds:,.1f} s = {len(patients) / queued_seconds:,.0f} messages/s"],
                    [
                        "queue + deliver, end to end",
                        f"{total_seconds:,.1f} s = **{sent / total_seconds:,.0f} messages/s**",
                    ],
                    ["sent", f"{sent:,}"],
                    ["suppressed by the rules (kept with the reason)", f"{suppressed:,}"],
                    ["sent twice (duplicates)", f"**{duplicates}**"],
                    ["lost (neither sent nor suppressed)", f"**{lost}**"],
                    ["contact-log entries written", f"{contacts:,}"],
                ],
            ),
        ],
    )


def _start_worker() -> subprocess.Popen:
    env = {**os.environ, "SMS_BACKEND": "bench.channels.RedisCountingBackend", "LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "hcrm", "worker", "--queues", "messages", "--pool", WORKER_POOL,
         "--concurrency", str(WORKER_CONCURRENCY), "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        env=env, cwd=settings.BASE_DIR,
    )  # fmt: skip
    time.sleep(5)
    if worker.poll() is not None:
        raise RuntimeError("the Celery worker did not start")
    return worker


def _stop_worker(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
