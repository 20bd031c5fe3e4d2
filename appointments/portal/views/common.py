"""What the portal pages share: the booking door, the account's patients and appointments, audit of reads."""

from __future__ import annotations

import functools
import uuid

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import Http404
from django.shortcuts import get_object_or_404

from appointments.models import Appointment, BookingChannel, FamilyMember, Slot
from appointments.selectors import account_appointments, member_slot_to_book
from appointments.services import BookingDoor, portal_label
from hcrm.audit import Event, audit_acting_as, audit_read
from hcrm.rows import rows_load_joined
from patients.models import Patient

ONLINE = BookingChannel.ONLINE


def booking_door(request) -> BookingDoor:
    return BookingDoor(channel=ONLINE, portal_account=request.portal_account)


def client_address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def refusal_show(request, refusal: ValidationError) -> None:
    for message in refusal.messages:
        messages.error(request, message)


def audit_portal_read(request, patient_uuids, *, event=Event.VIEW, details=None) -> None:
    """One audit entry for a portal page that showed these patients' data."""
    uuids = sorted({str(value) for value in patient_uuids})
    if not uuids:
        return
    with audit_acting_as(portal_label(request.portal_account.mobile)):
        audit_read(
            event=event,
            patient_uuid=uuids[0] if len(uuids) == 1 else None,
            details={"page": request.resolver_match.url_name, "patients": uuids, **(details or {})},
        )


def account_members(request):
    return list(request.portal_account.members.select_related("patient").order_by("created_at", "pk"))


def posted_uuid(value) -> uuid.UUID:
    """A UUID sent in a form, or 404."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


def member_patient(request, patient_uuid) -> Patient:
    """A patient the signed-in account books for, or 404; read at every booking try, so a prepared statement."""
    key = Patient._meta.get_field("uuid").get_db_prep_value(posted_uuid(patient_uuid), connection)
    found = rows_load_joined(
        Patient,
        _member_join(connection.vendor),
        [],
        "m.account_id = %s AND t.uuid = %s",
        [request.portal_account.pk, key],
    )
    if not found:
        raise Http404
    return found[0][0]


@functools.cache
def _member_join(vendor: str) -> str:
    return f"JOIN {connection.ops.quote_name(FamilyMember._meta.db_table)} m ON m.patient_id = t.id"


def member_patient_and_slot(request, patient_uuid, slot_uuid) -> tuple[Patient, Slot | None]:
    """`member_patient` and the slot as booking reads it (`slot_to_book`, None when there is none), in one
    statement: a patient not the account's is 404, whatever the slot. Read at every booking try."""
    found = member_slot_to_book(request.portal_account.pk, posted_uuid(patient_uuid), slot_uuid)
    if found is None:
        raise Http404
    return found


def own_appointment(request, appointment_uuid) -> Appointment:
    """An appointment of a patient this account books for; anyone else's is not found."""
    return get_object_or_404(account_appointments(request.portal_account), uuid=appointment_uuid)
