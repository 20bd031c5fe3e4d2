"""Original-mode acknowledgements: AA, AE and AR with ERR segments, in the sender's version and encoding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.utils import timezone

from integrations.hl7v2.errors import Location
from integrations.hl7v2.escape import Delimiters, escape_text
from integrations.hl7v2.message import Header

RECEIVING_APPLICATION = "HCRM"
OLD_VERSIONS = ("2.3", "2.3.1", "2.4")
ERROR_TEXTS = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


@dataclass(frozen=True)
class AckError:
    code: str
    message: str
    location: Location | None = None
    severity: str = "E"  # E error, W warning (table 0516)


def ack_control_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def build_ack(
    header: Header,
    code: str,
    *,
    errors: list[AckError] = (),
    codec: str = "utf-8",
    acknowledged_id: str | None = None,
) -> bytes:
    """The ACK for `header`'s message: MSH (sender and receiver swapped, new control id), MSA, ERR per error."""
    delimiters = header.delimiters
    # With unusable encoding characters the sender's fields cannot be echoed as they are: escape them.
    unusable = header.problem is not None and header.problem.location == Location("MSH", 1, 2)

    def echo(number: int) -> str:
        value = header.field(number)
        return escape_text(value, delimiters) if unusable else value

    separator = delimiters.field
    component = delimiters.component
    version = header.version or "2.5"
    old = version in OLD_VERSIONS
    trigger = header.component(9, 2)
    message_type = component.join(["ACK", escape_text(trigger, delimiters), "ACK"]) if trigger else "ACK"
    msh = [
        "MSH",
        delimiters.encoding_characters,
        echo(5) or RECEIVING_APPLICATION,
        echo(6),
        echo(3),
        echo(4),
        timezone.localtime().strftime("%Y%m%d%H%M%S%z"),
        "",
        message_type,
        ack_control_id(),
        echo(11) or "P",
        echo(12) or version,
    ]
    if header.field(18):
        msh += ["", "", "", "", "", echo(18)]
    control_id = echo(10) if acknowledged_id is None else escape_text(acknowledged_id, delimiters)
    msa = ["MSA", code, control_id]
    if old and errors and code != "AA":
        msa.append(escape_text(errors[0].message, delimiters)[:80])
    segments = [separator.join(msh), separator.join(msa)]
    for error in errors:
        segments.append(_err(error, delimiters, old=old))
    return ("\r".join(segments) + "\r").encode(codec, errors="replace")


def _err(error: AckError, delimiters: Delimiters, *, old: bool) -> str:
    component, subcomponent = delimiters.component, delimiters.subcomponent
    location = error.location
    location_text = component.join(str(location).split("^")) if location is not None else ""
    text = ERROR_TEXTS.get(error.code, "")
    fields = ["ERR"]
    if old:
        # ERR-1 (ELD): segment ^ sequence ^ field ^ code&text&table.
        parts = (str(location).split("^")[:3] if location is not None else []) + ["", "", ""]
        fields.append(component.join([*parts[:3], subcomponent.join([error.code, text, "HL70357"])]))
    else:
        fields.append("")
    fields += [
        location_text,
        component.join([error.code, text, "HL70357"]),
        error.severity,
        "",
        "",
        "",
        escape_text(error.message, delimiters),
    ]
    return delimiters.field.join(fields)
