"""Template filters of the patient portal."""

from __future__ import annotations

from django import template
from django.utils.translation import get_language

register = template.Library()


@register.filter(name="local_name")
def local_name(department) -> str:
    """A department's English name on English pages when it has one, its Chinese name otherwise."""
    if department is None:
        return ""
    english = (get_language() or "").startswith("en")
    return department.name_en if english and department.name_en else department.name
