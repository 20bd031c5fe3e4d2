"""Why a message was not applied, where in the message, and what the sender is told (AE or AR)."""

from __future__ import annotations

from dataclasses import dataclass


class ErrorCode:
    """HL7 table 0357, message error condition codes."""

    SEGMENT_SEQUENCE = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION = "203"
    UNKNOWN_KEY = "204"
    DUPLICATE_KEY = "205"
    RECORD_LOCKED = "206"
    INTERNAL = "207"


@dataclass(frozen=True)
class Location:
    """ERR-2 (ERL): segment id, its occurrence in the message, field, component."""

    segment: str
    sequence: int = 1
    field: int | None = None
    component: int | None = None

    def __str__(self) -> str:
        parts = [self.segment, str(self.sequence)]
        if self.field is not None:
            parts.append(str(self.field))
            if self.component is not None:
                parts += ["1", str(self.component)]
        return "^".join(parts)


class Hl7Error(Exception):
    """A message that cannot be applied: AE when its content is wrong, AR when it cannot be accepted at all."""

    def __init__(self, message: str, *, code: str, location: Location | None = None, ack_code: str = "AE") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.location = location
        self.ack_code = ack_code


def rejected(message: str, *, code: str, location: Location | None = None) -> Hl7Error:
    return Hl7Error(message, code=code, location=location, ack_code="AR")


@dataclass(frozen=True)
class Warning_:
    """Something in an applied message that was left out (a code system the archive does not keep, say)."""

    message: str
    location: Location | None = None
