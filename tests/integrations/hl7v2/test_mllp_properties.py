"""Property-based tests: any byte stream is framed the same way whatever its packets, and nothing a sender
sends (random bytes, damaged real messages) crashes the listener, leaves a half-applied patient, or goes
unanswered: every complete frame gets an ACK, or the connection is closed cleanly."""

from __future__ import annotations

import logging
import random
import socket
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from integrations.hl7v2.mllp import FrameReader, ListenerThread, frame
from integrations.models import InboundMessage
from patients.models import Patient, PatientIdentifier
from tests.integrations.hl7v2.test_mllp import ack_fields, adt

SAMPLES = Path(settings.BASE_DIR).parent / "shared" / "samples" / "hl7"

payloads = st.binary(max_size=300).map(lambda data: data.translate(None, b"\x0b\x1c"))
outside = st.binary(max_size=40).map(lambda data: data.replace(b"\x0b", b""))


@given(
    items=st.lists(st.tuples(outside, payloads), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_frames_come_out_the_same_however_the_stream_is_cut(items, cuts):
    stream = b"".join(noise + frame(payload) for noise, payload in items)
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    reader = FrameReader()

    out = [
        payload for start, end in zip(points, points[1:], strict=False) for payload in reader.feed(stream[start:end])
    ]

    assert out == [payload for _noise, payload in items]
    assert reader.partial == 0


@given(payload=payloads, strays=st.lists(st.tuples(st.integers(min_value=0), st.sampled_from([b"\x0b", b"\x1c"]))))
def test_stray_framing_bytes_inside_a_frame_are_dropped(payload, strays):
    damaged = bytearray(payload)
    for position, byte in strays:
        damaged[position % (len(damaged) + 1) : position % (len(damaged) + 1)] = byte
    # A 0x1C right before a CR is an end block, not a stray byte.
    assume(b"\x1c\r" not in damaged)

    assert FrameReader().feed(frame(bytes(damaged))) == [payload]


def _exchange(port: int, data: bytes) -> tuple[list[bytes], bool]:
    """Send `data`, half-close, read until the listener closes: (frames answered, closed cleanly in time)."""
    reader = FrameReader()
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        try:
            while chunk := sock.recv(65536):
                answers += reader.feed(chunk)
        except TimeoutError:
            return answers, False
        except ConnectionResetError:
            pass
    return answers, True


def _is_ack(answer: bytes) -> bool:
    segments = answer.split(b"\r")
    return segments[0].startswith(b"MSH") and any(segment.startswith(b"MSA") for segment in segments)


def _not_processed(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records if record.levelno >= logging.ERROR]


chunks = st.lists(
    st.one_of(
        st.binary(max_size=200),
        payloads.map(frame),
        st.binary(max_size=200).map(lambda body: frame(b"MSH|^~\\&|" + body.translate(None, b"\x0b\x1c"))),
    ),
    min_size=1,
    max_size=5,
)


@pytest.mark.django_db(transaction=True)
def test_random_bytes_get_acks_or_a_clean_close_and_the_listener_keeps_serving(caplog):
    caplog.set_level(logging.INFO, logger="integrations.hl7v2.mllp")
    with ListenerThread() as listener:

        @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(parts=chunks)
        def check(parts):
            stream = b"".join(parts)
            answers, closed = _exchange(listener.port, stream)
            assert closed
            assert all(_is_ack(answer) for answer in answers)
            assert len(answers) <= stream.count(b"\x1c\r")

        check()
        answers, closed = _exchange(listener.port, frame(adt("AFTER-RANDOM", mrn="MAR1")))

    assert closed
    assert [ack_fields(answer)["MSA"][1:3] for answer in answers] == [["AA", "AFTER-RANDOM"]]
    assert _not_processed(caplog.records) == []


def _mutate(message: bytes, rng: random.Random) -> bytes:
    data = bytearray(message)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["flip", "delete", "insert", "truncate", "duplicate-segment", "swap-separator"])
        position = rng.randrange(len(data)) if data else 0
        if kind == "flip" and data:
            data[position] = rng.randrange(256)
        elif kind == "delete":
            del data[position : position + rng.randint(1, 20)]
        elif kind == "insert":
            data[position:position] = rng.choice(
                [b"|", b"^", b"\\", b"~", b"&", b"\r", b'""', b"\xff\xfe", "张".encode()]
            )
        elif kind == "truncate":
            del data[position:]
        elif kind == "duplicate-segment":
            segments = bytes(data).split(b"\r")
            chosen = rng.randrange(len(segments))
            segments.insert(chosen, segments[chosen])
            data = bytearray(b"\r".join(segments))
        elif kind == "swap-separator" and data:
            data = bytearray(bytes(data).replace(b"|", b"^", 1))
    return bytes(data).translate(None, b"\x0b\x1c")


@pytest.mark.django_db(transaction=True)
def test_damaged_real_messages_are_answered_and_a_refused_one_leaves_no_patient_behind(caplog):
    caplog.set_level(logging.INFO, logger="integrations.hl7v2.mllp")
    samples = [path.read_bytes() for path in sorted(SAMPLES.glob("*.hl7"))]
    assert len(samples) >= 20
    with ListenerThread() as listener:

        @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(index=st.integers(min_value=0, max_value=len(samples) - 1), seed=st.integers())
        def check(index, seed):
            damaged = _mutate(samples[index], random.Random(seed))
            patients, identifiers = Patient.objects.count(), PatientIdentifier.objects.count()
            stored = InboundMessage.objects.count()

            answers, closed = _exchange(listener.port, frame(damaged))

            assert closed
            assert len(answers) == 1
            assert _is_ack(answers[0])
            code = answers[0].split(b"\rMSA")[1][1:3]
            assert code in {b"AA", b"AE", b"AR"}
            assert InboundMessage.objects.count() >= stored + (0 if damaged.strip() == b"" else 1)
            if code != b"AA":
                assert (Patient.objects.count(), PatientIdentifier.objects.count()) == (patients, identifiers)

        check()

    assert _not_processed(caplog.records) == []
