"""Property-based: random bytes and mutated real messages never crash the pipeline nor half-apply a patient."""

from __future__ import annotations

import hl7
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from integrations.hl7v2.pipeline import hl7_receive
from integrations.models import InboundMessage
from patients.models import Encounter, Patient
from tests.integrations.hl7v2.conftest import SAMPLES
from tests.integrations.hl7v2.messages import adt

pytestmark = pytest.mark.django_db
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)
REAL_MESSAGES = [
    adt(),
    (SAMPLES / "ms_ADT01-28.hl7").read_bytes(),
    (SAMPLES / "ms_LAB-ORU-1.hl7").read_bytes(),
    (SAMPLES / "efferent_adt_a28_italy_v25_nulls_crlf.hl7").read_bytes(),
]


def _assert_is_an_ack(ack: bytes) -> None:
    message = hl7.parse(ack.decode("latin-1"))
    assert str(message.segment("MSH")(9)).split("^")[0] == "ACK"
    assert str(message.segment("MSA")(1)) in ("AA", "AE", "AR")


def _assert_nothing_half_applied() -> None:
    applied = InboundMessage.objects.filter(status="applied")
    # Every patient and visit was written by a message that was applied as a whole.
    assert not Patient.objects.exclude(inbound_messages__in=applied).filter(merged_into__isnull=True).exists()
    assert not Encounter.objects.exclude(patient__inbound_messages__in=applied).exists()
    assert not InboundMessage.objects.exclude(status="applied").exclude(patient=None).exists()


@PROPERTY_SETTINGS
@given(payload=st.binary(max_size=300))
def test_random_bytes_always_get_an_ack(payload):
    _assert_is_an_ack(hl7_receive(payload, transport="mllp"))
    _assert_nothing_half_applied()


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL_MESSAGES)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(
            st.sampled_from(
                [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\xff", b"\xe4", b"9", b"A", b'""']
            )
        )
        if action == "insert":
            data[position:position] = byte
        elif action == "delete":
            del data[position : position + draw(st.integers(min_value=1, max_value=20))]
        else:
            data[position : position + 1] = byte
    return bytes(data)


@PROPERTY_SETTINGS
@given(payload=mutated())
@example(payload=b"MSH^|^~\\&|ADT1|GOOD|LAB|GOOD|1988||ADT^A01|MSG00001|P|2.5.1\rPID|1||X^^^A^MR||DOE^J")
def test_mutated_real_messages_always_get_an_ack_and_never_half_apply(payload):
    _assert_is_an_ack(hl7_receive(payload, transport="mllp"))
    _assert_nothing_half_applied()
