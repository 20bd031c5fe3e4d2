"""Parsing what staff type into the schedule services: each parser raises a ValidationError saying what is wrong,
and `parse` reports every field's error at once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def invalid(message: str) -> ValidationError:
    return ValidationError(message, code="invalid")


def whole(value: Any, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or value is None:
        raise invalid(_("Enter a whole number."))
    try:
        number = int(str(value).strip())
    except ValueError:
        raise invalid(_("Enter a whole number.")) from None
    if not minimum <= number <= maximum:
        raise invalid(_("Enter a number from %(minimum)s to %(maximum)s.") % {"minimum": minimum, "maximum": maximum})
    return number


def time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value).strip())
    except ValueError:
        raise invalid(_("Enter a time as HH:MM.")) from None


def date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise invalid(_("Enter a date as YYYY-MM-DD.")) from None


def optional_date(value: Any) -> dt.date | None:
    return None if value in (None, "") else date(value)


def choice(choices) -> Any:
    def parse(value: Any) -> str:
        if value not in choices.values:
            raise invalid(_("Choose one of: %(choices)s.") % {"choices": ", ".join(choices.values)})
        return value

    return parse


def text(maximum: int, *, required: bool = False):
    def parse(value: Any) -> str:
        text = str(value or "").strip()
        if required and not text:
            raise ValidationError(_("This field is required."), code="required")
        if len(text) > maximum:
            raise invalid(_("Use at most %(count)d characters.") % {"count": maximum})
        return text

    return parse


def fee(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise invalid(_("Enter an amount in yuan, such as 25 or 25.50.")) from None
    if not amount.is_finite() or amount < 0 or amount >= 1_000_000:
        raise invalid(_("Enter an amount from 0 to 999999.99 yuan."))
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise invalid(_("Use at most two decimal places."))
    return amount


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("true", "1", "on", "yes"):
        return True
    if str(value).strip().lower() in ("false", "0", "off", "no", ""):
        return False
    raise invalid(_("Enter yes or no."))


def instance(model):
    def parse(value: Any):
        if isinstance(value, model):
            return value
        try:
            return model.objects.get(uuid=value)
        except (model.DoesNotExist, ValidationError, ValueError):
            raise invalid(_("Choose one from the list.")) from None

    return parse


def parse(data: dict[str, Any], parsers: dict[str, Any]) -> dict[str, Any]:
    """Parse every given field, reporting every error at once; unknown fields are errors too."""
    errors: dict[str, Any] = {field: _("This field cannot be set here.") for field in sorted(set(data) - set(parsers))}
    values = {}
    for field, value in data.items():
        if field in parsers:
            try:
                values[field] = parsers[field](value)
            except ValidationError as error:
                errors[field] = error
    if errors:
        raise ValidationError(errors)
    return values


def minutes(value: dt.time) -> int:
    return value.hour * 60 + value.minute
