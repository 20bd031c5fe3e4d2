"""Fixtures and helpers shared by the outbox tests (imported by them, not collected)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.utils import timezone

from hcrm.channels import ChannelBackend, ChannelError, DeliveryReceipt, OutgoingMessage, channel_backend
from integrations.channels.backends import MemoryBackend
from patients.models import MessageTemplate
from patients.selectors.outreach import outreach_settings


class ScriptedBackend(ChannelBackend):
    """Answers each send with the next scripted outcome: "ok", "retry", "fail", or an Event to wait on first."""

    script: list = []
    sent: list[OutgoingMessage] = []
    calls = 0
    lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        with self.lock:
            type(self).calls += 1
            outcome = self.script.pop(0) if self.script else "ok"
        if isinstance(outcome, tuple):  # ("wait", started, release): hold the send until released
            _wait, started, release = outcome
            started.set()
            release.wait(10)
            outcome = "ok"
        if outcome == "retry":
            raise ChannelError("gateway busy", retryable=True)
        if outcome == "fail":
            raise ChannelError("number refused", retryable=False)
        with self.lock:
            self.sent.append(message)
            return DeliveryReceipt(provider_id=f"scripted-{len(self.sent)}")


@pytest.fixture
def scripted(settings):
    """Route SMS through ScriptedBackend for this test."""
    settings.CHANNEL_BACKENDS = {**settings.CHANNEL_BACKENDS, "sms": "tests.patients.outbox.ScriptedBackend"}
    channel_backend.cache_clear()
    ScriptedBackend.script, ScriptedBackend.sent, ScriptedBackend.calls = [], [], 0
    yield ScriptedBackend
    channel_backend.cache_clear()


@pytest.fixture
def memory_sms(settings):
    settings.CHANNEL_BACKENDS = {
        **settings.CHANNEL_BACKENDS, "sms": "integrations.channels.backends.MemoryBackend"
    }  # fmt: skip
    channel_backend.cache_clear()
    MemoryBackend.sent.clear()
    yield MemoryBackend
    MemoryBackend.sent.clear()
    channel_backend.cache_clear()


@pytest.fixture
def no_quiet_hours(db):
    """Quiet hours off, so tests do not depend on the time of day they run at."""
    policy = outreach_settings()
    policy.quiet_hours_start = policy.quiet_hours_end = dt.time(8, 0)
    policy.save()
    return policy


@pytest.fixture
def sms_template(db):
    return MessageTemplate.objects.create(
        code="notice", name="通知", purpose="appointment", channel="sms", language="zh-hans",
        body="【{hospital_name}】{patient_salutation}，{content}",
    )  # fmt: skip


def quiet_window_around_now(policy, *, minutes_after: int = 90):
    """Make quiet hours start an hour ago and end `minutes_after` from now (local time)."""
    now = timezone.localtime()
    policy.quiet_hours_start = (now - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    policy.quiet_hours_end = (now + dt.timedelta(minutes=minutes_after)).time().replace(second=0, microsecond=0)
    policy.save()
    return now
