"""The MLLP listener over real TCP sockets on 127.0.0.1, with the real pipeline behind it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import OperationalError
from hl7.client import MLLPClient

from integrations.hl7v2 import mllp
from integrations.hl7v2.mllp import FrameReader, FrameTooLarge, ListenerThread, error_ack, frame
from integrations.models import InboundMessage
from patients.models import Patient

pytestmark = pytest.mark.django_db(transaction=True)


def adt(control_id: str, *, mrn: str, name: str = "王^小明", trigger: str = "A01", version: str = "2.5") -> bytes:
    """An ADT message the way a Chinese HIS sends it: UTF-8, PID-3 with MRN, PV1 with department and doctor."""
    return (
        "\r".join(
            [
                f"MSH|^~\\&|HIS|TCMH|HCRM|TCMH|20250301083000||ADT^{trigger}^ADT_A01|{control_id}|P|{version}"
                "|||AL|NE|CHN|UNICODE UTF-8",
                f"EVN|{trigger}|20250301083000",
                f"PID|1||{mrn}^^^TCMH^MR||{name}||19800102|M|||人民路1号^^杭州^浙江^310000||^PRN^CP^^^^13800138000",
                f"PV1|1|I|NK^0301^01||||D0012^李^时珍|||||||||||V{mrn}|||||||||||||||||||||||||20250301080000",
            ]
        ).encode("utf-8")
        + b"\r"
    )


def ack_fields(ack: bytes) -> dict[str, list[str]]:
    """Segment name -> fields of the first segment with that name in an ACK (framing removed)."""
    segments = {}
    for line in ack.strip(b"\x0b\x1c\r").split(b"\r"):
        fields = line.decode("utf-8").split("|")
        segments.setdefault(fields[0], fields)
    return segments


def read_ack(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read one framed ACK; b"" when the listener closed the connection first."""
    sock.settimeout(timeout)
    reader = FrameReader()
    while True:
        data = sock.recv(4096)
        if not data:
            return b""
        frames = reader.feed(data)
        if frames:
            assert len(frames) == 1
            return frames[0]


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def patients_with(identifier: str) -> set[int]:
    """Patients holding a PID-3 identifier value (the pipeline keeps them as HIS identifiers)."""
    return set(Patient.objects.filter(identifiers__value=identifier).values_list("pk", flat=True))


def stored(control_id: str) -> list[InboundMessage]:
    return list(InboundMessage.objects.filter(control_id=control_id).order_by("id"))


@pytest.fixture
def listener():
    with ListenerThread() as running:
        yield running


# --- the frame reader ------------------------------------------------------------------


def test_frame_reader_joins_a_message_fed_one_byte_at_a_time():
    reader = FrameReader()
    message = adt("C1", mrn="M1")
    framed = frame(message)

    out = [payload for index in range(len(framed)) for payload in reader.feed(framed[index : index + 1])]

    assert out == [message]
    assert reader.partial == 0


def test_frame_reader_splits_two_frames_in_one_chunk():
    reader = FrameReader()

    assert reader.feed(frame(b"MSH|one\r") + frame(b"MSH|two\r")) == [b"MSH|one\r", b"MSH|two\r"]


def test_frame_reader_keeps_an_unfinished_frame_for_the_next_chunk():
    reader = FrameReader()

    assert reader.feed(frame(b"MSH|one\r") + b"\x0bMSH|tw") == [b"MSH|one\r"]
    assert reader.partial == 6
    assert reader.feed(b"o\r\x1c") == []
    assert reader.feed(b"\r") == [b"MSH|two\r"]


def test_frame_reader_skips_and_counts_bytes_outside_frames():
    reader = FrameReader()

    assert reader.feed(b"noise\r\n" + frame(b"MSH|one\r") + b"\r\n") == [b"MSH|one\r"]
    assert reader.skipped == 9


def test_frame_reader_drops_stray_framing_bytes_inside_a_payload():
    reader = FrameReader()

    assert reader.feed(b"\x0b\x0bMSH|one\x1c|x\r\x1c\r") == [b"MSH|one|x\r"]


