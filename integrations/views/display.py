"""How the console shows a stored message: decoded text, segments one per line, a parsed table, pretty JSON.

Pure functions over the stored bytes; they never raise on bad input, since
the messages shown here are mostly the ones that could not be processed.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field

import hl7
from django.utils.translation import gettext as _

from integrations.views.hl7_fields import field_name

_MLLP_BYTES = re.compile(r"[\x0b\x1c]")
_SEGMENT_END = re.compile(r"\r\n|\r|\n")
_ENVELOPES = ("FHS", "BHS", "BTS", "FTS")
_HEADERS = ("MSH", *_ENVELOPES[:2])


def charset_of(raw: bytes, default: str = "utf-8") -> str:
    """The Python codec for a message: MSH-18 when it names one, else `default`."""
    start = raw.find(b"MSH")
    if start < 0 or len(raw) < start + 4:
        return _codec(default) or "utf-8"
    separator = raw[start + 3 : start + 4]
    line = _SEGMENT_END.split(raw[start:].decode("latin-1"), maxsplit=1)[0]
    parts = line.split(separator.decode("latin-1"))
    declared = parts[17].split("~")[0].strip() if len(parts) > 17 else ""
    return _codec_for_msh18(declared) or _codec(default) or "utf-8"


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except (LookupError, TypeError):
        return None


def _codec_for_msh18(value: str) -> str | None:
    """HL7 table 0211 names (and the spellings Chinese HIS use) to Python codecs."""
    upper = value.upper().replace("_", " ")
    if not upper:
        return None
    if "UTF-16" in upper or "UTF16" in upper:
        return "utf-16"
    if "UTF-32" in upper or "UTF32" in upper:
        return "utf-32"
    if "UNICODE" in upper or "UTF-8" in upper or "UTF8" in upper:
        return "utf-8"
    if upper.replace(" ", "").startswith(("GB18030", "GBK", "GB2312", "GB")):
        return "gb18030"
    match = re.fullmatch(r"(?:ISO[- ]?)?8859[/-]?(\d{1,2})", upper.replace(" ", ""))
    if match:
        return _codec(f"iso8859-{match.group(1)}")
    if upper in ("ASCII", "US-ASCII"):
        return "ascii"
    return _codec(value)


def decode(raw: bytes, charset: str) -> str:
    """The message as text; bytes the charset cannot read become U+FFFD, a leading byte-order mark is dropped."""
    if charset == "utf-8":
        charset = "utf-8-sig"
    return raw.decode(charset, errors="replace")


def hl7_segments(text: str) -> list[str]:
    """One segment per item: any line ending, MLLP framing bytes and blank lines removed, trailing spaces kept off."""
    text = _MLLP_BYTES.sub("", text.lstrip("\ufeff"))
    return [line.rstrip() for line in _SEGMENT_END.split(text) if line.strip()]


@dataclass
class ParsedField:
    label: str  # "PID-3"
    name: str  # "Patient identifier list"
    value: str


@dataclass
class ParsedSegment:
    name: str
    fields: list[ParsedField] = field(default_factory=list)


@dataclass
class ParsedMessage:
    segments: list[ParsedSegment]
    problems: list[str]


def hl7_parsed(segments: list[str]) -> ParsedMessage:
    """Segments and their non-empty fields, named (`PID-3 Patient identifier list`), parsed with the `hl7` package.

    Each message (an MSH and the segments after it) is parsed on its own;
    batch and file envelopes and text the package cannot parse are split on
    the field separator, with a note saying why.
    """
    parsed: list[ParsedSegment] = []
    problems: list[str] = []
    group: list[str] = []

    def flush() -> None:
        if not group:
            return
        try:
            message = hl7.parse("\r".join(group))
            rows = [[str(item) for item in segment] for segment in message]
        except Exception as error:  # the hl7 package raises assorted types on malformed input
            problems.append(
                _("Segments from %(segment)s on could not be parsed: %(error)s")
                % {
                    "segment": group[0][:3],
                    "error": error,
                }
            )
            rows = [_split(line) for line in group]
        parsed.extend(_named(row) for row in rows)
        group.clear()

    for line in segments:
        if line.startswith("MSH"):
            flush()
            group.append(line)
        elif group and not line.startswith(_ENVELOPES):
            group.append(line)
        else:
            flush()
            parsed.append(_named(_split(line)))
    flush()
    if segments and not any(line.startswith("MSH") for line in segments):
        problems.append(_("There is no MSH segment."))
    return ParsedMessage(segments=parsed, problems=problems)


def _split(line: str) -> list[str]:
    """A segment as [name, field 1, ...]; header segments carry their own separator as field 1, as `hl7` does."""
    if line.startswith(_HEADERS) and len(line) > 3:
        separator = line[3]
        rest = line[4:].split(separator)
        return [line[:3], separator, *rest]
    return line.split("|")


def _named(row: list[str]) -> ParsedSegment:
    name = row[0] if row else ""
    segment = ParsedSegment(name=name)
    for number, value in enumerate(row[1:], start=1):
        if value == "":
            continue
        segment.fields.append(ParsedField(label=f"{name}-{number}", name=field_name(name, number), value=value))
    return segment


def fhir_pretty(text: str) -> tuple[str, str]:
    """(JSON indented for reading, problem); the text as it is when it is not JSON."""
    try:
        document = json.loads(text)
    except ValueError as error:
        return text, _("This is not valid JSON: %(error)s") % {"error": error}
    return json.dumps(document, indent=2, ensure_ascii=False), ""
