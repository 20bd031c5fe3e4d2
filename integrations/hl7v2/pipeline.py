"""One pipeline for every door (MLLP, HTTP, file): store raw, detect redelivery, apply, acknowledge.

`hl7_receive` is synchronous and keeps no state between calls, so the MLLP listener may call it
from several worker threads at once, each with its own database connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import (
    Event,
    audit_acting_as,
    audit_entry_build,
    audit_entry_saved,
    audit_system_writes,
    audit_write,
)
from hcrm.rows import row_insert, rows_insert, statement_run
from integrations.hl7v2.ack import AckError, build_ack
from integrations.hl7v2.apply import Applied, Handler, apply_message, patient_key, route
from integrations.hl7v2.charset import codec_for, without_nul
from integrations.hl7v2.errors import ErrorCode, Hl7Error, Location, rejected
from integrations.hl7v2.message import Header, Hl7Message, parse_message, read_header
from integrations.hl7v2.normalize import envelope_header, split_messages
from integrations.hl7v2.sources import ProfileView, source_profile_for, source_profile_load
from integrations.inbound import inbound_store
from integrations.models import InboundMessage, Protocol
from patients.models import PatientSource

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


def _database_failure(error: DatabaseError) -> Hl7Error:
    """The reason a message the database refused is kept with: the kind of error, not its text, which can
    quote the patient's data."""
    return Hl7Error(
        _("The database refused the changes this message makes (%(error)s); it is kept for reprocessing.")
        % {"error": type(error).__name__},
        code=ErrorCode.INTERNAL,
    )


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
                        values.append(without_nul(value.decode("utf-8", "replace")))
    return " ".join(dict.fromkeys(values))[:500]


def _lock_patient(key: str) -> None:
    """Messages about one patient are applied one at a time (PostgreSQL; SQLite writes one at a time anyway)."""
    if key and connection.vendor == "postgresql":
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        with connection.cursor() as cursor:
            statement_run(cursor, "SELECT pg_advisory_xact_lock(%s)", [number])


def _finish(row_id: int, expected: str, **values) -> int:
    return InboundMessage.objects.filter(pk=row_id, status=expected).update(
        processed_at=timezone.now(), attempts=F("attempts") + 1, updated_at=timezone.now(), **values
    )


def _warning_text(applied: Applied) -> str:
    return "\n".join(
        f"{warning.location}: {warning.message}" if warning.location else warning.message
        for warning in applied.warnings
    )


def _prepare(raw: bytes, header: Header, profile: ProfileView) -> tuple[Hl7Message, Handler]:
    """Decode, parse and route a message (no database work); raises Hl7Error for one that cannot be applied."""
    if not profile.is_active:
        raise rejected(
            _("Messages from %(sender)s are switched off in its source profile.") % {"sender": header.sender},
            code=ErrorCode.UNKNOWN_KEY,
            location=Location("MSH", 1, 3),
        )
    codec = _codec(header, profile)
    if codec is None:
        raise rejected(
            _("MSH-18: character set %(charset)s is not supported.") % {"charset": header.charset},
            code=ErrorCode.TABLE_VALUE_NOT_FOUND,
            location=Location("MSH", 1, 18),
        )
    try:
        text = without_nul(raw.decode(codec))
    except UnicodeDecodeError as error:
        codec_name = header.charset or profile.default_charset
        raise rejected(
            _("The message is not valid %(charset)s text (byte %(position)d).")
            % {"charset": codec_name, "position": error.start},
            code=ErrorCode.DATA_TYPE,
            location=Location("MSH", 1, 18),
        ) from None
    message = parse_message(text, header=header, codec=codec)
    return message, route(header.message_code, header.trigger_event)


def _codec(header: Header, profile: ProfileView) -> str | None:
    return codec_for(header.charset) if header.charset else profile.default_charset


def _apply(message: Hl7Message, profile: ProfileView, handler: Handler, *, system: bool) -> Applied:
    """Apply under the per-patient lock; a system's writes are audited once per message, not row by row."""
    _lock_patient(patient_key(message))
    if not system:
        return apply_message(message, profile, handler)
    with audit_system_writes():
        return apply_message(message, profile, handler)


def _store_applied(row: InboundMessage, applied: Applied, peer: str) -> None:
    """Insert the applied message's raw row and its one audit entry, with one statement where possible."""
    try:
        if applied.patient is None:  # the entry then names the row, which needs its id first
            row_insert(row)
            _audit_applied(row, applied, peer)
            return
        entry = _audit_entry(row, applied, peer)
        rows_insert(row, entry)
    except IntegrityError as error:
        raise _AlreadyStored from error
    audit_entry_saved(entry)


def _audit_applied(row: InboundMessage, applied: Applied, peer: str) -> None:
    """The one audit entry of a message another system sent: which patient, which stored message."""
    entry = _audit_entry(row, applied, peer)
    row_insert(entry)
    audit_entry_saved(entry)


def _system_actor(row: InboundMessage) -> str:
    """Who a sender's writes are attributed to: the label the identity service gives the same sender."""
    return f"{PatientSource.HIS_IMPORT}:{row.sender}"


def _audit_entry(row: InboundMessage, applied: Applied, peer: str):
    details = {
        "hl7": {
            "message": str(row.uuid),
            "control_id": row.control_id,
            "message_type": row.message_type,
            "sender": row.sender,
            "peer": peer or row.peer,
        }
    }
    event = Event.CREATE if applied.created else Event.UPDATE
    with audit_acting_as(_system_actor(row)):
        return audit_entry_build(
            event=event, instance=applied.patient if applied.patient is not None else row, details=details
        )


