"""One pipeline for every door (MLLP, HTTP, file): store raw, detect redelivery, apply, acknowledge.

`hl7_receive` is synchronous and keeps no state between calls, so the MLLP listener may call it
from several worker threads at once, each with its own database connection.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_write
from integrations.hl7v2.ack import AckError, build_ack
from integrations.hl7v2.apply import Applied, apply_message, patient_key, route
from integrations.hl7v2.charset import codec_for
from integrations.hl7v2.errors import ErrorCode, Hl7Error, Location, rejected
from integrations.hl7v2.message import Header, parse_message, read_header
from integrations.hl7v2.normalize import envelope_header, split_messages
from integrations.hl7v2.sources import ProfileView, source_profile_for, source_profile_load
from integrations.inbound import inbound_store
from integrations.models import InboundMessage, Protocol

logger = logging.getLogger(__name__)
Status = InboundMessage.Status


@dataclass(frozen=True)
class Received:
    """What became of one message: its ACK (no MLLP framing), its stored row's status and id."""

    ack: bytes
    status: str
    message_id: int | None = None

    @property
    def ack_code(self) -> str:
        return self.ack.split(b"\r", 2)[1][4:6].decode("ascii", "replace")


class _Superseded(Exception):
    """Another delivery of the same message was applied first: nothing of this attempt is kept."""


def _error_ack(header: Header, error: Hl7Error, codec: str = "utf-8", acknowledged_id: str | None = None) -> bytes:
    return build_ack(
        header,
        error.ack_code,
        errors=[AckError(code=error.code, message=error.message, location=error.location)],
        codec=codec,
        acknowledged_id=acknowledged_id,
    )


def _unavailable(header: Header, codec: str) -> Received:
    error = Hl7Error(
        _("The message could not be stored or processed now; send it again later."), code=ErrorCode.INTERNAL
    )
    return Received(ack=_error_ack(header, error, codec), status=Status.RECEIVED)


def _identifiers_for_search(raw: bytes) -> str:
    """PID-3 and MRG-1 identifier values, for finding raw messages by patient identifier."""
    values = []
    for segment in raw.split(b"\r"):
        if segment[:4] in (b"PID|", b"MRG|"):
            fields = segment.split(b"|")
            index = 3 if segment[:3] == b"PID" else 1
            if len(fields) > index:
                for repetition in fields[index].split(b"~"):
                    value = repetition.split(b"^")[0].strip()
                    if value and value != b'""':
                        values.append(value.decode("utf-8", "replace"))
    return " ".join(dict.fromkeys(values))[:500]


def _lock_patient(key: str) -> None:
    """Messages about one patient are applied one at a time (PostgreSQL; SQLite writes one at a time anyway)."""
    if key and connection.vendor == "postgresql":
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def _finish(row_id: int, expected: str, **values) -> int:
    return InboundMessage.objects.filter(pk=row_id, status=expected).update(
        processed_at=timezone.now(), attempts=F("attempts") + 1, updated_at=timezone.now(), **values
    )


def _warning_text(applied: Applied) -> str:
    return "\n".join(
        f"{warning.location}: {warning.message}" if warning.location else warning.message
        for warning in applied.warnings
    )


def _process(row: InboundMessage, raw: bytes, header: Header, profile: ProfileView) -> Received:
    """Decode, parse, route and apply a stored message; its row ends applied, failed or rejected."""
    expected = row.status
    codec = "utf-8"
    try:
        if not profile.is_active:
            raise rejected(
                _("Messages from %(sender)s are switched off in its source profile.") % {"sender": header.sender},
                code=ErrorCode.UNKNOWN_KEY,
                location=Location("MSH", 1, 3),
            )
        found = codec_for(header.charset) if header.charset else profile.default_charset
        if found is None:
            raise rejected(
                _("MSH-18: character set %(charset)s is not supported.") % {"charset": header.charset},
                code=ErrorCode.TABLE_VALUE_NOT_FOUND,
                location=Location("MSH", 1, 18),
            )
        codec = found
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as error:
            codec_name = header.charset or profile.default_charset
            raise rejected(
                _("The message is not valid %(charset)s text (byte %(position)d).")
                % {"charset": codec_name, "position": error.start},
                code=ErrorCode.DATA_TYPE,
                location=Location("MSH", 1, 18),
            ) from None
        message = parse_message(text, header=header, codec=codec)
        handler = route(header.message_code, header.trigger_event)
        with transaction.atomic():
            _lock_patient(patient_key(message))
            applied = apply_message(message, profile, handler)
            warnings = _warning_text(applied)
            updated = _finish(
                row.pk,
                expected,
                status=Status.APPLIED,
                patient=applied.patient,
                error_code="",
                error_location="",
                error=warnings,
            )
            if not updated:
                raise _Superseded
    except _Superseded:
        return _outcome_of(row.pk, header, codec)
    except Hl7Error as error:
        status = Status.REJECTED if error.ack_code == "AR" else Status.FAILED
        try:
            updated = _finish(
                row.pk,
                expected,
                status=status,
                patient=None,
                error_code=error.code,
                error_location=str(error.location or "")[:60],
                error=error.message,
            )
        except DatabaseError:
            return _unavailable(header, codec)
        if not updated:
            return _outcome_of(row.pk, header, codec)
        return Received(ack=_error_ack(header, error, codec), status=status, message_id=row.pk)
    except DatabaseError:
        logger.exception("HL7 message %s from %s: database error", header.control_id, header.sender)
        return _unavailable(header, codec)
    ack_errors = [
        AckError(code=ErrorCode.DATA_TYPE, message=warning.message, location=warning.location, severity="W")
        for warning in applied.warnings
    ]
    return Received(
        ack=build_ack(header, "AA", errors=ack_errors, codec=codec), status=Status.APPLIED, message_id=row.pk
    )


