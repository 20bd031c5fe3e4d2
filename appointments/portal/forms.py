"""Portal forms: input shape only; the services decide."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from appointments.models import Relationship


class MobileForm(forms.Form):
    mobile = forms.CharField(
        label=_("Mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel", "placeholder": "13812345678"}),
    )


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=_("Code from the SMS"),
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": _("The code has 6 digits.")},
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "maxlength": 6, "autofocus": True}
        ),
    )


class IdentityForm(forms.Form):
    name = forms.CharField(label=_("Real name"), max_length=100, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    national_id = forms.CharField(
        label=_("National ID number"), max_length=18, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )


class RegisterForm(MobileForm, IdentityForm):
    field_order = ["mobile", "name", "national_id"]


class FamilyMemberForm(IdentityForm):
    relationship = forms.ChoiceField(
        label=_("Relationship"),
        choices=Relationship.choices,
        initial=Relationship.CHILD,
    )


def errors_onto(form: forms.Form, error: ValidationError) -> None:
    """Put a service's errors on the form fields they name (the rest above the form)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)
