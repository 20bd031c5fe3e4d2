"""SIU^S12–S15: an appointment booked in the HIS, mirrored. Pure mapping."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

from integrations.hl7v2 import valuesets
from integrations.hl7v2.datatypes import cwe_code, first_code, xcn_name
from integrations.hl7v2.errors import ErrorCode, Hl7Error, Location
from integrations.hl7v2.mapping import Context, moment
from integrations.hl7v2.message import Hl7Message

CANCELLING_EVENTS = {"S15": "cancelled"}


@dataclass
class MappedAppointment:
    appointment_id: str
    start: dt.datetime
    duration_minutes: int | None
    department_codes: list[str]
    doctor_name: str
    status: str
    reason: str
    # The doctor's id as the HIS sends it (XCN-1: the employee number) and where it came from.
    doctor_number: str = ""
    doctor_location: Location | None = None


def _minutes(amount: str, unit: str) -> int | None:
    try:
        value = float(amount)
    except ValueError:
        return None
    factor = valuesets.DURATION_UNITS.get(unit.strip().upper())
    if factor is None or value < 0:
        return None
    return round(value * factor)


def map_appointment(message: Hl7Message, ctx: Context) -> MappedAppointment:
    sch = message.require("SCH")
    appointment_id = sch.value(2) or sch.value(1)
    if not appointment_id:
        raise Hl7Error(
            _("SCH-2 (filler appointment id) and SCH-1 (placer appointment id) are both empty."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=sch.location(2),
        )
    tq1, ais, ail, aip = (message.first(name) for name in ("TQ1", "AIS", "AIL", "AIP"))
    start = end = None
    if tq1 is not None:
        start, end = moment(tq1, 7), moment(tq1, 8)
    for segment, number in ((sch, 11), (ais, 4), (ail, 6), (aip, 6)):
        if start is None and segment is not None:
            start = moment(segment, number, 4) if segment is sch else moment(segment, number)
    if start is None:
        raise Hl7Error(
            _("The appointment has no start time (TQ1-7, SCH-11.4, AIS-4, AIL-6 or AIP-6)."),
            code=ErrorCode.REQUIRED_FIELD_MISSING,
            location=sch.location(11),
        )
    duration = None
    if end is not None and end.at >= start.at:
        duration = round((end.at - start.at).total_seconds() / 60)
    for segment, amount, unit in ((ais, 7, 8), (ail, 9, 10), (aip, 9, 10), (sch, 9, 10)):
        if duration is None and segment is not None and segment.value(amount):
            duration = _minutes(segment.value(amount), segment.value(unit, 1) or "MIN")
    pv1 = message.first("PV1")
    candidates = []
    if ail is not None:
        candidates.append(ail.value(3))
    if pv1 is not None:
        candidates += [pv1.value(10), pv1.value(3)]
    doctor, doctor_number, doctor_location = "", "", None
    for segment, number in ((aip, 3), (pv1, 7)):
        if segment is not None and not (doctor or doctor_number):
            doctor = xcn_name([[part] for part in segment.components(number)])
            doctor_number = segment.value(number)
            doctor_location = segment.location(number)
    event = message.header.trigger_event
    status = CANCELLING_EVENTS.get(event) or valuesets.APPOINTMENT_STATUS.get(first_code(sch.components(25)), "booked")
    reason = cwe_code(sch.components(7))
    return MappedAppointment(
        appointment_id=appointment_id[:128],
        start=start.at,
        duration_minutes=duration,
        department_codes=[code for code in candidates if code],
        doctor_name=doctor[:100],
        status=status,
        reason=(reason.text or reason.code)[:200],
        doctor_number=doctor_number[:32],
        doctor_location=doctor_location,
    )