def _outcome_of(row_id: int, header: Header, codec: str) -> Received:
    """The answer for a message another delivery has already taken care of."""
    row = InboundMessage.objects.filter(pk=row_id).only("status", "error_code", "error", "error_location").first()
    if row is None or row.status == Status.APPLIED:
        return Received(ack=build_ack(header, "AA", codec=codec), status=Status.APPLIED, message_id=row_id)
    error = Hl7Error(
        row.error, code=row.error_code or ErrorCode.INTERNAL, ack_code="AR" if row.status == Status.REJECTED else "AE"
    )
    return Received(ack=_error_ack(header, error, codec), status=row.status, message_id=row_id)


def _store(
    raw: bytes, header: Header, *, transport: str, peer: str, profile: ProfileView | None, status=Status.RECEIVED
):
    return inbound_store(
        protocol=Protocol.HL7V2,
        transport=transport,
        raw=raw,
        sender=header.sender if len(header.fields) > 3 else "",
        source_id=profile.pk if profile is not None else None,
        peer=peer,
        control_id=header.control_id if len(header.fields) > 10 else "",
        message_type=header.message_type if len(header.fields) > 9 else "",
        version=header.version if len(header.fields) > 12 else "",
        patient_identifiers=_identifiers_for_search(raw),
        status=status,
    )


def _receive_message(raw: bytes, *, transport: str, peer: str) -> Received:
    header = read_header(raw)
    if header.problem is not None:
        try:
            try:
                row = _store(raw, header, transport=transport, peer=peer, profile=None)
            except IntegrityError:  # refused before, under the same control id
                row = _store(raw, header, transport=transport, peer=peer, profile=None, status=Status.DUPLICATE)
                return Received(ack=_error_ack(header, header.problem), status=Status.REJECTED, message_id=row.pk)
            _finish(
                row.pk,
                Status.RECEIVED,
                status=Status.REJECTED,
                error_code=header.problem.code,
                error_location=str(header.problem.location or ""),
                error=header.problem.message,
            )
        except DatabaseError:
            return _unavailable(header, "utf-8")
        return Received(ack=_error_ack(header, header.problem), status=Status.REJECTED, message_id=row.pk)
    try:
        profile = source_profile_for(application=header.sending_application, facility=header.sending_facility)
        try:
            row = _store(raw, header, transport=transport, peer=peer, profile=profile)
        except IntegrityError:
            return _redelivered(raw, header, transport=transport, peer=peer, profile=profile)
    except DatabaseError:
        logger.exception("HL7 message %s from %s could not be stored", header.control_id, header.sender)
        return _unavailable(header, "utf-8")
    return _process(row, raw, header, profile)


def _redelivered(raw: bytes, header: Header, *, transport: str, peer: str, profile: ProfileView) -> Received:
    """The same sender sent this control id before: store this copy as a duplicate, never apply twice."""
    original = (
        InboundMessage.objects.filter(protocol=Protocol.HL7V2, sender=header.sender, control_id=header.control_id)
        .exclude(status=Status.DUPLICATE)
        .first()
    )
    copy = _store(raw, header, transport=transport, peer=peer, profile=profile, status=Status.DUPLICATE)
    if original is None:  # the first copy was deleted in between; nothing to link to
        return Received(ack=build_ack(header, "AA"), status=Status.DUPLICATE, message_id=copy.pk)
    InboundMessage.objects.filter(pk=copy.pk).update(duplicate_of=original, processed_at=timezone.now())
    if original.status == Status.APPLIED:
        codec = codec_for(header.charset) if header.charset else profile.default_charset
        return Received(
            ack=build_ack(header, "AA", codec=codec or "utf-8"), status=Status.DUPLICATE, message_id=copy.pk
        )
    # The first copy was never applied (it failed, or the listener died before finishing it): try it again.
    received = _process(original, bytes(original.raw), read_header(bytes(original.raw)), profile)
    return received


