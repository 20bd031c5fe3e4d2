"""How the console shows stored messages: charsets, one segment per line, named fields, FHIR JSON."""

from __future__ import annotations

import json

import pytest

from integrations.views.display import charset_of, decode, fhir_pretty, hl7_parsed, hl7_segments
from tests.integrations.console_fixtures import SAMPLES, adt

HL7_SAMPLES = sorted((SAMPLES / "hl7").glob("*.hl7"))


def _fields(parsed, segment: str) -> dict[str, tuple[str, str]]:
    found = next(item for item in parsed.segments if item.name == segment)
    return {field.label: (field.name, field.value) for field in found.fields}


def test_msh18_names_the_charset_and_the_source_default_covers_an_empty_one():
    gbk = "MSH|^~\\&|HIS|ZYY|||20250301||ADT^A01|1|P|2.4|||||CHN|GB 18030-2000\rPID|1||1||王^芳\r".encode("gb18030")
    silent = "MSH|^~\\&|HIS|ZYY|||20250301||ADT^A01|1|P|2.4\rPID|1||1||王^芳\r".encode("gb18030")

    assert charset_of(gbk) == "gb18030"
    assert charset_of(silent, "gb18030") == "gb18030"
    assert charset_of(adt()) == "utf-8"
    assert charset_of(b"MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5|||||DE|8859/1\r") == "iso8859-1"
    assert "王^芳" in decode(gbk, charset_of(gbk))


def test_bytes_the_charset_cannot_read_become_replacement_characters():
    raw = "MSH|^~\\&|HIS|ZYY|||20250301||ADT^A01|1|P|2.5\rPID|1||1||王^芳\r".encode("gb18030")

    text = decode(raw, charset_of(raw))

    assert text.startswith("MSH|")
    assert "\ufffd" in text
    assert "王" not in text


def test_segments_are_split_on_any_line_ending_without_blank_lines_bom_or_framing_bytes():
    text = "\ufeff\x0bMSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5\r\nEVN|A01  \n\n \rPID|1\x1c\r"

    assert hl7_segments(text) == ["MSH|^~\\&|A|B|||1||ADT^A01|1|P|2.5", "EVN|A01", "PID|1"]


def test_the_parsed_view_names_each_field_and_keeps_z_segments():
    parsed = hl7_parsed(hl7_segments(adt("C9", "M0042").decode()))

    assert [segment.name for segment in parsed.segments] == ["MSH", "EVN", "PID", "PV1", "ZPI"]
    assert parsed.problems == []
    msh = _fields(parsed, "MSH")
    assert msh["MSH-1"] == ("Field separator", "|")
    assert msh["MSH-9"] == ("Message type", "ADT^A01")
    assert msh["MSH-10"] == ("Message control id", "C9")
    assert msh["MSH-18"] == ("Character set", "UNICODE UTF-8")
    pid = _fields(parsed, "PID")
    assert pid["PID-3"] == ("Patient identifier list", "M0042^^^ZYY^MR~110105194912310021^^^CHN^NI")
    assert pid["PID-5"] == ("Patient name", "张^三")
    assert _fields(parsed, "ZPI") == {"ZPI-1": ("", "private")}


def test_a_batch_without_msh_is_shown_split_with_the_reason():
    text = (SAMPLES / "hl7" / "pyhl7_bad_batch_missing_msh_cr.hl7").read_bytes().decode()

    parsed = hl7_parsed(hl7_segments(text))

    assert [segment.name for segment in parsed.segments][0] == "BHS"
    assert parsed.problems == ["There is no MSH segment."]


def test_a_file_envelope_is_shown_with_each_message_parsed():
    text = (SAMPLES / "hl7" / "pyhl7_adt_a04_file_fhs_v25_cr.hl7").read_bytes().decode()

    parsed = hl7_parsed(hl7_segments(text))

    names = [segment.name for segment in parsed.segments]
    assert names[:2] == ["FHS", "BHS"]
    assert names[-2:] == ["BTS", "FTS"]
    assert names.count("MSH") == 3
    assert parsed.problems == []


@pytest.mark.parametrize("path", HL7_SAMPLES, ids=[path.name for path in HL7_SAMPLES])
def test_every_hl7_sample_is_shown_without_an_error(path):
    raw = path.read_bytes()

    text = decode(raw, charset_of(raw))
    segments = hl7_segments(text)
    parsed = hl7_parsed(segments)

    assert segments
    assert len(parsed.segments) == len(segments)
    assert all(not segment.startswith("\ufeff") for segment in segments)


def test_fhir_json_is_indented_and_bad_json_is_shown_as_it_is():
    document = json.loads((SAMPLES / "fhir" / "examples" / "Patient-ch-example.json").read_text())

    pretty, problem = fhir_pretty(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
    broken, broken_problem = fhir_pretty('{"resourceType": "Patient",')

    assert problem == ""
    assert json.loads(pretty) == document
    assert pretty.startswith('{\n  "')
    assert broken == '{"resourceType": "Patient",'
    assert broken_problem.startswith("This is not valid JSON: ")
