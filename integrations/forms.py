"""Console forms of the integration pages: the source profile editor and the error-queue and search filters."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import Protocol, SourceProfile
from integrations.models.inbound import Charset
from integrations.profiles import EDITABLE_FIELDS


class MappingField(forms.JSONField):
    """A JSON object edited as indented text, so long code tables stay readable."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 8, "class": "mapping", "spellcheck": "false"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


class SourceProfileForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    protocol = forms.ChoiceField(label=_("Protocol"), choices=Protocol.choices)
    sending_application = forms.CharField(
        label=_("Sending application"), max_length=100, required=False, help_text=_("MSH-3 as the sender fills it.")
    )
    sending_facility = forms.CharField(
        label=_("Sending facility"), max_length=100, required=False, help_text=_("MSH-4 as the sender fills it.")
    )
    is_active = forms.BooleanField(label=_("Active"), required=False, initial=True)
    default_charset = forms.ChoiceField(
        label=_("Default character set"),
        choices=Charset.choices,
        help_text=_("Used when a message leaves MSH-18 empty."),
    )
    mrn_assigner = forms.CharField(
        label=_("MRN assigning authority"),
        max_length=64,
        required=False,
        help_text=_("Identifiers of MRN type from this assigning authority become the patient's MRN."),
    )
    identifier_types = MappingField(
        label=_("Identifier type codes"),
        help_text=_(
            'PID-3 identifier type codes per meaning, e.g. {"national_id": ["NI"], "mrn": ["MR"]}. '
            "Meanings: national_id, mrn, visit_card, insurance, passport."
        ),
    )
    sex_codes = MappingField(
        label=_("Sex codes"),
        help_text=_("The sender's sex codes (HL7 table 0001, GB/T 2261.1) to male, female, other or unknown."),
    )
    department_codes = MappingField(
        label=_("Department codes"),
        required=False,
        help_text=_("The sender's department codes to this hospital's department codes."),
    )
    diagnosis_systems = MappingField(
        label=_("Diagnosis code systems"),
        help_text=_("Coding-system names sent in DG1-3 to icd10, tcm_disease or tcm_syndrome."),
    )
    note = forms.CharField(label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_department_codes(self):
        return self.cleaned_data["department_codes"] or {}

    @classmethod
    def initial_from(cls, profile: SourceProfile) -> dict:
        return {name: getattr(profile, name) for name in EDITABLE_FIELDS}

    def data_for_service(self) -> dict:
        return {name: self.cleaned_data[name] for name in EDITABLE_FIELDS}


class ErrorQueueFilterForm(forms.Form):
    source = forms.ModelChoiceField(
        label=_("Source"),
        queryset=SourceProfile.objects.order_by("name"),
        to_field_name="uuid",
        required=False,
        empty_label=_("Any source"),
    )
    sender = forms.CharField(
        label=_("Sender without profile"), required=False, help_text=_("APP^FACILITY, exactly as sent.")
    )
    message_type = forms.CharField(label=_("Message type"), required=False, help_text=_("e.g. ADT^A01"))
    received_from = forms.DateField(
        label=_("Received from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(
        label=_("Received until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("received_from") and data.get("received_to") and data["received_from"] > data["received_to"]:
            self.add_error("received_to", _("The end date is before the start date."))
        return data

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "source": data.get("source"),
            "sender": (data.get("sender") or "").strip(),
            "message_type": (data.get("message_type") or "").strip().upper(),
            "received_from": data.get("received_from"),
            "received_to": data.get("received_to"),
        }


class InboundSearchForm(forms.Form):
    control_id = forms.CharField(label=_("Control id"), max_length=199, required=False, help_text=_("MSH-10, exact."))
    identifier = forms.CharField(
        label=_("Patient identifier"),
        max_length=100,
        required=False,
        help_text=_("An MRN, card, national ID or other identifier as sent, exact."),
    )

    def clean(self):
        data = super().clean()
        data["control_id"] = (data.get("control_id") or "").strip()
        data["identifier"] = (data.get("identifier") or "").strip()
        if not data["control_id"] and not data["identifier"]:
            raise forms.ValidationError(_("Enter a control id or a patient identifier."))
        if " " in data["identifier"]:
            self.add_error("identifier", _("Enter one identifier, without spaces."))
        return data
