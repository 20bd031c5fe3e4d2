"""Writes to the contact log: contacts (with an optional call recording) and supervisors' quality reviews."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from hcrm.audit import audit_acting_as
from patients.models import ContactEntry, ContactReview, OutboundMessage, Patient
from patients.selectors.contacts import contact_review_allowed, contact_reviewable

# A ten-minute call as uncompressed 16 kHz 16-bit mono WAV is about 20 MB; 50 MB leaves room for
# longer calls without letting one upload fill the disk.
RECORDING_MAX_BYTES = 50 * 1024 * 1024

# Clocks on phones and desktops drift; a contact "a minute from now" is a clock, not a typing error.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)

# Extension → the Content-Type a recording of that format is served with.
RECORDING_FORMATS = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "amr": "audio/amr",
    "webm": "audio/webm",
}

# How many leading bytes `recording_format` needs to recognise every format it knows.
_SNIFF_BYTES = 64


def recording_format(head: bytes) -> str | None:
    """The audio format the first bytes of a file announce (one of the allowed extensions), or None."""
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame: version and layer bits must not be the reserved values (AAC's ADTS uses layer 0).
        if (head[1] >> 3) & 0b11 != 0b01 and (head[1] >> 1) & 0b11 != 0:
            return "mp3"
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return "amr"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head:
        return "webm"
    return None


def recording_validate(recording: UploadedFile) -> None:
    """Raise a ValidationError on `recording` unless it is a non-empty audio file of an allowed type and size."""
    name = recording.name or ""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = ", ".join(RECORDING_FORMATS)
    if extension not in RECORDING_FORMATS:
        raise ValidationError(
            {"recording": ValidationError(_("Upload an audio file: %(allowed)s.") % {"allowed": allowed}, "file_type")}
        )
    if not recording.size:
        raise ValidationError({"recording": ValidationError(_("The recording is empty."), "empty")})
    if recording.size > RECORDING_MAX_BYTES:
        raise ValidationError(
            {
                "recording": ValidationError(
                    _("A recording may be at most %(megabytes)d MB.") % {"megabytes": RECORDING_MAX_BYTES // 2**20},
                    "file_size",
                )
            }
        )
    recording.seek(0)
    head = recording.read(_SNIFF_BYTES)
    recording.seek(0)
    if recording_format(head) != extension:
        raise ValidationError(
            {
                "recording": ValidationError(
                    _("This file is not %(format)s audio: its content does not match its name.")
                    % {"format": extension.upper()},
                    "file_content",
                )
            }
        )


def contact_record(
    *,
    actor,
    patient: Patient,
    channel: str,
    direction: str,
    purpose: str,
    outcome: str,
    occurred_at: dt.datetime | None = None,
    duration_seconds: int | None = None,
    summary: str = "",
    message: OutboundMessage | None = None,
    recording: UploadedFile | None = None,
) -> ContactEntry:
    """Log one contact with a patient; `actor` is the staff member who made it (None for the system)."""
    staff = actor if getattr(actor, "pk", None) else None
    department_id = min(staff.department_ids) if staff is not None and staff.department_ids else None
    entry = ContactEntry(
        patient=patient,
        staff=staff,
        department_id=department_id,
        channel=channel,
        direction=direction,
        purpose=purpose,
        outcome=outcome,
        occurred_at=occurred_at or timezone.now(),
        duration_seconds=duration_seconds,
        summary=summary,
        message=message,
    )
    errors: dict[str, list[ValidationError]] = {}
    try:
        # Choices are checked field by field; the database enforces the same constraints, and asking
        # it first would cost a query per constraint on every message the outbox sends.
        entry.full_clean(exclude=["patient", "message", "recording"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        errors.update(error.error_dict)
    if "occurred_at" not in errors and entry.occurred_at > timezone.now() + FUTURE_TOLERANCE:
        errors["occurred_at"] = [ValidationError(_("A contact cannot be logged in the future."), "future")]
    if recording is not None:
        try:
            recording_validate(recording)
        except ValidationError as error:
            errors.update(error.error_dict)
    if errors:
        raise ValidationError(errors)
    if recording is not None:
        # Assigned, not saved: the file is written by the row's save, inside the transaction below.
        entry.recording = recording
    try:
        with transaction.atomic(), audit_acting_as(actor):
            entry.save()
    except Exception:
        # The row is gone with the transaction; a recording already written would be an orphan.
        if entry.recording and entry.recording.name and entry.recording.storage.exists(entry.recording.name):
            entry.recording.storage.delete(entry.recording.name)
        raise
    return entry


def contact_review_record(*, actor, contact: ContactEntry, score: int, comment: str = "") -> ContactReview:
    """Record `actor`'s quality review of a contact of their department's staff; a second review replaces the first."""
    if not contact_reviewable(actor, contact):
        raise PermissionDenied(_("You may review only the contacts of your own departments' staff."))
    if not contact_review_allowed(actor, contact):
        raise PermissionDenied(_("Your own contacts are reviewed by someone else."))
    review = ContactReview(contact=contact, reviewer=actor, score=score, comment=comment.strip())
    review.full_clean(exclude=["contact", "reviewer"], validate_unique=False, validate_constraints=False)
    with transaction.atomic(), audit_acting_as(actor):
        review, _created = ContactReview.objects.update_or_create(
            contact=contact, reviewer=actor, defaults={"score": review.score, "comment": review.comment}
        )
    return review
