"""Console forms for questionnaires, and the helpers that render a version as a form.

`form_rows` turns a version's items (and any answers and errors) into rows that
`followups/_form.html` renders; `answers_from_post` reads the posted form back into answers by linkId.
Phone, SMS and letter follow-ups reuse both.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from followups.models import Questionnaire, QuestionnairePurpose, QuestionnaireStatus
from followups.scoring import item_text, option_code, walk
from followups.selectors import manages_all_questionnaires
from followups.services.items import (
    MAX_VALUE_URL,
    MIN_VALUE_URL,
    extension_value,
    is_scale,
)
from hcrm.models import Department

FIELD_PREFIX = "q-"
TRUE_WORDS = {"true", "yes", "1", "是", "y"}
FALSE_WORDS = {"false", "no", "0", "否", "n"}


# --- Rendering a version as a form ----------------------------------------------------------------------


def field_name(link_id: str) -> str:
    return f"{FIELD_PREFIX}{link_id}"


def kind_of(item: dict) -> str:
    """How an item is shown: its type, `multiple` for a repeating choice, `slider` for an integer scale."""
    kind = item.get("type", "")
    if kind == "choice" and item.get("repeats"):
        return "multiple"
    if is_scale(item) and kind == "integer":
        return "slider"
    return kind


def _shown(value: Any) -> str:
    if value is None or isinstance(value, list):
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _steps(item: dict) -> list[str]:
    """The points of an integer scale, shown as buttons (a range input could not be left unanswered)."""
    if kind_of(item) != "slider":
        return []
    low, high = extension_value(item, MIN_VALUE_URL), extension_value(item, MAX_VALUE_URL)
    try:
        low, high = int(low), int(high)
    except (TypeError, ValueError):
        return []
    return [str(value) for value in range(low, high + 1)] if 0 < high - low <= 20 else []


def form_rows(items: list[dict], answers: dict[str, Any] | None = None, errors: dict[str, Any] | None = None) -> list:
    """The item tree as rows for `followups/_form.html`: value, options, error and children of each item."""
    answers, errors = answers or {}, errors or {}
    rows = []
    for item in items:
        link_id = item["linkId"]
        value = answers.get(link_id)
        values = [str(one) for one in value] if isinstance(value, list) else ([] if value is None else [str(value)])
        error = errors.get(link_id)
        rows.append(
            {
                "item": item,
                "link_id": link_id,
                "name": field_name(link_id),
                "kind": kind_of(item),
                "text": item_text(item),
                "required": bool(item.get("required")),
                "value": _shown(value),
                "options": [
                    {
                        "code": option_code(option),
                        "display": (option.get("valueCoding") or {}).get("display") or option_code(option),
                        "checked": option_code(option) in values,
                    }
                    for option in item.get("answerOption") or ()
                ],
                "steps": _steps(item),
                "min": extension_value(item, MIN_VALUE_URL),
                "max": extension_value(item, MAX_VALUE_URL),
                "error": " ".join(error) if isinstance(error, list) else (error or ""),
                "enable_when": json.dumps(
                    {"behavior": item.get("enableBehavior", "all"), "conditions": item.get("enableWhen") or []},
                    ensure_ascii=False,
                )
                if item.get("enableWhen")
                else "",
                "children": form_rows(item.get("item") or [], answers, errors),
            }
        )
    return rows


def answers_from_post(items: list[dict], data) -> dict[str, Any]:
    """Answers by linkId from a posted form (`QueryDict`); empty fields are left out, values stay as typed."""
    answers: dict[str, Any] = {}
    for item in walk(items):
        name = field_name(item["linkId"])
        kind = item.get("type")
        if kind in ("group", "display"):
            continue
        if kind == "choice" and item.get("repeats"):
            chosen = [value for value in data.getlist(name) if value]
            if chosen:
                answers[item["linkId"]] = chosen
            continue
        value = (data.get(name) or "").strip()
        if not value:
            continue
        if kind == "boolean":
            lowered = value.lower()
            answers[item["linkId"]] = True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else value
        else:
            answers[item["linkId"]] = value
    return answers


# --- Questionnaire metadata -----------------------------------------------------------------------------


class QuestionnaireForm(forms.Form):
    code = forms.SlugField(label=_lazy("Code"), max_length=64, help_text=_lazy("Letters, digits and hyphens; unique."))
    title = forms.CharField(label=_lazy("Title"), max_length=200)
    title_en = forms.CharField(label=_lazy("Title (English)"), max_length=200, required=False)
    description = forms.CharField(label=_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    purpose = forms.ChoiceField(label=_lazy("Purpose"), choices=QuestionnairePurpose.choices)
    status = forms.ChoiceField(label=_lazy("Status"), choices=QuestionnaireStatus.choices)
    departments = forms.ModelMultipleChoiceField(
        label=_lazy("Departments"),
        queryset=Department.objects.order_by("code"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_lazy("None ticked: every department."),
    )
    disease_codes = forms.CharField(
        label=_lazy("Diagnosis code prefixes"),
        required=False,
        help_text=_lazy("ICD-10 or TCM code prefixes separated by commas, e.g. I10, E11; empty: any."),
    )

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if user is not None and not manages_all_questionnaires(user):
            # Department heads scope questionnaires to their own departments.
            departments = self.fields["departments"]
            departments.queryset = departments.queryset.filter(pk__in=sorted(user.department_ids))
            departments.required = True
            departments.help_text = _lazy("Your departments this questionnaire is meant for.")

    @classmethod
    def initial_for(cls, questionnaire: Questionnaire) -> dict:
        return {
            "code": questionnaire.code,
            "title": questionnaire.title,
            "title_en": questionnaire.title_en,
            "description": questionnaire.description,
            "purpose": questionnaire.purpose,
            "status": questionnaire.status,
            "departments": list(questionnaire.departments.all()),
            "disease_codes": ", ".join(questionnaire.disease_codes),
        }


class FilterForm(forms.Form):
    q = forms.CharField(label=_lazy("Search"), required=False)
    purpose = forms.ChoiceField(
        label=_lazy("Purpose"), choices=[("", "—"), *QuestionnairePurpose.choices], required=False
    )
    department = forms.ModelChoiceField(
        label=_lazy("Department"),
        queryset=Department.objects.order_by("code"),
        to_field_name="code",
        required=False,
    )
    status = forms.ChoiceField(label=_lazy("Status"), choices=[("", "—"), *QuestionnaireStatus.choices], required=False)


class ImportForm(forms.Form):
    file = forms.FileField(label=_lazy("FHIR Questionnaire (JSON)"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 2_000_000:
            raise ValidationError(_("The file is larger than 2 MB."))
        try:
            return json.loads(upload.read().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValidationError(_("The file is not valid JSON.")) from None
