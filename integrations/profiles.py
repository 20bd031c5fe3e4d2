"""Source profiles: how each sending system's codes are read. Checked against the archive's value sets."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_acting_as, audit_write
from hcrm.models import Department
from integrations.models import SourceProfile
from patients.models import CodeSystem, Sex

IDENTIFIER_MEANINGS = ("national_id", "mrn", "visit_card", "insurance", "passport")
EDITABLE_FIELDS = (
    "name",
    "protocol",
    "sending_application",
    "sending_facility",
    "is_active",
    "default_charset",
    "identifier_types",
    "sex_codes",
    "department_codes",
    "diagnosis_systems",
    "mrn_assigner",
    "note",
)
MAX_CODE_LENGTH = 64


def _is_code(value: Any) -> bool:
    return isinstance(value, str) and value.strip() == value and 0 < len(value) <= MAX_CODE_LENGTH


def _listed(values) -> str:
    return ", ".join(sorted(str(value) for value in values))


def identifier_types_errors(value: Any) -> list[str]:
    """{meaning: [PID-3 type codes]}: known meanings, lists of codes, no code with two meanings."""
    if not isinstance(value, dict):
        return [_("Enter an object mapping each meaning to a list of identifier type codes.")]
    errors = []
    unknown = set(value) - set(IDENTIFIER_MEANINGS)
    if unknown:
        errors.append(
            _("Unknown meanings: %(unknown)s. Use %(known)s.")
            % {"unknown": _listed(unknown), "known": ", ".join(IDENTIFIER_MEANINGS)}
        )
    meaning_of: dict[str, str] = {}
    for meaning, codes in value.items():
        if not isinstance(codes, list) or not all(_is_code(code) for code in codes):
            errors.append(_('%(meaning)s: enter a list of codes such as ["MR", "PI"].') % {"meaning": meaning})
            continue
        for code in codes:
            if code in meaning_of and meaning_of[code] != meaning:
                errors.append(
                    _("Code %(code)s is listed for both %(first)s and %(second)s.")
                    % {"code": code, "first": meaning_of[code], "second": meaning}
                )
            meaning_of.setdefault(code, meaning)
    return errors


def _code_map_errors(value: Any, allowed: list[str], what: str) -> list[str]:
    if not isinstance(value, dict):
        return [_("Enter an object mapping the sender's codes to %(what)s.") % {"what": what}]
    errors = []
    bad_keys = [key for key in value if not _is_code(key)]
    if bad_keys:
        errors.append(_("Empty or too long codes: %(codes)s.") % {"codes": _listed(repr(key) for key in bad_keys)})
    unknown = {str(target) for target in value.values() if target not in allowed}
    if unknown:
        errors.append(
            _("Unknown %(what)s: %(unknown)s. Use %(allowed)s.")
            % {"what": what, "unknown": _listed(unknown), "allowed": ", ".join(allowed)}
        )
    return errors


def department_codes_errors(value: Any) -> list[str]:
    """{sender's department code: this hospital's department code}; every target must be a known department."""
    if not isinstance(value, dict):
        return [_("Enter an object mapping the sender's department codes to this hospital's department codes.")]
    errors = []
    bad_keys = [key for key in value if not _is_code(key)]
    if bad_keys:
        errors.append(_("Empty or too long codes: %(codes)s.") % {"codes": _listed(repr(key) for key in bad_keys)})
    targets = {target for target in value.values() if isinstance(target, str)}
    if any(not isinstance(target, str) for target in value.values()):
        errors.append(_("Each department code must map to a department code (text)."))
    known = set(Department.objects.filter(code__in=targets).values_list("code", flat=True))
    unknown = targets - known
    if unknown:
        errors.append(_("Unknown department codes: %(codes)s.") % {"codes": _listed(unknown)})
    return errors


def source_profile_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """Errors per field of a profile's mapping tables; empty when every table has the right shape and values."""
    checks = {
        "identifier_types": identifier_types_errors,
        "sex_codes": lambda value: _code_map_errors(value, Sex.values, _("sex values")),
        "department_codes": department_codes_errors,
        "diagnosis_systems": lambda value: _code_map_errors(value, CodeSystem.values, _("code systems")),
    }
    errors = {}
    for name, check in checks.items():
        if name in data:
            found = check(data[name])
            if found:
                errors[name] = found
    return errors


def _save(*, actor, profile: SourceProfile, data: dict[str, Any], event: str) -> SourceProfile:
    errors = source_profile_errors(data)
    if errors:
        raise ValidationError(errors)
    changed = sorted(name for name in EDITABLE_FIELDS if name in data and getattr(profile, name) != data[name])
    for name in EDITABLE_FIELDS:
        if name in data:
            setattr(profile, name, data[name])
    profile.full_clean()
    with transaction.atomic(), audit_acting_as(actor):
        profile.save()
        audit_write(event=event, instance=profile, details={"changed": changed})
    return profile


def source_profile_create(*, actor, data: dict[str, Any]) -> SourceProfile:
    """Create a source profile (for a new sender, or one that has sent messages without a profile)."""
    return _save(actor=actor, profile=SourceProfile(), data=data, event=Event.CREATE)


def source_profile_update(*, actor, profile: SourceProfile, data: dict[str, Any]) -> SourceProfile:
    """Change how a source's messages are read; messages already processed are untouched until reprocessed."""
    return _save(actor=actor, profile=profile, data=data, event=Event.UPDATE)
