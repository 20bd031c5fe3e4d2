"""Validation of Chinese identity data: national ID (GB 11643), phones, dates."""

from __future__ import annotations

import datetime as dt
import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumbers.phonemetadata import PhoneMetadata

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_PATTERN = re.compile(r"^\d{17}[\dX]$")


def national_id_check_digit(first17: str) -> str:
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def national_id_birth_date(value: str) -> dt.date | None:
    try:
        return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def national_id_sex(value: str) -> str:
    return "male" if int(value[16]) % 2 else "female"


def normalize_national_id(value: str) -> str:
    return (value or "").strip().upper().replace(" ", "")


def validate_national_id(value: str) -> None:
    """An 18-digit resident ID: format, check digit, and a real, past birth date."""
    if not _ID_PATTERN.match(value):
        raise ValidationError(_("A national ID number has 17 digits followed by a digit or X."), code="format")
    if national_id_check_digit(value[:17]) != value[17]:
        raise ValidationError(_("The check digit of this national ID number is wrong."), code="check_digit")
    born = national_id_birth_date(value)
    if born is None or born.year < 1880 or (not _past_everywhere(born) and born > timezone.localdate()):
        raise ValidationError(_("The birth date inside this national ID number is not valid."), code="birth_date")


def validate_national_id_matches(
    value: str, *, birth_date: dt.date | None, sex: str | None
) -> dict[str, ValidationError]:
    """Errors, by field, where the birth date or sex disagree with the national ID."""
    errors: dict[str, ValidationError] = {}
    if birth_date and national_id_birth_date(value) != birth_date:
        errors["birth_date"] = ValidationError(
            _("The birth date does not match the national ID number."), code="mismatch"
        )
    if sex in ("male", "female") and national_id_sex(value) != sex:
        errors["sex"] = ValidationError(_("The sex does not match the national ID number."), code="mismatch")
    return errors


def normalize_mobile(value: str) -> str:
    """A Chinese mobile number in E.164 form (`+8613812345678`), or ValidationError."""
    parsed = _parsed_phone(value)
    if parsed is None:
        raise _invalid_phone()
    if not parsed[1]:
        raise ValidationError(_("Enter a valid Chinese mobile number, e.g. 13812345678."), code="mobile")
    return parsed[0]


def normalize_phone(value: str) -> str:
    """Any valid phone number (landline with area code, mobile, or international) in E.164 form."""
    parsed = _parsed_phone(value)
    if parsed is None:
        raise _invalid_phone()
    return parsed[0]


def _invalid_phone() -> ValidationError:
    return ValidationError(_("Enter a valid phone number."), code="phone")


# Plain 11-digit numbers beginning 13 to 19 are Chinese mobile numbers or no number at all: no other
# kind of Chinese number begins so, and only 179 starts a carrier prefix the parser would strip first.
# For them the metadata's mobile pattern alone gives the parser's answer (a test holds the two together).
_CN_MOBILE_SHAPE = re.compile(r"1(?!79)[3-9]\d{9}")
_CN_MOBILE = re.compile(PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern)


# One message names the same number several times (PID-13, NK1-5, the identity service): parse once.
# The E.164 form a number was normalised to reads as itself, so it is remembered too: the identity
# service normalising what the mapping already normalised then parses nothing.
_parsed_phones: dict[str, tuple[str, bool] | None] = {}
PARSED_PHONES_KEPT = 4096


def _parsed_phone(value: str) -> tuple[str, bool] | None:
    """(E.164 form, whether it is a Chinese mobile number), or None when it is not a valid phone number."""
    text = (value or "").strip()
    national = text[3:] if text[:3] == "+86" else text  # the E.164 form reads as itself
    if _CN_MOBILE_SHAPE.fullmatch(national):
        return (f"+86{national}", True) if _CN_MOBILE.fullmatch(national) else None
    return _phone_parsed_fully(text)


def _phone_parsed_fully(value: str) -> tuple[str, bool] | None:
    try:
        return _parsed_phones[value]
    except KeyError:
        pass
    parsed = _phone_parse(value)
    if len(_parsed_phones) >= PARSED_PHONES_KEPT:
        _parsed_phones.clear()
    _parsed_phones[value] = parsed
    if parsed is not None:
        _parsed_phones[parsed[0]] = parsed
    return parsed


def _phone_parse(value: str) -> tuple[str, bool] | None:
    try:
        number = phonenumbers.parse((value or "").strip(), "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    mobile = number.country_code == 86 and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), mobile


def phone_search_key(value: str) -> str | None:
    """The stored form of a phone typed into a search box, or None if it is not a phone."""
    digits = re.sub(r"[\s\-()]", "", value or "")
    if not re.fullmatch(r"\+?\d{7,15}", digits):
        return None
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif re.fullmatch(r"861[3-9]\d{9}", digits):
        digits = "+" + digits
    try:
        return normalize_phone(digits)
    except ValidationError:
        return None


def format_phone(value: str) -> str:
    """`+8613812345678` → `138 1234 5678` for Chinese numbers; international format otherwise."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 86:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _past_everywhere(value: dt.date | dt.datetime) -> bool:
    """Whether `value` is before yesterday in every time zone, so the active one need not be looked up.

    A date is compared with the UTC date less a day (no zone's date is more than a day behind UTC's);
    an aware datetime with now less two days. Naive datetimes are not decided here.
    """
    now = dt.datetime.now(dt.UTC)
    if isinstance(value, dt.datetime):
        return timezone.is_aware(value) and value < now - dt.timedelta(days=2)
    return value < now.date() - dt.timedelta(days=1)


def validate_not_future(value: dt.date | dt.datetime) -> None:
    if _past_everywhere(value):
        return
    today = timezone.localdate()
    day = value.date() if isinstance(value, dt.datetime) else value
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        day = timezone.localtime(value).date()
    if day > today:
        raise ValidationError(_("This date is in the future."), code="future")
