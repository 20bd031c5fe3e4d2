"""Writes of the hospital's outreach settings: quiet hours, the daily cap, RFM boundaries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from hcrm.audit import audit_acting_as
from patients.models import OutreachSettings
from patients.selectors.outreach import outreach_settings

# --- Outreach settings ----------------------------------------------------------------------------

BOUNDARY_FIELDS = ("rfm_recency_days", "rfm_frequency_visits", "rfm_monetary_yuan")
SETTINGS_FIELDS = ("quiet_hours_start", "quiet_hours_end", "daily_message_cap", "rfm_window_days", *BOUNDARY_FIELDS)


def _boundaries(value: Any, *, whole: bool) -> list[int | float]:
    if isinstance(value, str):
        value = [part for part in value.replace("，", ",").split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValidationError(_("Give exactly four numbers."), code="invalid")
    numbers: list[int | float] = []
    for item in value:
        try:
            number = Decimal(str(item).strip())
        except ArithmeticError:
            raise ValidationError(_("Give exactly four numbers."), code="invalid") from None
        if isinstance(item, bool) or not number.is_finite() or number <= 0:
            raise ValidationError(_("Each boundary must be a positive number."), code="invalid")
        if whole and number != number.to_integral_value():
            raise ValidationError(_("Each boundary must be a whole number."), code="invalid")
        if number.as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValidationError(_("Use at most two decimal places."), code="invalid")
        numbers.append(int(number) if number == number.to_integral_value() else float(number))
    if any(later <= earlier for earlier, later in zip(numbers, numbers[1:], strict=False)):
        raise ValidationError(_("The boundaries must be strictly increasing."), code="invalid")
    return numbers


def _time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(_("Enter a time as HH:MM."), code="invalid") from None


def _whole(value: Any, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool):
        raise ValidationError(_("Enter a whole number."), code="invalid")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(_("Enter a whole number."), code="invalid") from None
    if not minimum <= number <= maximum:
        raise ValidationError(
            _("Enter a number from %(minimum)s to %(maximum)s.") % {"minimum": minimum, "maximum": maximum},
            code="invalid",
        )
    return number


def outreach_settings_update(*, actor, data: dict[str, Any]) -> OutreachSettings:
    """Change quiet hours, the daily cap, the RFM window and boundaries; every error is reported at once."""
    unknown = sorted(set(data) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationError({field: _("This field cannot be set here.") for field in unknown})
    parsers = {
        "quiet_hours_start": _time,
        "quiet_hours_end": _time,
        "daily_message_cap": lambda value: _whole(value, minimum=1, maximum=1000),
        "rfm_window_days": lambda value: _whole(value, minimum=1, maximum=36500),
        "rfm_recency_days": lambda value: _boundaries(value, whole=True),
        "rfm_frequency_visits": lambda value: _boundaries(value, whole=True),
        "rfm_monetary_yuan": lambda value: _boundaries(value, whole=False),
    }
    values, errors = {}, {}
    for field, value in data.items():
        try:
            values[field] = parsers[field](value)
        except ValidationError as error:
            errors[field] = error
    start = values.get("quiet_hours_start")
    end = values.get("quiet_hours_end")
    if start is not None and start == end:
        errors.setdefault("quiet_hours_end", ValidationError(_("The end must differ from the start."), code="invalid"))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(), audit_acting_as(actor):
        row = OutreachSettings.objects.select_for_update().filter(pk=outreach_settings().pk).get()
        for field, value in values.items():
            setattr(row, field, value)
        if getattr(actor, "pk", None):
            row.updated_by = actor
        row.save()
    return row
