"""Pure pieces: normalising bytes, escapes, charsets, DTM and the other data types."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations.hl7v2.charset import codec_for
from integrations.hl7v2.datatypes import InvalidValue, parse_dtm, person_name, xtn_number
from integrations.hl7v2.errors import Hl7Error
from integrations.hl7v2.escape import Delimiters, escape_text, unescape
from integrations.hl7v2.message import read_header
from integrations.hl7v2.normalize import split_messages


def test_framing_bom_blank_lines_and_trailing_spaces_are_removed():
    payload = b"\x0b\xef\xbb\xbfMSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5 \r\n\r\nPID|1||X \n \r\x1c\r"

    assert split_messages(payload) == [b"MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\rPID|1||X"]


def test_batch_and_file_envelopes_are_split_into_messages():
    payload = b"FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\rBTS|2\rFTS|1"

    assert split_messages(payload) == [b"MSH|^~\\&|A\rPID|1", b"MSH|^~\\&|B"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"BHS|^~\\&\rPID|1\rBTS|1", "The batch holds no message: no MSH segment follows the BHS header."),
        (b"hello", "No MSH segment: this is not an HL7 v2 message."),
        (b"\r\n \r", "The message is empty."),
    ],
)
def test_payload_without_msh_is_refused(payload, reason):
    with pytest.raises(Hl7Error) as raised:
        split_messages(payload)

    assert (raised.value.ack_code, raised.value.code, raised.value.message) == ("AR", "100", reason)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A\\F\\B\\S\\C\\T\\D\\R\\E\\E\\F", "A|B^C&D~E\\F"),
        ("line\\.br\\next", "line\nnext"),
        ("\\H\\bold\\N\\ text", "bold text"),
        ("\\X0D0A\\", "\r\n"),
        ("\\XE4B8AD\\文", "中文"),
        ("BSV 4\\5 re.", "BSV 4\\5 re."),
        ("trailing \\", "trailing \\"),
        ("\\\\", "\\\\"),
    ],
)
def test_escape_sequences(value, expected):
    assert unescape(value, Delimiters(), "utf-8") == expected


def test_hex_escapes_decode_in_the_message_charset():
    assert unescape("\\XD6D0CEC4\\", Delimiters(), "gb18030") == "中文"


def test_escape_text_round_trips():
    text = "a|b^c&d~e\\f"

    assert unescape(escape_text(text, Delimiters()), Delimiters()) == text


@pytest.mark.parametrize(
    ("msh18", "codec"),
    [
        ("UNICODE UTF-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("GB18030", "gb18030"),
        ("GB 18030-2000", "gb18030"),
        ("GBK", "gb18030"),
        ("GB 2312", "gb18030"),
        ("ASCII", "ascii"),
        ("8859/1", "latin-1"),
        ("UNICODE UTF-16", None),
    ],
)
def test_charsets(msh18, codec):
    assert codec_for(msh18) == codec


def test_dtm_with_any_precision():
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert parse_dtm("1980").date == dt.date(1980, 1, 1)
    assert parse_dtm("198002").date == dt.date(1980, 2, 1)
    assert parse_dtm("20250301").at.astimezone(shanghai) == dt.datetime(2025, 3, 1, tzinfo=shanghai)
    assert parse_dtm("202503010830").at.astimezone(shanghai) == dt.datetime(2025, 3, 1, 8, 30, tzinfo=shanghai)
    moment = parse_dtm("20210817151943.4+0200")
    assert moment.at == dt.datetime(2021, 8, 17, 15, 19, 43, 400000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert moment.date == dt.date(2021, 8, 17)
    assert parse_dtm("") is None


@pytest.mark.parametrize("value", ["196203520", "20250230", "2025013", "*******************", "20250101+2500"])
def test_invalid_dtm(value):
    with pytest.raises(InvalidValue):
        parse_dtm(value)


def test_names_chinese_without_space_others_given_first():
    assert person_name("欧阳", "娜娜") == "欧阳娜娜"
    assert person_name("SMITH", "WILLIAM", "A") == "WILLIAM A SMITH"


def test_phone_from_component_1_12_or_parts():
    assert xtn_number(["13800138000"]) == "13800138000"
    assert xtn_number(["", "PRN", "CP", "", "", "", "", "", "", "", "", "13800138000"]) == "13800138000"
    assert xtn_number(["", "PRN", "PH", "", "86", "571", "87654321"]) == "+8657187654321"


def test_header_routes_on_msh9_1_and_9_2_only():
    header = read_header(b"MSH|^~\\&|HIS|TCMH|||20250101||ADT^A04^ADT_A01|C1|P|2.8")

    assert (header.message_code, header.trigger_event, header.sender, header.problem) == (
        "ADT",
        "A04",
        "HIS^TCMH",
        None,
    )


def test_header_with_repeated_encoding_characters_is_refused():
    header = read_header(b"MSH|^~\\\\&|HIS|TCMH|||20250101||ADT^A01|C1|P|2.6")

    assert (header.problem.ack_code, header.problem.code, str(header.problem.location)) == ("AR", "102", "MSH^1^2")


def _as_hl7_reads_it(fields, number: int, message) -> list[list[list[str]]]:
    """A field of an `hl7.parse` segment as [repetition][component][subcomponent], unescaped."""
    if number >= len(fields):
        return []
    items = fields[number]
    if isinstance(items[0], str):
        return [[[message.text(items[0])]]]
    return [
        [[message.text(component)] if isinstance(component, str) else [message.text(sub) for sub in component]
         for component in repetition]
        for repetition in items
    ]  # fmt: skip


def _messages_to_compare() -> list[bytes]:
    from tests.integrations.hl7v2.conftest import SAMPLES

    payloads = [path.read_bytes() for path in sorted(SAMPLES.iterdir()) if path.is_file()]
    payloads.append(
        b"MSH|^~\\&|A|B|||20250101||ADT^A08|1|P|2.5\r"
        b'PID|1||a~b&c^d~~^^&&|x\\S\\y|""|a&b||~|\\X41\\|\r'
        b"PV1|||^^||||||||||||||||||\r"
        b"MSH2|x\r"
    )
    payloads.append(b"MSH|!#$%*|A|B|||20250101||ADT!A08|2|P|2.7\rPID|1||a#b$c!d%e*f|\r")
    return payloads


def test_fields_read_as_hl7_parse_reads_them():
    import hl7

    from integrations.hl7v2.charset import codec_for
    from integrations.hl7v2.message import parse_message

    compared = 0
    for payload in _messages_to_compare():
        try:
            messages = split_messages(payload)
        except Hl7Error:
            continue
        for raw in messages:
            header = read_header(raw)
            codec = codec_for(header.charset) if header.charset else "utf-8"
            if header.problem is not None or codec is None:
                continue
            text = raw.decode(codec, errors="replace")
            message = parse_message(text, header=header, codec=codec)
            # `hl7` reads a segment with no field separator letter by letter; such a segment holds nothing.
            expected = [fields for fields in hl7.parse(text) if not isinstance(fields[0], str)]
            segments = [segment for segment in message.segments if len(segment._fields) > 1]
            assert [segment.name for segment in segments] == [str(fields[0]).strip().upper() for fields in expected]
            for segment, fields in zip(segments, expected, strict=True):
                for number in range(len(fields) + 2):
                    assert segment.repetitions(number) == _as_hl7_reads_it(fields, number, message), (segment, number)
                    assert segment.raw(number) == (str(fields[number]) if number < len(fields) else "")
                compared += 1
    assert compared > 300
