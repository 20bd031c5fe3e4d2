"""Reprocessing from the console: which messages qualify, "reprocess all" bounded and in the background, audit.

The batching tests replace the pipeline call with a recorder so they can
count calls and make messages fail again; the real pipeline is exercised in
test_console_reprocess_pipeline.py.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from hcrm.celery import app as celery_app
from hcrm.models import AuditEntry
from integrations import reprocessing
from integrations.inbound import inbound_finish
from integrations.models import InboundMessage
from integrations.reprocessing import inbound_reprocess, source_reprocess_all
from tests.integrations.console_fixtures import inbound, source

pytestmark = pytest.mark.django_db


class Recorder:
    """Stands in for hl7_reprocess: records the order of calls; applies, or fails the ids in `fail`."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.fail: set[int] = set()

    def __call__(self, *, message, actor):
        self.calls.append(message.pk)
        failing = message.pk in self.fail
        inbound_finish(
            message=message,
            status="failed" if failing else "applied",
            error="still wrong" if failing else "",
        )
        return message


@pytest.fixture
def eager_tasks():
    """Queued tasks run here, in this test's transaction, whatever the broker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def pipeline(monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(reprocessing, "_pipeline_reprocess", recorder)
    return recorder


def test_only_failed_or_rejected_messages_are_reprocessed(staff, pipeline):
    applied = inbound(control_id="A1", status="applied")
    fhir = inbound(control_id="", protocol="fhir", transport="http", raw=b"{}", status="failed")

    with pytest.raises(ValidationError):
        inbound_reprocess(message=applied, actor=staff["administrator"])
    inbound_reprocess(message=fhir, actor=staff["administrator"])

    assert pipeline.calls == [fhir.pk]


def test_reprocess_all_handles_a_few_messages_at_once_in_the_order_received(staff, pipeline):
    his = source("HIS", "ZYY")
    before_profile = inbound(sender="HIS^ZYY", control_id="B0", status="rejected")
    first = inbound(profile=his, control_id="B1", status="failed")
    inbound(profile=his, control_id="OK", status="applied")
    second = inbound(profile=his, control_id="B2", status="failed")
    other = inbound(profile=source("LIS", "ZYY"), control_id="L1", status="failed")
    pipeline.fail = {second.pk}

    outcome = source_reprocess_all(profile=his, actor=staff["administrator"])

    assert pipeline.calls == [before_profile.pk, first.pk, second.pk]
    assert (outcome.reprocessed, outcome.applied, outcome.queued) == (3, 2, False)
    other.refresh_from_db()
    assert other.status == "failed"


def test_reprocess_all_hands_many_messages_to_a_task_that_works_in_bounded_batches(
    staff, pipeline, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(reprocessing, "REPROCESS_BATCH_SIZE", 10)
    his = source("HIS", "ZYY")
    waiting = [inbound(profile=his, control_id=f"F{number:02d}", status="failed") for number in range(25)]
    pipeline.fail = {waiting[3].pk}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        outcome = source_reprocess_all(profile=his, actor=staff["administrator"])
        # A message failing after the click is not part of this run.
        late = inbound(profile=his, control_id="LATE", status="failed")

    assert outcome.queued is True
    assert len(callbacks) >= 1
    # Every waiting message once, in order; the one failing again is not retried in a loop.
    assert pipeline.calls == [message.pk for message in waiting]
    assert InboundMessage.objects.filter(status="failed").count() == 2
    assert late.pk not in pipeline.calls
    assert AuditEntry.objects.filter(event="update", additional_data__action="reprocess_all").count() == 1


def test_the_reprocess_buttons_report_the_outcome(client, staff, pipeline):
    his = source("HIS", "ZYY")
    message = inbound(profile=his, control_id="F1", status="failed")
    client.force_login(staff["administrator"])

    single = client.post(f"/integrations/messages/{message.uuid}/reprocess/", follow=True)
    again = client.post(f"/integrations/messages/{message.uuid}/reprocess/", follow=True)
    everything = client.post(f"/integrations/sources/{his.uuid}/reprocess/", follow=True)

    assert "The message was reprocessed and applied." in single.content.decode()
    assert "Only failed or rejected messages are reprocessed; this one is Applied." in again.content.decode()
    assert "No failed or rejected HL7 message of this source is waiting." in everything.content.decode()
    assert everything.redirect_chain == [(f"/integrations/errors/?source={his.uuid}", 302)]
    assert pipeline.calls == [message.pk]
