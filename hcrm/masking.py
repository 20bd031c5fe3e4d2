"""Masking of sensitive values for display to staff who may not see them."""

from __future__ import annotations

MASK = "*"


def mask_national_id(value: str) -> str:
    """`110105199001011234` → `110105********1234`: region kept, birth date hidden."""
    if not value:
        return ""
    if len(value) <= 10:
        return MASK * len(value)
    return value[:6] + MASK * (len(value) - 10) + value[-4:]


def mask_text(value: str) -> str:
    """Keep the first character so staff can tell a value is present, hide the rest."""
    if not value:
        return ""
    return value[0] + MASK * min(max(len(value) - 1, 3), 8)


def mask_phone(value: str) -> str:
    """`+8613812345678` → `+86138****5678`."""
    if not value or len(value) < 8:
        return MASK * len(value or "")
    return value[:-8] + MASK * 4 + value[-4:]


def mask_for_audit(value: str) -> str:
    """Diffs of sensitive fields in the audit trail record that they changed, not what to."""
    return "[masked]" if value not in ("", "None", None) else value
