"""Checking one spreadsheet row and turning it into what the identity service takes: pure functions."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import translation
from django.utils.translation import gettext as _

from patients.models import IdentifierKind, MaritalStatus, Patient, PatientSource, Sex
from patients.services.identity import IdentifierInput, PatientDemographics
from patients.validators import (
    normalize_mobile,
    normalize_national_id,
    normalize_phone,
    validate_national_id,
    validate_national_id_matches,
    validate_not_future,
)

# HL7 table 0001, GB/T 2261.1 (0 unknown, 1 male, 2 female, 9 not stated) and the words people type.
SEX_CODES: dict[str, str] = {
    "男": Sex.MALE,
    "男性": Sex.MALE,
    "女": Sex.FEMALE,
    "女性": Sex.FEMALE,
    "未知": Sex.UNKNOWN,
    "未知的性别": Sex.UNKNOWN,
    "未说明": Sex.UNKNOWN,
    "未说明的性别": Sex.UNKNOWN,
    "不详": Sex.UNKNOWN,
    "其他": Sex.OTHER,
    "m": Sex.MALE,
    "male": Sex.MALE,
    "f": Sex.FEMALE,
    "female": Sex.FEMALE,
    "u": Sex.UNKNOWN,
    "unknown": Sex.UNKNOWN,
    "n": Sex.UNKNOWN,
    "o": Sex.OTHER,
    "a": Sex.OTHER,
    "other": Sex.OTHER,
    "1": Sex.MALE,
    "2": Sex.FEMALE,
    "0": Sex.UNKNOWN,
    "9": Sex.UNKNOWN,
}

# GB/T 2261.2: 21–23 are kinds of married.
MARITAL_CODES: dict[str, str] = {
    "10": MaritalStatus.UNMARRIED,
    "20": MaritalStatus.MARRIED,
    "21": MaritalStatus.MARRIED,
    "22": MaritalStatus.MARRIED,
    "23": MaritalStatus.MARRIED,
    "30": MaritalStatus.WIDOWED,
    "40": MaritalStatus.DIVORCED,
    "90": MaritalStatus.OTHER,
    "未婚": MaritalStatus.UNMARRIED,
    "已婚": MaritalStatus.MARRIED,
    "初婚": MaritalStatus.MARRIED,
    "再婚": MaritalStatus.MARRIED,
    "复婚": MaritalStatus.MARRIED,
    "丧偶": MaritalStatus.WIDOWED,
    "离婚": MaritalStatus.DIVORCED,
    "其他": MaritalStatus.OTHER,
    "未说明": MaritalStatus.UNKNOWN,
    "unmarried": MaritalStatus.UNMARRIED,
    "single": MaritalStatus.UNMARRIED,
    "married": MaritalStatus.MARRIED,
    "widowed": MaritalStatus.WIDOWED,
    "divorced": MaritalStatus.DIVORCED,
    "other": MaritalStatus.OTHER,
}

IDENTIFIER_COLUMNS = {
    "visit_card": IdentifierKind.VISIT_CARD,
    "insurance": IdentifierKind.INSURANCE,
    "passport": IdentifierKind.PASSPORT,
}
# Keys that must not repeat inside one file: a second row with one of them is the same person twice.
UNIQUE_COLUMNS = ("national_id", "mrn", *IDENTIFIER_COLUMNS)

_TEXT_FIELDS = ("province", "city", "district", "address_detail", "ethnicity", "occupation", "employer")
_LIST_SPLIT = re.compile(r"[,，;；、|/]")
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
)
_TIME_SUFFIX = re.compile(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
# Above this, an Excel number has lost digits: its 15 significant digits cannot hold an 18-digit ID.
_EXCEL_DIGITS = 10**15


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}


@dataclass
class Lookups:
    """The names a row may refer to: tag names and department codes or names (either language)."""

    tags: dict[str, str] = field(default_factory=dict)  # normalised name → Tag.name
    departments: dict[str, str] = field(default_factory=dict)  # normalised code or name → Department.code
    sources: dict[str, str] = field(default_factory=dict)  # normalised value or label → PatientSource value

    @classmethod
    def load(cls) -> Lookups:
        from hcrm.models import Department
        from patients.models import Tag

        lookups = cls(sources=source_codes())
        for name in Tag.objects.values_list("name", flat=True):
            lookups.tags[_key(name)] = name
        for code, name, name_en in Department.objects.filter(is_active=True).values_list("code", "name", "name_en"):
            for key in (name_en, name, code):  # a code wins over another department's name
                if key:
                    lookups.departments[_key(key)] = code
        return lookups


@dataclass
class ParsedRow:
    row: int
    demographics: PatientDemographics
    source: str = ""
    tags: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # UNIQUE_COLUMNS present in the row, normalised

    @property
    def ok(self) -> bool:
        return not self.errors


def _key(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


def source_codes() -> dict[str, str]:
    """Patient sources by value and by their English and Chinese labels."""
    codes: dict[str, str] = {}
    for language in ("en", "zh-hans"):
        with translation.override(language):
            for value, label in PatientSource.choices:
                codes[_key(str(label))] = value
    codes.update({_key(value): value for value in PatientSource.values})
    return codes


def cell_text(value: Any) -> str:
    """A cell as the text a person sees in it; whole numbers without ".0", dates as ISO dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return unicodedata.normalize("NFKC", str(value)).strip()


