"""Writes for saved segments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from hcrm.audit import audit_acting_as
from patients.models import Segment
from patients.selectors.segments import segment_filters_clean, segment_patients

# --- Segments ---------------------------------------------------------------------------------------


def _flatten(detail: Any, path: str) -> dict[str, list[ValidationError]]:
    """DRF's nested error detail as Django errors under dotted field names, keeping each error's code."""
    if isinstance(detail, dict):
        errors: dict[str, list[ValidationError]] = {}
        for key, value in detail.items():
            errors.update(_flatten(value, path if key == "non_field_errors" else f"{path}.{key}"))
        return errors
    if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        errors = {}
        for index, item in enumerate(detail):
            errors.update(_flatten(item, f"{path}.{index}") if isinstance(item, (dict, list)) else _flatten(item, path))
        return errors
    items = detail if isinstance(detail, list) else [detail]
    return {path: [ValidationError(str(item), code=getattr(item, "code", "invalid")) for item in items]}


def _clean_filters(filters: Any) -> dict[str, Any]:
    try:
        return segment_filters_clean(filters)
    except serializers.ValidationError as error:
        raise ValidationError(_flatten(error.detail, "filters")) from None


def _segment_fields(name: str, description: str) -> dict[str, str]:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ValidationError(_("Give the segment a name."), code="required")})
    if len(name) > Segment._meta.get_field("name").max_length:
        raise ValidationError({"name": ValidationError(_("The name is too long."), code="max_length")})
    return {"name": name, "description": (description or "").strip()}


def _duplicate_name() -> ValidationError:
    return ValidationError({"name": ValidationError(_("Another segment already has this name."), code="duplicate")})


def segment_create(*, actor, name: str, filters: dict[str, Any] | None = None, description: str = "") -> Segment:
    """Save a named filter; the filters are validated and stored in canonical form (none: every patient)."""
    fields = _segment_fields(name, description)
    spec = _clean_filters(filters or {})
    if Segment.objects.filter(name=fields["name"]).exists():
        raise _duplicate_name()
    owner = actor if getattr(actor, "pk", None) else None
    try:
        with transaction.atomic(), audit_acting_as(actor):
            return Segment.objects.create(**fields, filters=spec, owner=owner)
    except IntegrityError:
        raise _duplicate_name() from None


def segment_update(*, actor, segment: Segment, data: dict[str, Any]) -> Segment:
    """Change a segment's name, description or filters; a change of filters forgets the cached count."""
    unknown = sorted(set(data) - {"name", "description", "filters"})
    if unknown:
        raise ValidationError({field: _("This field cannot be set here.") for field in unknown})
    fields = _segment_fields(data.get("name", segment.name), data.get("description", segment.description))
    if "filters" in data:
        spec = _clean_filters(data["filters"])
        if spec != segment.filters:
            segment.filters = spec
            segment.last_count = None
            segment.last_counted_at = None
    if Segment.objects.filter(name=fields["name"]).exclude(pk=segment.pk).exists():
        raise _duplicate_name()
    segment.name, segment.description = fields["name"], fields["description"]
    try:
        with transaction.atomic(), audit_acting_as(actor):
            segment.save()
    except IntegrityError:
        raise _duplicate_name() from None
    return segment


def segment_delete(*, actor, segment: Segment) -> None:
    """Delete a segment that no plan or campaign uses."""
    try:
        with transaction.atomic(), audit_acting_as(actor):
            segment.delete()
    except ProtectedError:
        raise ValidationError(
            _("A follow-up plan or a campaign uses this segment; change its audience first."), code="protected"
        ) from None


def segment_count(*, segment: Segment, today: dt.date | None = None) -> int:
    """Count the segment's patients (a real COUNT) and keep the figure for lists; not audited, it names no one."""
    count = segment_patients(segment.filters, today=today).count()
    now = timezone.now()
    # update(): a cached figure is not a change anyone made to the segment.
    Segment.objects.filter(pk=segment.pk).update(last_count=count, last_counted_at=now)
    segment.last_count, segment.last_counted_at = count, now
    return count
