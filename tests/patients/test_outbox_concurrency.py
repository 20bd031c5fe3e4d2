"""Races the outbox must win, on PostgreSQL with real connections, and a real Celery worker on Redis."""

from __future__ import annotations

import threading
import time

import pytest
from django.conf import settings
from django.db import connection, connections

from patients.models import ContactEntry, MessageStatus, OutboundMessage
from patients.services import messages as outbox
from tests.factories import PatientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent connections need PostgreSQL")


@pytest.fixture
def zhang(internal_medicine):
    return PatientFactory(name="张三", sex="male", mobile="+8613812345678", departments=[internal_medicine])


def _in_threads(count: int, work) -> list:
    """Run `work(i)` in `count` threads released together; each thread has its own database connection."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:  # reported to the test, not swallowed
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_the_same_key_from_concurrent_callers_makes_one_message(zhang, sms_template, no_quiet_hours):
    results = _in_threads(
        8,
        lambda i: outbox.message_send(
            patient=zhang, channel="sms", purpose="appointment", template=sms_template,
            context={"content": f"caller {i}"}, idempotency_key="appointment:1:confirm",
        ).pk,
    )  # fmt: skip

    assert OutboundMessage.objects.count() == 1
    assert set(results) == {OutboundMessage.objects.get().pk}


def test_two_workers_racing_on_one_message_send_it_once(zhang, sms_template, no_quiet_hours, scripted):
    message = outbox.message_send(
        patient=zhang, channel="sms", purpose="appointment", template=sms_template, context={"content": "x"},
        idempotency_key="race",
    )  # fmt: skip

    outcomes = _in_threads(6, lambda _i: outbox.message_deliver(message_id=message.pk))

    assert sorted(outcomes) == ["not claimed"] * 5 + ["sent"]
    assert scripted.calls == 1
    assert ContactEntry.objects.count() == 1


def test_a_withdrawal_during_the_providers_call_waits_and_reports_too_late(
    zhang, sms_template, no_quiet_hours, scripted
):
    # given a send that is in the provider's hands, holding the message's row lock
    started, release = threading.Event(), threading.Event()
    scripted.script = [("wait", started, release)]
    message = outbox.message_send(
        patient=zhang, channel="sms", purpose="appointment", template=sms_template, context={"content": "x"},
        idempotency_key="withdraw-race",
    )  # fmt: skip
    outcome: dict = {}

    def deliver():
        outcome["deliver"] = outbox.message_deliver(message_id=message.pk)
        connections.close_all()

    def withdraw():
        outcome["withdraw"] = outbox.message_withdraw(message=OutboundMessage.objects.get(pk=message.pk))
        connections.close_all()

    worker = threading.Thread(target=deliver)
    worker.start()
    assert started.wait(10)
    canceller = threading.Thread(target=withdraw)
    canceller.start()
    time.sleep(0.3)
    blocked = canceller.is_alive()  # the withdrawal waits for the row lock
    release.set()
    worker.join(10)
    canceller.join(10)

    assert blocked is True
    assert outcome == {"deliver": "sent", "withdraw": False}
    assert OutboundMessage.objects.get().status == MessageStatus.SENT
    assert scripted.calls == 1


def test_a_withdrawal_racing_workers_never_leaves_a_withdrawn_message_sent(
    zhang, sms_template, no_quiet_hours, scripted
):
    messages = [
        outbox.message_send(
            patient=zhang, channel="sms", purpose="appointment", template=sms_template, context={"content": str(i)},
            idempotency_key=f"mixed-{i}", priority="urgent",
        )
        for i in range(20)
    ]  # fmt: skip

    def work(index: int):
        message = messages[index // 2]
        if index % 2:
            return outbox.message_withdraw(message=message)
        return outbox.message_deliver(message_id=message.pk)

    _in_threads(40, work)

    for message in messages:
        message.refresh_from_db()
        references = [sent.reference for sent in scripted.sent]
        assert message.status in (MessageStatus.SENT, MessageStatus.WITHDRAWN)
        assert references.count(message.idempotency_key) == (1 if message.status == MessageStatus.SENT else 0)


@pytest.mark.skipif(not settings.REDIS_URL, reason="a real worker needs the Redis broker")
def test_a_real_celery_worker_delivers_every_queued_message_once(zhang, sms_template, no_quiet_hours, memory_sms):
    from celery.contrib.testing.worker import start_worker

    from hcrm.celery import app

    patients = [PatientFactory(mobile=f"+86139000{i:05d}") for i in range(30)]
    with start_worker(app, queues=["messages"], perform_ping_check=False, pool="threads", concurrency=4):
        for index, patient in enumerate(patients):
            outbox.message_send(
                patient=patient, channel="sms", purpose="appointment", template=sms_template,
                context={"content": "明天复诊"}, idempotency_key=f"worker-{index}",
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and OutboundMessage.objects.filter(status=MessageStatus.SENT).count() < 30:
            time.sleep(0.2)

    assert OutboundMessage.objects.filter(status=MessageStatus.SENT).count() == 30
    references = [message.reference for message in memory_sms.sent]
    assert sorted(references) == sorted(f"worker-{i}" for i in range(30))
