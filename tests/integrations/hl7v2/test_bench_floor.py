"""The HL7 benchmark's floor listener: the product's MLLP server storing each message raw before its AA."""

from __future__ import annotations

import pytest
from hl7.client import MLLPClient

from bench.hl7 import PatientSeed, _patients, adt_message
from bench.hl7_floor import floor_receive
from integrations.hl7v2.mllp import ListenerThread
from integrations.models import InboundMessage
from patients.models import Patient

pytestmark = pytest.mark.django_db(transaction=True)


def test_floor_listener_stores_each_message_raw_before_answering_aa_and_applies_nothing():
    person: PatientSeed = _patients(1, seed=7)[0]
    messages = [adt_message(person, trigger=trigger, control_id=f"FLOOR-{trigger}") for trigger in ("A01", "A08")]

    with ListenerThread(handler=floor_receive, threads=2) as listener, MLLPClient("127.0.0.1", listener.port) as client:
        acks = [client.send_message(message) for message in messages]

    assert [ack.split(b"\r")[1] for ack in acks] == [b"MSA|AA|FLOOR-A01", b"MSA|AA|FLOOR-A08"]
    stored = InboundMessage.objects.order_by("pk")
    assert [(row.control_id, row.sender, row.message_type, row.status) for row in stored] == [
        ("FLOOR-A01", "HIS^ZJTCMH", "ADT^A01^ADT_A01", "received"),
        ("FLOOR-A08", "HIS^ZJTCMH", "ADT^A08^ADT_A01", "received"),
    ]
    assert [bytes(row.raw) for row in stored] == messages
    assert not Patient.objects.exists()
