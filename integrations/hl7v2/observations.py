"""ORU^R01: OBR/OBX/NTE → lab results. Pure mapping."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

from integrations.hl7v2 import valuesets
from integrations.hl7v2.datatypes import cwe_code
from integrations.hl7v2.mapping import Context, moment
from integrations.hl7v2.message import Segment

VALUE_LENGTH = 200


@dataclass
class MappedResult:
    order_key: str  # OBR-3 filler order number, else OBR-2 placer order number, else ""
    result_key: str  # what tells this result apart inside its order
    panel_code: str
    panel_name: str
    code_system: str
    code: str
    name: str
    value: str
    value_numeric: float | None
    unit: str
    reference_range: str
    abnormal_flag: str
    observed_at: dt.datetime
    note: str


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def observation_value(obx: Segment) -> tuple[str, float | None]:
    """OBX-5 by OBX-2 value type → (text, number when it is exactly one number)."""
    value_type = obx.value(2).upper()
    repetitions = obx.repetitions(5)
    texts = []
    number = None
    for components in repetitions:
        parts = [component[0].strip() if component else "" for component in components]
        if value_type == "SN":
            comparator, first, separator, second = (parts + ["", "", "", ""])[:4]
            comparator = "" if comparator == "=" else comparator
            text = f"{first}{separator}{second}" if separator else f"{comparator}{first}"
            if len(repetitions) == 1 and not comparator and not separator:
                number = _number(first)
        elif value_type in ("CE", "CWE", "CNE", "CF"):
            code = cwe_code(parts)
            text = code.text or code.code
        elif value_type in ("TX", "FT", "ST"):
            text = " ".join(part for part in parts if part)
        else:
            text = parts[0] if parts else ""
            if value_type == "NM" and len(repetitions) == 1:
                number = _number(text)
        if text:
            texts.append(text)
    joiner = "\n" if value_type in ("TX", "FT") else ", "
    return joiner.join(texts), number


def map_results(segments: list[Segment], ctx: Context) -> list[MappedResult]:
    """Every OBX that carries a value, with its order's panel and the NTE notes that follow."""
    results: list[MappedResult] = []
    obr: Segment | None = None
    order_notes: list[str] = []
    last: MappedResult | None = None
    for segment in segments:
        if segment.name == "OBR":
            obr, order_notes, last = segment, [], None
        elif segment.name == "NTE":
            text = "\n".join(rep[0][0] for rep in segment.repetitions(3) if rep and rep[0][0])
            if not text:
                continue
            if last is not None:
                last.note = f"{last.note}\n{text}" if last.note else text
            elif obr is not None:
                order_notes.append(text)
        elif segment.name == "OBX":
            last = _result(segment, obr, ctx)
            if last is not None:
                if order_notes:
                    last.note = "\n".join(order_notes)
                results.append(last)
    return results


def _result(obx: Segment, obr: Segment | None, ctx: Context) -> MappedResult | None:
    if obx.value(2).upper() == "ED":
        ctx.warn(_("OBX-5: encapsulated data is not kept in the archive."), obx.location(5))
        return None
    value, number = observation_value(obx)
    if not value:
        return None  # pending, cancelled or truncated observations carry nothing to keep
    test = cwe_code(obx.components(3))
    panel = cwe_code(obr.components(4)) if obr is not None else cwe_code([])
    result_key = test.code
    if not test.code:
        if not panel.code:
            ctx.warn(_("OBX-3 holds no test code and no order names one; the result was left out."), obx.location(3))
            return None
        test = panel
        result_key = f"{panel.code}#{obx.value(1)}"
    if obx.value(4):
        result_key = f"{result_key}.{obx.value(4)}"
    observed = moment(obx, 14)
    if observed is None and obr is not None:
        observed = moment(obr, 7) or moment(obr, 22)
    order_key = ""
    if obr is not None:
        order_key = obr.value(3) or obr.value(2)
    note = ""
    if len(value) > VALUE_LENGTH:
        note, value = value, value[: VALUE_LENGTH - 1] + "…"
    return MappedResult(
        order_key=order_key,
        result_key=result_key,
        panel_code=panel.code[:32],
        panel_name=panel.text[:100],
        code_system=valuesets.LAB_CODE_SYSTEMS.get(test.system, "local"),
        code=test.code[:32],
        name=(test.text or test.code)[:100],
        value=value,
        value_numeric=number,
        unit=obx.value(6)[:30],
        reference_range=obx.value(7)[:60],
        abnormal_flag=valuesets.LAB_FLAGS.get(obx.value(8).upper(), ""),
        observed_at=observed.at if observed else ctx.event_time,
        note=note,
    )
