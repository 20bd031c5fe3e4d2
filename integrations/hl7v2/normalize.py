"""Raw bytes from any door → the messages inside, each as clean bytes with `\r` between segments.

Works on bytes, before decoding: CR, LF, space and the MLLP framing bytes never occur inside a
multi-byte character of UTF-8 or GB18030, so cleaning here is safe for every supported charset.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from integrations.hl7v2.errors import ErrorCode, Location, rejected

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
UTF8_BOM = b"\xef\xbb\xbf"
ENVELOPE_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")


def segments_of(payload: bytes) -> list[bytes]:
    """Segments with framing bytes, BOMs, blank lines and trailing whitespace removed."""
    data = payload.replace(START_BLOCK, b"").replace(END_BLOCK, b"").replace(UTF8_BOM, b"")
    data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    segments = []
    for line in data.split(b"\r"):
        line = line.rstrip(b" \t\x00")
        line = line.lstrip(b" \t\x00")
        if line:
            segments.append(line)
    return segments


def split_messages(payload: bytes) -> list[bytes]:
    """Every MSH message in a payload, a batch (BHS/BTS) or a file (FHS/FTS); envelopes are dropped.

    A payload without any MSH is refused: there is nothing to acknowledge it against.
    """
    segments = segments_of(payload)
    if not segments:
        raise rejected(_("The message is empty."), code=ErrorCode.SEGMENT_SEQUENCE, location=Location("MSH"))
    messages: list[list[bytes]] = []
    orphans = 0
    for segment in segments:
        name = segment[:3]
        if name == b"MSH":
            messages.append([segment])
        elif name in ENVELOPE_SEGMENTS:
            continue
        elif messages:
            messages[-1].append(segment)
        else:
            orphans += 1
    if not messages:
        if segments[0][:3] in (b"FHS", b"BHS"):
            reason = _("The batch holds no message: no MSH segment follows the %(header)s header.") % {
                "header": segments[0][:3].decode("ascii")
            }
        else:
            reason = _("No MSH segment: this is not an HL7 v2 message.")
        raise rejected(reason, code=ErrorCode.SEGMENT_SEQUENCE, location=Location("MSH"))
    if orphans:
        raise rejected(
            _("%(count)d segment(s) come before the first MSH segment.") % {"count": orphans},
            code=ErrorCode.SEGMENT_SEQUENCE,
            location=Location("MSH"),
        )
    return [b"\r".join(message) for message in messages]


def envelope_header(payload: bytes) -> bytes | None:
    """The FHS or BHS segment of a batch payload (to acknowledge a batch that holds no message)."""
    for segment in segments_of(payload):
        if segment[:3] in (b"FHS", b"BHS"):
            return segment
        if segment[:3] == b"MSH":
            return None
    return None