def _success_ack(header: Header, applied: Applied, codec: str) -> bytes:
    ack_errors = [
        AckError(code=ErrorCode.DATA_TYPE, message=warning.message, location=warning.location, severity="W")
        for warning in applied.warnings
    ]
    return build_ack(header, "AA", errors=ack_errors, codec=codec)


def _process(row: InboundMessage, raw: bytes, header: Header, profile: ProfileView, *, system: bool) -> Received:
    """Apply a message stored earlier; its row ends applied, failed or rejected.

    `system` is False when a person reprocesses it: then every row written is audited on its own.
    """
    expected = row.status
    codec = "utf-8"
    try:
        codec = _codec(header, profile) or codec
        message, handler = _prepare(raw, header, profile)
        with transaction.atomic():
            applied = _apply(message, profile, handler, system=system)
            updated = _finish(
                row.pk,
                expected,
                status=Status.APPLIED,
                patient=applied.patient,
                error_code="",
                error_location="",
                error=_warning_text(applied),
            )
            if not updated:
                raise _Superseded
            if system:
                _audit_applied(row, applied, "")
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
    return Received(ack=_success_ack(header, applied, codec), status=Status.APPLIED, message_id=row.pk)


class _AlreadyStored(Exception):
    """The sender's earlier copy of this control id is stored: this one is a redelivery."""


def _receive_new(raw: bytes, header: Header, *, transport: str, peer: str, profile: ProfileView) -> Received:
    """Apply a message and store it raw, applied, in one transaction, committed before the AA is sent.

    A message that cannot be applied is stored with its reason instead; one whose control id is
    already stored is a redelivery. When the database fails nothing is acknowledged with AA: the
    sender keeps the message and sends it again.
    """
    row = _unsaved(raw, header, transport=transport, peer=peer, profile=profile)
    codec = _codec(header, profile) or "utf-8"
    try:
        message, handler = _prepare(raw, header, profile)
        # Acting as the sender once for the whole message: identity and the audit entry name it too.
        with transaction.atomic(), audit_acting_as(_system_actor(row)):
            applied = _apply(message, profile, handler, system=True)
            row.status, row.patient = Status.APPLIED, applied.patient
            row.error = _warning_text(applied)
            row.attempts, row.processed_at = 1, timezone.now()
            _store_applied(row, applied, peer)
    except _AlreadyStored:
        return _redelivered(raw, header, transport=transport, peer=peer, profile=profile)
    except Hl7Error as error:
        return _store_refused(raw, header, error, transport=transport, peer=peer, profile=profile, codec=codec)
    except DatabaseError as error:
        # Nothing of the attempt is kept. While the database answers, the message is kept failed, with the
        # reason, for reprocessing or the sender's resend; when it does not, the AE tells the sender to resend.
        logger.exception("HL7 message %s from %s: database error", header.control_id, header.sender)
        return _store_refused(
            raw, header, _database_failure(error), transport=transport, peer=peer, profile=profile, codec=codec
        )
    except Exception:
        # A defect must not lose the message: keep it raw, unprocessed, for an operator to reprocess.
        logger.exception("HL7 message %s from %s: unexpected error", header.control_id, header.sender)
        with contextlib.suppress(DatabaseError):
            _store(raw, header, transport=transport, peer=peer, profile=profile)
        return _unavailable(header, codec)
    return Received(ack=_success_ack(header, applied, codec), status=Status.APPLIED, message_id=row.pk)


def _store_refused(
    raw: bytes, header: Header, error: Hl7Error, *, transport: str, peer: str, profile: ProfileView, codec: str
) -> Received:
    """Store a message that could not be applied, failed or rejected with its reason (the error queue)."""
    status = Status.REJECTED if error.ack_code == "AR" else Status.FAILED
    try:
        try:
            row = _store(raw, header, transport=transport, peer=peer, profile=profile)
        except IntegrityError:
            return _redelivered(raw, header, transport=transport, peer=peer, profile=profile)
        _finish(
            row.pk,
            Status.RECEIVED,
            status=status,
            patient=None,
            error_code=error.code,
            error_location=str(error.location or "")[:60],
            error=error.message,
        )
    except DatabaseError:
        return _unavailable(header, codec)
    return Received(ack=_error_ack(header, error, codec), status=status, message_id=row.pk)


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


def _unsaved(raw: bytes, header: Header, *, transport: str, peer: str, profile: ProfileView) -> InboundMessage:
    """The row `_store` would write, not yet saved (it is saved in the transaction that applies it)."""
    return InboundMessage(
        protocol=Protocol.HL7V2,
        transport=transport,
        raw=raw,
        sender=header.sender[:201],
        source_id=profile.pk,
        peer=peer[:100],
        control_id=header.control_id[:199],
        message_type=header.message_type[:40],
        version=header.version[:10],
        patient_identifiers=_identifiers_for_search(raw)[:500],
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
    except DatabaseError:
        logger.exception("HL7 message %s from %s could not be stored", header.control_id, header.sender)
        return _unavailable(header, "utf-8")
    return _receive_new(raw, header, transport=transport, peer=peer, profile=profile)


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
    return _process(original, bytes(original.raw), read_header(bytes(original.raw)), profile, system=True)


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
            _process(message, raw, header, profile, system=False)
            message.refresh_from_db()
            audit_write(
                event=Event.UPDATE,
                instance=message,
                details={"action": "hl7_reprocess", "status_before": before, "status": message.status},
            )
    return message