def test_frame_reader_refuses_a_frame_that_never_ends():
    reader = FrameReader(max_message_bytes=100)
    reader.feed(b"\x0b" + b"x" * 100)

    with pytest.raises(FrameTooLarge):
        reader.feed(b"xx")


def test_frame_reader_refuses_a_complete_frame_over_the_limit():
    reader = FrameReader(max_message_bytes=100)

    with pytest.raises(FrameTooLarge):
        reader.feed(frame(b"x" * 101))


# --- the AE built when the pipeline fails ------------------------------------------------------


def test_error_ack_for_v25_echoes_control_id_and_carries_err_with_code_207():
    ack = error_ack(adt("C-42", mrn="M1"), text="Not stored. Resend.")

    segments = ack_fields(ack)
    assert ack.endswith(b"\r")
    assert segments["MSH"][1:6] == ["^~\\&", "HCRM", "TCMH", "HIS", "TCMH"]
    assert segments["MSH"][8] == "ACK^A01^ACK"
    assert segments["MSH"][10:12] == ["P", "2.5"]
    assert segments["MSH"][17] == "UNICODE UTF-8"
    assert segments["MSA"] == ["MSA", "AE", "C-42", "Not stored. Resend."]
    assert segments["ERR"][3:5] == ["207^Application internal error^HL70357", "E"]
    assert segments["ERR"][8] == "Not stored. Resend."


def test_error_ack_for_v23_uses_the_err_1_location_shape():
    ack = error_ack(b"MSH|^~\\&|LAB|H1|HCRM|H1|2024||ORU^R01|77|P|2.3\rPID|1\r", text="x")

    segments = ack_fields(ack)
    assert segments["MSH"][8] == "ACK^R01"
    assert segments["MSA"] == ["MSA", "AE", "77", "x"]
    assert segments["ERR"] == ["ERR", "^^^207&Application internal error&HL70357"]


def test_error_ack_keeps_the_senders_separators_and_removes_them_from_the_text():
    ack = error_ack(b"\xef\xbb\xbfMSH#^~\\&#A#B#C#D#2024##ADT^A08#9#P#2.4\n", text="a#b^c")

    assert ack.split(b"\r")[1] == b"MSA#AE#9#a b c"


def test_error_ack_is_none_without_an_msh():
    assert error_ack(b"PID|1||123\r", text="x") is None
    assert error_ack(b"\x00\x01garbage", text="x") is None
    assert error_ack(b"MSHA^~\\&", text="x") is None


# --- over TCP ------------------------------------------------------------------------------------