def hl7_receive_detailed(payload: bytes, *, transport: str, peer: str = "") -> list[Received]:
    """Every message in `payload` (one message, a batch or a file), each stored, applied and acknowledged."""
    try:
        messages = split_messages(payload)
    except Hl7Error as error:
        return [_refuse_payload(payload, error, transport=transport, peer=peer)]
    results = []
    for raw in messages:
        try:
            results.append(_receive_message(raw, transport=transport, peer=peer))
        except Exception:
            # A defect must not take the listener down nor leave the sender without an answer.
            logger.exception("HL7 message from %s: unexpected error", peer)
            header = read_header(raw)
            results.append(_unavailable(header, "utf-8"))
    return results


def _refuse_payload(
    payload: bytes, error: Hl7Error, *, transport: str, peer: str, first: bytes | None = None
) -> Received:
    """A payload refused whole: stored as received, refused with AR echoing the first message or the batch id."""
    envelope = envelope_header(payload)
    header = read_header(b"")
    batch_id = ""
    if first is not None:
        header = read_header(first)
        batch_id = header.control_id
    elif envelope:
        # BHS/FHS share MSH-1 to MSH-8; their control id is field 11, which the ACK echoes in MSA-2.
        envelope_fields = read_header(b"MSH" + envelope[3:]).fields
        batch_id = envelope_fields[11] if len(envelope_fields) > 11 else ""
        header = Header(delimiters=read_header(b"MSH" + envelope[3:]).delimiters, fields=envelope_fields[:9])
    header.problem = error
    try:
        row = inbound_store(
            protocol=Protocol.HL7V2,
            transport=transport,
            raw=payload,
            peer=peer,
            sender=header.sender if envelope or first is not None else "",
            status=Status.RECEIVED,
        )
        _finish(
            row.pk,
            Status.RECEIVED,
            status=Status.REJECTED,
            error_code=error.code,
            error_location=str(error.location or ""),
            error=error.message,
        )
    except DatabaseError:
        return _unavailable(header, "utf-8")
    return Received(ack=_error_ack(header, error, acknowledged_id=batch_id), status=Status.REJECTED, message_id=row.pk)


def hl7_receive(payload: bytes, *, transport: str, peer: str = "") -> bytes:
    """Store, apply and acknowledge one message; returns the ACK without MLLP framing. Never raises.

    One frame gets one ACK, so a frame that holds several messages is stored and refused whole:
    applying some of them behind a single AR or AA would leave the sender unsure which it must resend.
    """
    try:
        messages = split_messages(payload)
    except Hl7Error:
        messages = []
    if len(messages) > 1:
        error = rejected(
            _("One message per frame: this frame holds %(count)d messages; send each in a frame of its own.")
            % {"count": len(messages)},
            code=ErrorCode.SEGMENT_SEQUENCE,
            location=Location("MSH", 2),
        )
        return _refuse_payload(payload, error, transport=transport, peer=peer, first=messages[0]).ack
    results = hl7_receive_detailed(payload, transport=transport, peer=peer)
    return results[0].ack


def hl7_receive_many(payload: bytes, *, transport: str, peer: str = "") -> list[bytes]:
    """Like `hl7_receive` for a batch or file: one ACK per message."""
    return [result.ack for result in hl7_receive_detailed(payload, transport=transport, peer=peer)]


def hl7_reprocess(*, message: InboundMessage, actor) -> InboundMessage:
    """Apply a failed or rejected message again with its source's current profile; an applied one is left alone."""
    if message.status in (Status.APPLIED, Status.DUPLICATE):
        return message
    raw = bytes(message.raw)
    header = read_header(raw)
    with audit_acting_as(actor):
        if header.problem is None:
            profile = source_profile_load(application=header.sending_application, facility=header.sending_facility)
            before = message.status
            _process(message, raw, header, profile)
            message.refresh_from_db()
            audit_write(
                event=Event.UPDATE,
                instance=message,
                details={"action": "hl7_reprocess", "status_before": before, "status": message.status},
            )
    return message