def date_parse(value: Any) -> dt.date:
    """1980-01-02, 1980/1/2, 1980.1.2, 19800102, 1980年1月2日, or an Excel date cell; ValueError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _TIME_SUFFIX.sub("", cell_text(value))
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            return dt.date(year, month, day)
    raise ValueError(text)


def _error(errors: list[RowError], row: int, field_name: str, error: ValidationError | str, code: str = "") -> None:
    if isinstance(error, ValidationError):
        for item in error.error_list:
            message = str(item.message) % item.params if item.params else str(item.message)
            errors.append(RowError(row, field_name, item.code or code or "invalid", message))
    else:
        errors.append(RowError(row, field_name, code, str(error)))


def _max_length(name: str) -> int:
    return Patient._meta.get_field(name).max_length


def row_parse(number: int, cells: dict[str, Any], lookups: Lookups, *, assigner: str = "") -> ParsedRow:
    """Check one row (`cells` by field name) and build its demographics; every problem becomes a RowError."""
    errors: list[RowError] = []
    text = {name: cell_text(value) for name, value in cells.items()}
    demographics = PatientDemographics()
    parsed = ParsedRow(row=number, demographics=demographics, errors=errors)

    name = re.sub(r"\s+", " ", text.get("name", ""))
    if not name:
        _error(errors, number, "name", _("The name is missing."), "required")
    elif len(name) > _max_length("name"):
        _error(errors, number, "name", _too_long(_max_length("name")), "max_length")
    demographics.name = name

    sex = text.get("sex", "")
    if sex:
        code = SEX_CODES.get(sex.lower())
        if code is None:
            _error(errors, number, "sex", _("Unknown sex code “%(value)s”.") % {"value": sex}, "unknown_code")
        else:
            demographics.sex = code

    raw_birth = cells.get("birth_date")
    if text.get("birth_date"):
        try:
            demographics.birth_date = date_parse(raw_birth)
        except ValueError:
            _error(
                errors,
                number,
                "birth_date",
                _("The birth date “%(value)s” is not a date; write it as 1980-01-02, 1980/1/2 or 19800102.")
                % {"value": text["birth_date"]},
                "invalid",
            )
        else:
            try:
                validate_not_future(demographics.birth_date)
            except ValidationError as error:
                _error(errors, number, "birth_date", error)
                demographics.birth_date = None

    national_id = normalize_national_id(text.get("national_id", ""))
    if national_id:
        raw = cells.get("national_id")
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= _EXCEL_DIGITS:
            _error(
                errors,
                number,
                "national_id",
                _(
                    "Excel stored this national ID number as a number and lost its last digits; format the column as text."
                ),
                "number",
            )
        else:
            try:
                validate_national_id(national_id)
            except ValidationError as error:
                _error(errors, number, "national_id", error)
            else:
                demographics.national_id = national_id
                parsed.keys["national_id"] = national_id
                for field_name, error in validate_national_id_matches(
                    national_id, birth_date=demographics.birth_date, sex=demographics.sex or None
                ).items():
                    _error(errors, number, field_name, error)

    for field_name, normalize in (("mobile", normalize_mobile), ("phone", normalize_phone)):
        if text.get(field_name):
            try:
                setattr(demographics, field_name, normalize(text[field_name]))
            except ValidationError as error:
                _error(errors, number, field_name, error)

    if text.get("email"):
        try:
            validate_email(text["email"])
        except ValidationError:
            _error(errors, number, "email", _("Enter a valid email address."), "invalid")
        else:
            demographics.email = text["email"]

    postal_code = text.get("postal_code", "")
    if postal_code:
        if re.fullmatch(r"\d{6}", postal_code):
            demographics.postal_code = postal_code
        else:
            _error(errors, number, "postal_code", _("A postal code has six digits."), "invalid")

    marital = text.get("marital_status", "")
    if marital:
        code = MARITAL_CODES.get(marital.lower())
        if code is None:
            _error(
                errors,
                number,
                "marital_status",
                _("Unknown marital status “%(value)s”.") % {"value": marital},
                "unknown_code",
            )
        else:
            demographics.marital_status = code

    for field_name in _TEXT_FIELDS:
        value = text.get(field_name, "")
        if len(value) > _max_length(field_name):
            _error(errors, number, field_name, _too_long(_max_length(field_name)), "max_length")
        else:
            setattr(demographics, field_name, value)

    mrn = text.get("mrn", "")
    if mrn:
        if len(mrn) > _max_length("mrn"):
            _error(errors, number, "mrn", _too_long(_max_length("mrn")), "max_length")
        else:
            demographics.mrn = mrn
            parsed.keys["mrn"] = mrn
    for column, kind in IDENTIFIER_COLUMNS.items():
        value = text.get(column, "").replace(" ", "")
        if not value:
            continue
        if len(value) > 64:
            _error(errors, number, column, _too_long(64), "max_length")
            continue
        demographics.identifiers.append(IdentifierInput(kind=kind, value=value, assigner=assigner))
        parsed.keys[column] = value

    source = text.get("source", "")
    if source:
        parsed.source = lookups.sources.get(_key(source), "")
        if not parsed.source:
            _error(
                errors, number, "source", _("Unknown patient source “%(value)s”.") % {"value": source}, "unknown_code"
            )

    for value in _split(text.get("tags", "")):
        tag = lookups.tags.get(_key(value))
        if tag is None:
            _error(errors, number, "tags", _("There is no tag “%(value)s”.") % {"value": value}, "unknown_tag")
        elif tag not in parsed.tags:
            parsed.tags.append(tag)
    for value in _split(text.get("departments", "")):
        department = lookups.departments.get(_key(value))
        if department is None:
            _error(
                errors,
                number,
                "departments",
                _("There is no active department “%(value)s”.") % {"value": value},
                "unknown_department",
            )
        elif department not in parsed.departments:
            parsed.departments.append(department)
    return parsed


def _split(value: str) -> list[str]:
    return [part.strip() for part in _LIST_SPLIT.split(value) if part.strip()]


def _too_long(limit: int) -> str:
    return _("At most %(limit)s characters.") % {"limit": limit}


def rows_parse(
    rows: Iterable[tuple[int, list[Any]]], columns: dict[str, int], lookups: Lookups, *, assigner: str = ""
) -> Iterator[ParsedRow]:
    """Parse every non-blank row, and mark a row that repeats an earlier row's national ID or identifier."""
    first_seen: dict[tuple[str, str], int] = {}
    for number, values in rows:
        if not any(cell_text(value) for value in values):
            continue
        cells = {name: values[index] if index < len(values) else None for name, index in columns.items()}
        parsed = row_parse(number, cells, lookups, assigner=assigner)
        for column, value in parsed.keys.items():
            earlier = first_seen.setdefault((column, value), number)
            if earlier != number:
                parsed.errors.append(
                    RowError(
                        number,
                        column,
                        "duplicate",
                        _("Row %(row)s of this file has the same value.") % {"row": earlier},
                    )
                )
        yield parsed