def test_message_sent_one_byte_per_packet_is_applied_and_acknowledged(listener):
    message = frame(adt("FRAG-1", mrn="MF1"))
    with connect(listener.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(len(message)):
            sock.sendall(message[index : index + 1])
        ack = read_ack(sock)

    assert ack_fields(ack)["MSA"][1:3] == ["AA", "FRAG-1"]
    [row] = stored("FRAG-1")
    assert (row.status, row.transport) == ("applied", "mllp")
    assert row.peer.startswith("127.0.0.1:")
    assert len(patients_with("MF1")) == 1


def test_two_messages_in_one_packet_get_two_acks_in_order(listener):
    with connect(listener.port) as sock:
        sock.sendall(frame(adt("PAIR-1", mrn="MP1")) + frame(adt("PAIR-2", mrn="MP2")))
        first, second = read_ack(sock), read_ack(sock)

    assert ack_fields(first)["MSA"][1:3] == ["AA", "PAIR-1"]
    assert ack_fields(second)["MSA"][1:3] == ["AA", "PAIR-2"]
    assert [row.status for row in stored("PAIR-1") + stored("PAIR-2")] == ["applied", "applied"]


def test_client_gone_mid_message_stores_nothing_and_the_listener_serves_the_next(listener):
    message = frame(adt("HALF-1", mrn="MH1"))
    with connect(listener.port) as sock:
        sock.sendall(message[: len(message) // 2])
    time.sleep(0.2)

    with connect(listener.port) as sock:
        sock.sendall(frame(adt("AFTER-1", mrn="MH2")))
        ack = read_ack(sock)

    assert ack_fields(ack)["MSA"][1:3] == ["AA", "AFTER-1"]
    assert stored("HALF-1") == []
    assert len(patients_with("MH1")) == 0


def test_garbage_before_the_start_block_is_skipped(listener):
    with connect(listener.port) as sock:
        sock.sendall(b"\r\n\x00\xffGET / HTTP/1.0\r\n" + frame(adt("GARB-1", mrn="MG1")))
        ack = read_ack(sock)

    assert ack_fields(ack)["MSA"][1:3] == ["AA", "GARB-1"]


def test_frame_over_the_size_limit_closes_the_connection_and_stores_nothing():
    with ListenerThread(threads=1, max_message_bytes=2048) as small:
        with connect(small.port) as sock:
            sock.sendall(b"\x0bMSH|^~\\&|HIS|TCMH|HCRM|TCMH|2025||ADT^A01|BIG-1|P|2.5\r" + b"NTE|1||" + b"x" * 4096)
            assert read_ack(sock) == b""
        with connect(small.port) as sock:
            sock.sendall(frame(adt("SMALL-1", mrn="MS1")))
            ack = read_ack(sock)

    assert stored("BIG-1") == []
    assert ack_fields(ack)["MSA"][1:3] == ["AA", "SMALL-1"]


def test_idle_connection_is_closed():
    with ListenerThread(threads=1, idle_timeout=0.3) as quick, connect(quick.port) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert time.monotonic() - started < 5


def test_hl7_package_mllp_client_gets_an_aa(listener):
    with MLLPClient("127.0.0.1", listener.port) as client:
        ack = client.send_message(adt("PYHL7-1", mrn="MC1").decode("utf-8"))

    assert ack.startswith(b"\x0bMSH|^~\\&|HCRM|TCMH|HIS|TCMH|")
    assert ack.endswith(b"\x1c\r")
    assert ack_fields(ack)["MSA"][1:3] == ["AA", "PYHL7-1"]


def test_hl7_package_mllp_send_streams_a_file(listener, tmp_path: Path):
    batch = tmp_path / "two.hl7"
    batch.write_bytes(frame(adt("SEND-1", mrn="MT1")) + frame(adt("SEND-2", mrn="MT2")))
    mllp_send = Path(sys.executable).with_name("mllp_send")

    result = subprocess.run(
        [str(mllp_send), "--file", str(batch), "--port", str(listener.port), "127.0.0.1"],
        capture_output=True,
        timeout=30,
        check=True,
    )

    acks = [line for line in result.stdout.split(b"\x1c\r") if b"MSA|" in line]
    assert [ack_fields(ack)["MSA"][1:3] for ack in acks] == [["AA", "SEND-1"], ["AA", "SEND-2"]]
    assert len(patients_with("MT1") | patients_with("MT2")) == 2


def test_many_concurrent_clients_each_get_their_own_acks(listener):
    clients, per_client = 16, 2
    results: dict[int, list[str]] = {}

    def send(client: int) -> None:
        answered = []
        with connect(listener.port) as sock:
            for number in range(per_client):
                sock.sendall(frame(adt(f"MANY-{client}-{number}", mrn=f"MM{client}x{number}")))
                fields = ack_fields(read_ack(sock, timeout=60))["MSA"]
                answered.append(f"{fields[1]} {fields[2]}")
        results[client] = answered

    threads = [threading.Thread(target=send, args=(client,)) for client in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert results == {
        client: [f"AA MANY-{client}-{number}" for number in range(per_client)] for client in range(clients)
    }
    assert InboundMessage.objects.filter(control_id__startswith="MANY-", status="applied").count() == 32
    assert Patient.objects.filter(identifiers__value__startswith="MM").distinct().count() == 32


def test_messages_on_one_connection_are_applied_in_the_order_sent(listener):
    stream = b"".join(
        frame(adt(f"ORDER-{step}", mrn="MO1", name=name, trigger=trigger))
        for step, (trigger, name) in enumerate([("A01", "赵^一"), ("A08", "赵^二"), ("A08", "赵^三")])
    )
    with connect(listener.port) as sock:
        sock.sendall(stream)
        acks = [read_ack(sock) for _ in range(3)]

    assert [ack_fields(ack)["MSA"][2] for ack in acks] == ["ORDER-0", "ORDER-1", "ORDER-2"]
    assert Patient.objects.get(identifiers__value="MO1").name == "赵三"
    received = [row.control_id for row in InboundMessage.objects.filter(control_id__startswith="ORDER-")]
    assert sorted(received, reverse=True) == received  # newest first: received in the order sent


def test_redelivery_over_mllp_is_acknowledged_and_not_applied_twice(listener):
    message = frame(adt("REDELIVER-1", mrn="MR1"))
    with connect(listener.port) as sock:
        sock.sendall(message)
        first = read_ack(sock)
        sock.sendall(message)
        second = read_ack(sock)

    assert ack_fields(first)["MSA"][1:3] == ["AA", "REDELIVER-1"]
    assert ack_fields(second)["MSA"][1:3] == ["AA", "REDELIVER-1"]
    assert [row.status for row in stored("REDELIVER-1")] == ["applied", "duplicate"]
    assert len(patients_with("MR1")) == 1


def test_pipeline_failure_answers_ae_and_never_aa():
    def database_down(payload: bytes, *, transport: str, peer: str = "") -> bytes:
        raise OperationalError("connection to server at 127.0.0.1 failed")

    with ListenerThread(threads=1, handler=database_down) as failing, connect(failing.port) as sock:
        sock.sendall(frame(adt("DOWN-1", mrn="MD1")))
        ack = read_ack(sock)
        sock.sendall(frame(adt("DOWN-2", mrn="MD2")))
        second = read_ack(sock)

    assert ack_fields(ack)["MSA"] == ["MSA", "AE", "DOWN-1", mllp.NOT_PROCESSED]
    assert ack_fields(second)["MSA"][1:3] == ["AE", "DOWN-2"]
    assert ack_fields(ack)["ERR"][3] == "207^Application internal error^HL70357"


def test_pipeline_failure_on_a_message_without_msh_closes_the_connection():
    def database_down(payload: bytes, *, transport: str, peer: str = "") -> bytes:
        raise OperationalError("server closed the connection unexpectedly")

    with ListenerThread(threads=1, handler=database_down) as failing, connect(failing.port) as sock:
        sock.sendall(frame(b"PID|1||123\r"))
        assert read_ack(sock) == b""


def test_stop_finishes_the_message_in_flight_then_closes_without_starting_the_next():
    from integrations.hl7v2.pipeline import hl7_receive

    entered = threading.Event()

    def slow(payload: bytes, *, transport: str, peer: str = "") -> bytes:
        entered.set()
        time.sleep(0.5)
        return hl7_receive(payload, transport=transport, peer=peer)

    running = ListenerThread(threads=1, handler=slow).start()
    with connect(running.port) as sock, connect(running.port) as idle:
        sock.sendall(frame(adt("INFLIGHT-1", mrn="MI1")) + frame(adt("INFLIGHT-2", mrn="MI2")))
        assert entered.wait(5)
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        ack = read_ack(sock)
        assert read_ack(sock) == b""
        assert read_ack(idle) == b""
        stopper.join(10)

    assert ack_fields(ack)["MSA"][1:3] == ["AA", "INFLIGHT-1"]
    assert [row.status for row in stored("INFLIGHT-1")] == ["applied"]
    assert stored("INFLIGHT-2") == []  # read but not started: no ACK, so the sender resends it
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=2)
