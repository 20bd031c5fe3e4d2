"""Stored inbound messages for the console tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.utils import timezone

from integrations.models import InboundMessage, SourceProfile

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"

ADT_A01 = (
    "MSH|^~\\&|HIS|ZYY|HCRM|ZYY|20250301083000||ADT^A01|{control_id}|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A01|20250301083000\r"
    "PID|1||{mrn}^^^ZYY^MR~110105194912310021^^^CHN^NI||张^三||19491231|1\r"
    "PV1|1|I|NK^301^1|||||||NK\r"
    "ZPI|private\r"
)


def adt(control_id: str = "C1", mrn: str = "M0001") -> bytes:
    return ADT_A01.format(control_id=control_id, mrn=mrn).encode()


def source(application: str = "HIS", facility: str = "ZYY", **fields) -> SourceProfile:
    fields.setdefault("name", f"{application} {facility}")
    return SourceProfile.objects.create(sending_application=application, sending_facility=facility, **fields)


def inbound(
    *,
    raw: bytes | None = None,
    profile: SourceProfile | None = None,
    sender: str = "",
    status: str = InboundMessage.Status.APPLIED,
    received_at: dt.datetime | None = None,
    control_id: str = "",
    message_type: str = "ADT^A01",
    protocol: str = "hl7v2",
    **fields,
) -> InboundMessage:
    if profile is not None and not sender:
        sender = f"{profile.sending_application}^{profile.sending_facility}"
    return InboundMessage.objects.create(
        protocol=protocol,
        transport=fields.pop("transport", "mllp"),
        source=profile,
        sender=sender,
        raw=adt(control_id or "C1") if raw is None else raw,
        status=status,
        received_at=received_at or timezone.now(),
        control_id=control_id,
        message_type=message_type,
        **fields,
    )
