from django import template

from hcrm.masking import mask_phone, mask_text
from patients.validators import format_phone

register = template.Library()


@register.filter(name="phone")
def phone_filter(value: str) -> str:
    """`+8613812345678` → `138 1234 5678`."""
    return format_phone(value or "")


@register.filter(name="mask")
def mask_filter(value: str) -> str:
    return mask_text(value or "")


@register.filter(name="mask_phone")
def mask_phone_filter(value: str) -> str:
    return mask_phone(value or "")


@register.filter(name="display")
def display_filter(patient_view, field: str) -> str:
    """A patient field as a person reads it: choice label, masked where the viewer may not see it."""
    return patient_view.display(field)
