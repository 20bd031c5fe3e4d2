"""HL7 data types read into plain Python values: DTM, XPN/XCN, XTN, XAD, CX, CWE. Pure functions."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from patients.validators import normalize_mobile, normalize_phone

_DTM = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?(?P<second>\d{2})?"
    r"(?:\.(?P<fraction>\d{1,4}))?(?P<offset>[+-]\d{4})?$"
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidValue(ValueError):
    """A value that does not read as its data type."""


@dataclass(frozen=True)
class Moment:
    """A DTM as sent: the date as written, and an aware datetime (local time zone when no offset is given)."""

    date: dt.date
    at: dt.datetime
    precision: int  # number of digits before any fraction or offset: 4, 6, 8, 10, 12 or 14


def parse_dtm(value: str) -> Moment | None:
    """YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]; None for an empty value; InvalidValue otherwise."""
    value = value.strip()
    if not value:
        return None
    # A message repeats its times (MSH-7, EVN-2, DG1-5, ...): each is read once per zone.
    return _parse_dtm(value, timezone.get_default_timezone())


@functools.lru_cache(maxsize=1024)
def _parse_dtm(value: str, default_zone: dt.tzinfo) -> Moment:
    match = _DTM.match(value)
    if not match:
        raise InvalidValue(value)
    parts = match.groupdict()
    if parts["hour"] and not parts["day"] or parts["fraction"] and not parts["second"]:
        raise InvalidValue(value)
    try:
        day = dt.date(int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1))
        fraction = (parts["fraction"] or "").ljust(6, "0")
        offset = parts["offset"]
        if offset:
            minutes = int(offset[1:3]) * 60 + int(offset[3:5])
            if int(offset[3:5]) >= 60 or minutes > 14 * 60:
                raise InvalidValue(value)
            zone: dt.tzinfo = dt.timezone(dt.timedelta(minutes=minutes if offset[0] == "+" else -minutes))
        else:
            zone = default_zone
        at = dt.datetime(
            day.year,
            day.month,
            day.day,
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=zone,
        )
    except (ValueError, OverflowError):
        raise InvalidValue(value) from None
    precision = len(value.split(".")[0].split("+")[0].split("-")[0])
    return Moment(date=day, at=at, precision=precision)


def has_cjk(value: str) -> bool:
    return bool(_CJK.search(value))


def person_name(family: str, given: str, middle: str = "") -> str:
    """Chinese names are written family + given with no space; others as given, middle, family."""
    family, given, middle = family.strip(), given.strip(), middle.strip()
    if has_cjk(family + given + middle):
        return f"{family}{given}{middle}"
    return " ".join(part for part in (given, middle, family) if part)


def xpn_name(components: list[list[str]]) -> str:
    """XPN: family (FN, first subcomponent is the surname) ^ given ^ further given names."""

    def part(index: int) -> str:
        return components[index][0] if index < len(components) and components[index] else ""

    return person_name(part(0), part(1), part(2))


def xcn_name(components: list[list[str]]) -> str:
    """XCN (a doctor): id ^ family ^ given ^ further given names."""
    return xpn_name(components[1:])


@dataclass(frozen=True)
class Phones:
    mobile: str = ""
    phone: str = ""
    email: str = ""


def xtn_number(components: list[str]) -> str:
    """The number of an XTN: component 1, else 12 (unformatted), else country + area + local (5, 6, 7)."""

    def part(index: int) -> str:
        return components[index - 1].strip() if index <= len(components) else ""

    if part(1) and "@" not in part(1):
        return part(1)
    if part(12):
        return part(12)
    if part(7):
        country = f"+{part(5).lstrip('+')}" if part(5) else ""
        return f"{country}{part(6)}{part(7)}"
    return ""


def xtn_phones(repetitions: list[list[str]]) -> Phones:
    """The first valid mobile, the first other valid phone and the first e-mail address; the rest is left out."""
    mobile = phone = email = ""
    for components in repetitions:
        candidates = [components[3] if len(components) > 3 else "", components[0] if components else ""]
        for candidate in candidates:
            if not email and _EMAIL.match(candidate.strip()):
                email = candidate.strip()
        number = xtn_number(components)
        if not number:
            continue
        try:
            normalized = normalize_mobile(number)
        except ValidationError:
            normalized = ""
        if normalized and not mobile:
            mobile = normalized
            continue
        try:
            normalized = normalize_phone(number)
        except ValidationError:
            continue
        if not phone and normalized != mobile:
            phone = normalized
    return Phones(mobile=mobile, phone=phone, email=email)


@dataclass(frozen=True)
class Address:
    detail: str = ""
    city: str = ""
    province: str = ""
    postal_code: str = ""
    district: str = ""


# Home first; birth place and office last.
_ADDRESS_PREFERENCE = {"H": 0, "HOME": 0, "L": 1, "C": 2, "M": 3, "P": 4, "": 5, "O": 8, "BDL": 9, "BR": 9, "N": 9}


def xad_address(repetitions: list[list[list[str]]]) -> Address | None:
    """The patient's address among the repetitions of an XAD field, preferring home, legal and current ones."""

    def text(components: list[list[str]], index: int) -> str:
        return components[index - 1][0].strip() if index <= len(components) and components[index - 1] else ""

    best = None
    for components in repetitions:
        street = " ".join(part.strip() for part in (components[0] if components else []) if part.strip())
        detail = ", ".join(part for part in (street, text(components, 2)) if part)
        city, province, postal = text(components, 3), text(components, 4), text(components, 5).replace(" ", "")
        if not (detail or city or province):
            continue
        rank = _ADDRESS_PREFERENCE.get(text(components, 7).upper(), 6)
        address = Address(
            detail=detail[:200],
            city=city[:30],
            province=province[:30],
            # Postal codes longer than the archive's six characters (ZIP+4, say) are left out.
            postal_code=postal if len(postal) <= 6 else "",
            district=text(components, 9)[:30] if has_cjk(text(components, 9)) else "",
        )
        if best is None or rank < best[0]:
            best = (rank, address)
    return best[1] if best else None


@dataclass(frozen=True)
class Identifier:
    """CX: value, type code (HL7 table 0203 or local) and assigning authority."""

    value: str
    type_code: str
    assigner: str


def cx_identifier(components: list[list[str]], default_assigner: str) -> Identifier | None:
    def sub(index: int, subindex: int = 1) -> str:
        if index > len(components) or subindex > len(components[index - 1]):
            return ""
        return components[index - 1][subindex - 1].strip()

    value = sub(1)
    if not value:
        return None
    assigner = sub(4) or sub(4, 2) or sub(6) or sub(6, 2) or default_assigner
    return Identifier(value=value[:64], type_code=sub(5).upper(), assigner=assigner[:64])


@dataclass(frozen=True)
class Code:
    """CE/CWE: code, text and coding system name."""

    code: str
    text: str
    system: str


def cwe_code(components: list[str]) -> Code:
    def part(index: int) -> str:
        return components[index - 1].strip() if index <= len(components) else ""

    return Code(code=part(1), text=part(2) or part(9), system=part(3).upper())


def first_code(components: list[str]) -> str:
    return components[0].strip().upper() if components else ""
