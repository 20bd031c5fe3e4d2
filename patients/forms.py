from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from hcrm.models import Department
from patients.models import Channel, ConsentPurpose, Patient, Sex, Tag

ETHNIC_GROUPS = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
]


class PatientSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        widget=forms.TextInput(
            attrs={
                "placeholder": _("Name, pinyin (zhs), phone, MRN, card or ID number"),
                "autofocus": True,
                "autocomplete": "off",
                "type": "search",
            }
        ),
    )
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.filter(is_active=True),
        required=False,
        to_field_name="code",
        empty_label=_("All departments"),
    )
    sex = forms.ChoiceField(label=_("Sex"), choices=[("", _("Any sex")), *Sex.choices], required=False)
    tag = forms.ModelChoiceField(
        label=_("Tag"), queryset=Tag.objects.all(), required=False, to_field_name="name", empty_label=_("Any tag")
    )


class PatientForm(forms.ModelForm):
    """Registration and editing. Sensitive fields are left out for staff who may not see them."""

    departments = forms.ModelMultipleChoiceField(
        label=_("Departments"),
        queryset=Department.objects.filter(is_active=True),
        required=False,
        help_text=_("Departments caring for this patient; staff of these departments can find the patient."),
    )

    class Meta:
        model = Patient
        fields = [
            "name",
            "sex",
            "birth_date",
            "national_id",
            "mobile",
            "phone",
            "email",
            "province",
            "city",
            "district",
            "address_detail",
            "postal_code",
            "employer",
            "occupation",
            "income_band",
            "marital_status",
            "ethnicity",
            "family_notes",
            "source",
            "preferred_language",
            "tags",
            "is_deceased",
            "deceased_date",
        ]
        widgets = {
            "birth_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "deceased_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "family_notes": forms.Textarea(attrs={"rows": 2}),
            "mobile": forms.TextInput(attrs={"inputmode": "tel", "placeholder": "13812345678"}),
            "phone": forms.TextInput(attrs={"inputmode": "tel"}),
            "national_id": forms.TextInput(attrs={"autocomplete": "off", "maxlength": 18}),
            "ethnicity": forms.TextInput(attrs={"list": "ethnic-groups"}),
            "tags": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, can_edit_sensitive: bool = True, is_new: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not is_new:
            del self.fields["departments"]
        if not can_edit_sensitive:
            for field in Patient.SENSITIVE_FIELDS:
                self.fields.pop(field, None)

    SECTIONS = (
        (_("Identity"), ("name", "sex", "birth_date", "national_id")),
        (_("Contact"), ("mobile", "phone", "email", "preferred_language")),
        (_("Address"), ("province", "city", "district", "address_detail", "postal_code")),
        (
            _("Work and family"),
            ("employer", "occupation", "income_band", "marital_status", "ethnicity", "family_notes"),
        ),
        (_("Registration"), ("source", "departments", "tags")),
        (_("Status"), ("is_deceased", "deceased_date")),
    )

    def sections(self):
        """The form's fields grouped for display; fields hidden from the user's role are skipped."""
        return [
            (title, [self[name] for name in names if name in self.fields])
            for title, names in self.SECTIONS
            if any(name in self.fields for name in names)
        ]

    def _post_clean(self):
        # Model validation runs in the service, which knows about national IDs and phones.
        pass

    def service_data(self) -> dict:
        return {key: value for key, value in self.cleaned_data.items() if key not in ("tags", "departments")}

    def add_service_errors(self, error: ValidationError) -> None:
        if hasattr(error, "error_dict"):
            for field, messages in error.error_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        else:
            self.add_error(None, error)


class RevealForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        min_length=4,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": _("e.g. emergency admission, patient unconscious")}),
        help_text=_("Your name, the time and this reason are recorded and reviewed."),
    )


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(choices=ConsentPurpose.choices)
    channel = forms.ChoiceField(choices=Channel.choices)
    granted = forms.BooleanField(required=False)
