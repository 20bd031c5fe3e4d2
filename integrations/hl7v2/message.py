"""A received message: its MSH header (read before anything else) and typed access to its segments."""

from __future__ import annotations

from dataclasses import dataclass, field

import hl7
from django.utils.translation import gettext as _

from integrations.hl7v2.charset import header_text
from integrations.hl7v2.errors import ErrorCode, Hl7Error, Location, rejected
from integrations.hl7v2.escape import Delimiters, unescape

SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"})
NULL = '""'


@dataclass
class Header:
    """MSH as sent: raw (still escaped) fields indexed by field number, so MSH-10 is `fields[10]`."""

    delimiters: Delimiters
    fields: list[str]
    problem: Hl7Error | None = None
    # Components read so far: the sender, control id and type are asked for many times per message.
    _components: dict[tuple[int, int], str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def field(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""

    def component(self, number: int, component: int = 1) -> str:
        key = (number, component)
        value = self._components.get(key)
        if value is None:
            parts = self.field(number).split(self.delimiters.repetition)[0].split(self.delimiters.component)
            value = parts[component - 1] if component <= len(parts) else ""
            value = value.split(self.delimiters.subcomponent)[0]
            value = self._components[key] = "" if value == NULL else unescape(value, self.delimiters)
        return value

    @property
    def sending_application(self) -> str:
        return self.component(3)

    @property
    def sending_facility(self) -> str:
        return self.component(4)

    @property
    def sender(self) -> str:
        return f"{self.sending_application}^{self.sending_facility}"

    @property
    def control_id(self) -> str:
        return self.component(10)

    @property
    def message_code(self) -> str:
        return self.component(9, 1).strip().upper()

    @property
    def trigger_event(self) -> str:
        return self.component(9, 2).strip().upper()

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger_event}" if self.trigger_event else self.message_code

    @property
    def version(self) -> str:
        return self.component(12).strip()

    @property
    def charset(self) -> str:
        return self.component(18).strip()


def read_header(message: bytes) -> Header:
    """MSH of one message, read leniently; `problem` says why the message cannot be accepted, if it cannot."""
    first = message.split(b"\r", 1)[0]
    text = header_text(first)
    default = Header(delimiters=Delimiters(), fields=["MSH"])
    if not text.startswith("MSH") or len(text) < 8:
        default.problem = rejected(
            _("The MSH segment is too short to hold its encoding characters."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=Location("MSH", 1, 2),
        )
        return default
    field_separator = text[3]
    end = text.find(field_separator, 4)
    encoding = text[4:end] if end > 0 else text[4:]
    rest = text[end + 1 :].split(field_separator) if end > 0 else []
    fields = ["MSH", field_separator, encoding, *rest]
    valid = (
        len(encoding) in (4, 5)
        and len(set(encoding + field_separator)) == len(encoding) + 1
        and not any(char.isalnum() or char.isspace() for char in encoding + field_separator)
    )
    if not valid:
        header = Header(delimiters=Delimiters(), fields=fields)
        header.problem = rejected(
            _(
                "MSH-2 must hold four (or five) distinct encoding characters other than the field separator; "
                "it holds %(value)s."
            )
            % {"value": encoding},
            code=ErrorCode.DATA_TYPE,
            location=Location("MSH", 1, 2),
        )
        return header
    delimiters = Delimiters(
        field=field_separator,
        component=encoding[0],
        repetition=encoding[1],
        escape=encoding[2],
        subcomponent=encoding[3],
        truncation=encoding[4] if len(encoding) == 5 else "",
    )
    header = Header(delimiters=delimiters, fields=fields)
    header.problem = _header_problem(header)
    return header


def _header_problem(header: Header) -> Hl7Error | None:
    if not header.control_id:
        return rejected(
            _("MSH-10 (message control id) is empty."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=Location("MSH", 1, 10),
        )
    if not header.message_code:
        return rejected(
            _("MSH-9 (message type) is empty."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=Location("MSH", 1, 9),
        )
    if header.version not in SUPPORTED_VERSIONS:
        return rejected(
            _("HL7 version %(version)s is not supported (2.3 to 2.8 are).") % {"version": header.version or '""'},
            code=ErrorCode.UNSUPPORTED_VERSION,
            location=Location("MSH", 1, 12),
        )
    return None


class Segment:
    """One segment; field numbers as in the standard (MSH-10 is `value(10)` of MSH); values unescaped."""

    __slots__ = ("_fields", "_message", "_read", "name", "sequence")

    def __init__(self, name: str, sequence: int, fields, message: Hl7Message) -> None:
        self.name = name
        self.sequence = sequence
        self._fields = fields
        self._message = message
        # Fields read so far, unescaped: mapping asks for some fields (PID-3, PV1-7) several times.
        self._read: dict[int, list[list[list[str]]]] = {}

    def location(self, field: int | None = None, component: int | None = None) -> Location:
        return Location(self.name, self.sequence, field, component)

    def raw(self, field: int) -> str:
        """The field as sent (escaped), for null checks and for echoing."""
        if field >= len(self._fields):
            return ""
        return str(self._fields[field])

    def is_null(self, field: int) -> bool:
        return self.raw(field) == NULL

    def repetitions(self, field: int) -> list[list[list[str]]]:
        """[repetition][component][subcomponent], unescaped; HL7 nulls become empty strings. Not to be changed:
        the same lists answer the next call."""
        read = self._read.get(field)
        if read is None:
            read = self._read[field] = self._repetitions(field)
        return read

    def _repetitions(self, field: int) -> list[list[list[str]]]:
        if field >= len(self._fields):
            return []
        items = self._fields[field]
        if not items:
            return []
        text = self._message.text
        if isinstance(items[0], str):
            return [[[text(items[0])]]]
        result = []
        for repetition in items:
            components = []
            for component in repetition:
                if isinstance(component, str):
                    components.append([text(component)])
                else:
                    components.append([text(sub) for sub in component])
            result.append(components)
        return result

    def components(self, field: int, repetition: int = 1) -> list[str]:
        """The first subcomponent of each component of one repetition."""
        repetitions = self.repetitions(field)
        if repetition > len(repetitions):
            return []
        return [component[0] if component else "" for component in repetitions[repetition - 1]]

    def value(self, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        repetitions = self.repetitions(field)
        if repetition > len(repetitions):
            return ""
        components = repetitions[repetition - 1]
        if component > len(components):
            return ""
        subcomponents = components[component - 1]
        return subcomponents[subcomponent - 1].strip() if subcomponent <= len(subcomponents) else ""


@dataclass
class Hl7Message:
    header: Header
    codec: str
    segments: list[Segment] = field(default_factory=list)

    def text(self, value: str) -> str:
        if value == NULL:
            return ""
        return unescape(value, self.header.delimiters, self.codec)

    def all(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    def first(self, name: str) -> Segment | None:
        for segment in self.segments:
            if segment.name == name:
                return segment
        return None

    def require(self, name: str) -> Segment:
        segment = self.first(name)
        if segment is None:
            raise Hl7Error(
                _("The required %(segment)s segment is missing.") % {"segment": name},
                code=ErrorCode.SEGMENT_SEQUENCE,
                location=Location(name),
            )
        return segment


def parse_message(text: str, *, header: Header, codec: str) -> Hl7Message:
    """Parse decoded text with the `hl7` package; segment ids are upper-cased, Z-segments kept but never read."""
    try:
        parsed = hl7.parse(text)
    except Exception as error:  # the parser raises plain IndexError/ValueError on malformed input
        raise rejected(
            _("The message cannot be parsed: %(error)s") % {"error": error},
            code=ErrorCode.DATA_TYPE,
            location=Location("MSH"),
        ) from None
    message = Hl7Message(header=header, codec=codec)
    counts: dict[str, int] = {}
    for fields in parsed:
        name = str(fields[0]).strip().upper() if fields else ""
        if not name:
            continue
        counts[name] = counts.get(name, 0) + 1
        message.segments.append(Segment(name, counts[name], fields, message))
    return message
