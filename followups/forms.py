"""Console forms for questionnaires and the builder, and the helpers that render a version as a form.

`form_rows` turns a version's items (and any answers and errors) into rows that
`followups/_form.html` renders; `answers_from_post` reads the posted form back into answers by linkId.
Phone, SMS and letter follow-ups reuse both.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from followups.models import Questionnaire, QuestionnairePurpose, QuestionnaireStatus
from followups.scoring import OPERATORS, option_code, option_score, walk
from followups.services.items import (
    ITEM_CONTROL_SYSTEM,
    ITEM_CONTROL_URL,
    MAX_VALUE_URL,
    MIN_VALUE_URL,
    extension_value,
    is_scale,
)
from hcrm.models import Department

FIELD_PREFIX = "q-"
ORDINAL_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MANAGED_URLS = {ORDINAL_URL, MIN_VALUE_URL, MAX_VALUE_URL, ITEM_CONTROL_URL}
TRUE_WORDS = {"true", "yes", "1", "是", "y"}
FALSE_WORDS = {"false", "no", "0", "否", "n"}


# --- Rendering a version as a form ----------------------------------------------------------------------


def field_name(link_id: str) -> str:
    return f"{FIELD_PREFIX}{link_id}"


def _kind(item: dict) -> str:
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


def item_text(item: dict) -> str:
    """What the form shows: the item's text, else its code's display (coded questions may have no text)."""
    if item.get("text"):
        return item["text"]
    for code in item.get("code") or ():
        if code.get("display") or code.get("code"):
            return code.get("display") or code.get("code")
    return ""


def _steps(item: dict) -> list[str]:
    """The points of an integer scale, shown as buttons (a range input could not be left unanswered)."""
    if _kind(item) != "slider":
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
                "kind": _kind(item),
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


class JsonForm(forms.Form):
    items = forms.CharField(label=_lazy("Items (FHIR Questionnaire.item)"), widget=forms.Textarea(attrs={"rows": 24}))
    scoring = forms.CharField(label=_lazy("Scoring rules"), required=False, widget=forms.Textarea(attrs={"rows": 12}))

    def _json(self, name: str, kind: type, empty):
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return empty
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValidationError(_("Not valid JSON: %(error)s") % {"error": error}) from None
        if not isinstance(value, kind):
            raise ValidationError(_("Expected a JSON list.") if kind is list else _("Expected a JSON object."))
        return value

    def clean_items(self):
        return self._json("items", list, [])

    def clean_scoring(self):
        return self._json("scoring", dict, {})


# --- One item of the builder ----------------------------------------------------------------------------

KINDS = [
    ("group", _lazy("Group of items")),
    ("display", _lazy("Text shown (no answer)")),
    ("boolean", _lazy("Yes / no")),
    ("choice", _lazy("Single choice")),
    ("multiple", _lazy("Multiple choice")),
    ("scale", _lazy("Scale (slider, e.g. 0–10)")),
    ("integer", _lazy("Whole number")),
    ("decimal", _lazy("Decimal number")),
    ("date", _lazy("Date")),
    ("string", _lazy("Short text")),
    ("text", _lazy("Long text")),
]


class ItemForm(forms.Form):
    link_id = forms.RegexField(
        label=_lazy("Link id"),
        regex=r"^[A-Za-z0-9_.\-]{1,64}$",
        help_text=_lazy("Letters, digits, dots, hyphens or underscores; unique in the questionnaire."),
    )
    kind = forms.ChoiceField(label=_lazy("Type"), choices=KINDS)
    text = forms.CharField(label=_lazy("Text"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    required = forms.BooleanField(label=_lazy("Required"), required=False)
    parent = forms.ChoiceField(label=_lazy("In group"), required=False)
    options = forms.CharField(
        label=_lazy("Answer options"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_lazy("One per line: code | text | score (score optional), e.g. 1 | 很满意 | 5"),
    )
    slider = forms.BooleanField(label=_lazy("Show the options as a scale"), required=False)
    min_value = forms.DecimalField(label=_lazy("Minimum"), required=False)
    max_value = forms.DecimalField(label=_lazy("Maximum"), required=False)
    conditions = forms.CharField(
        label=_lazy("Show only when"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_lazy(
            "One condition per line: linkId operator value, e.g. pain = true, sleep = poor, score >= 7, weight exists true. Operators: = != > < >= <= exists."
        ),
    )
    enable_behavior = forms.ChoiceField(
        label=_lazy("With several conditions"),
        choices=[("all", _lazy("all must hold")), ("any", _lazy("any may hold"))],
        initial="all",
    )

    def __init__(self, *args, groups: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].choices = [("", _("— top level —")), *((link, link) for link in groups or [])]

    def clean_options(self) -> list[dict]:
        options = []
        for number, line in enumerate((self.cleaned_data.get("options") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            code, display = parts[0], parts[1] if len(parts) > 1 else ""
            option: dict[str, Any] = {"valueCoding": {"code": code, **({"display": display} if display else {})}}
            if len(parts) > 2 and parts[2]:
                try:
                    score = Decimal(parts[2])
                except ArithmeticError:
                    raise ValidationError(
                        _("Line %(line)s: the score %(score)s is not a number.") % {"line": number, "score": parts[2]}
                    ) from None
                option["extension"] = [{"url": ORDINAL_URL, "valueDecimal": _plain(score)}]
            options.append(option)
        return options


def _plain(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def item_initial(item: dict, parent: str = "") -> dict:
    """The builder form's values for a stored item."""
    kind = _kind(item)
    lines = []
    for option in item.get("answerOption") or ():
        score = option_score(option)
        display = (option.get("valueCoding") or {}).get("display", "")
        lines.append(
            " | ".join([option_code(option) or "", display, "" if score is None else str(_plain(score))]).rstrip(" |")
        )
    return {
        "link_id": item.get("linkId", ""),
        "kind": "scale" if kind == "slider" else kind,
        "text": item.get("text", ""),
        "required": bool(item.get("required")),
        "parent": parent,
        "options": "\n".join(lines),
        "slider": item.get("type") == "choice" and is_scale(item),
        "min_value": extension_value(item, MIN_VALUE_URL),
        "max_value": extension_value(item, MAX_VALUE_URL),
        "conditions": "\n".join(condition_text(condition) for condition in item.get("enableWhen") or ()),
        "enable_behavior": item.get("enableBehavior", "all"),
    }


def condition_text(condition: dict) -> str:
    for key, value in condition.items():
        if key.startswith("answer"):
            shown = value.get("code") if isinstance(value, dict) else value
            shown = str(shown).lower() if isinstance(shown, bool) else shown
            return f"{condition.get('question')} {condition.get('operator')} {shown}"
    return f"{condition.get('question')} {condition.get('operator')}"


def condition_parse(line: str, by_link: dict[str, dict]) -> dict:
    """`sleep = poor` → an enableWhen condition typed after the question it refers to."""
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[1] not in OPERATORS:
        raise ValidationError(
            _("“%(line)s”: write linkId, an operator (%(ops)s) and a value.")
            % {"line": line, "ops": " ".join(sorted(OPERATORS))}
        )
    question, operator = parts[0], parts[1]
    raw = parts[2].strip() if len(parts) > 2 else ""
    source = by_link.get(question)
    if operator == "exists" or (source and source.get("type") == "boolean"):
        lowered = (raw or "true").lower()
        if lowered not in TRUE_WORDS | FALSE_WORDS:
            raise ValidationError(_("“%(line)s”: the value is true or false.") % {"line": line})
        return {"question": question, "operator": operator, "answerBoolean": lowered in TRUE_WORDS}
    kind = source.get("type") if source else "string"
    if kind == "choice":
        return {"question": question, "operator": operator, "answerCoding": {"code": raw}}
    if kind in ("integer", "decimal"):
        try:
            number = Decimal(raw)
        except ArithmeticError:
            raise ValidationError(_("“%(line)s”: the value must be a number.") % {"line": line}) from None
        if kind == "integer" and number == number.to_integral_value():
            return {"question": question, "operator": operator, "answerInteger": int(number)}
        return {"question": question, "operator": operator, "answerDecimal": float(number)}
    if kind == "date":
        return {"question": question, "operator": operator, "answerDate": raw}
    return {"question": question, "operator": operator, "answerString": raw}


def item_from_form(data: dict, *, existing: dict | None, all_items: list[dict]) -> dict:
    """A stored item from the builder form, keeping whatever else the item held (codes, prefixes, other extensions)."""
    item = dict(existing or {})
    kind = data["kind"]
    item["linkId"] = data["link_id"]
    item["type"] = {"multiple": "choice", "scale": "integer"}.get(kind, kind)
    for key in ("text", "required", "repeats", "answerOption", "enableWhen", "enableBehavior"):
        item.pop(key, None)
    if data.get("text"):
        item["text"] = data["text"].strip()
    if data.get("required") and kind not in ("group", "display"):
        item["required"] = True
    if kind == "multiple":
        item["repeats"] = True
    if kind in ("choice", "multiple"):
        item["answerOption"] = data["options"]
    extensions = [ext for ext in item.get("extension") or () if ext.get("url") not in MANAGED_URLS]
    if kind in ("scale", "integer", "decimal"):
        value_key = "valueDecimal" if kind == "decimal" else "valueInteger"
        for url, value in ((MIN_VALUE_URL, data.get("min_value")), (MAX_VALUE_URL, data.get("max_value"))):
            if value is not None:
                extensions.append({"url": url, value_key: _plain(value) if kind == "decimal" else int(value)})
    if kind == "scale" or (kind == "choice" and data.get("slider")):
        extensions.append(
            {
                "url": ITEM_CONTROL_URL,
                "valueCodeableConcept": {"coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "slider"}]},
            }
        )
    if extensions:
        item["extension"] = extensions
    else:
        item.pop("extension", None)
    by_link = {one["linkId"]: one for one in walk(all_items)}
    conditions = [line.strip() for line in (data.get("conditions") or "").splitlines() if line.strip()]
    if conditions:
        item["enableWhen"] = [condition_parse(line, by_link) for line in conditions]
        if len(conditions) > 1:
            item["enableBehavior"] = data.get("enable_behavior") or "all"
    if kind == "display":
        item.pop("item", None)
    return item


# --- One scoring rule -----------------------------------------------------------------------------------


class ScoreForm(forms.Form):
    code = forms.SlugField(label=_lazy("Code"), max_length=64)
    label = forms.CharField(label=_lazy("Label"), max_length=100)
    label_en = forms.CharField(label=_lazy("Label (English)"), max_length=100, required=False)
    method = forms.ChoiceField(
        label=_lazy("Method"),
        choices=[
            ("sum", _lazy("Sum")),
            ("mean", _lazy("Mean")),
            ("transformed", _lazy("Transformed (0–100)")),
        ],
    )
    items = forms.MultipleChoiceField(label=_lazy("Items"), widget=forms.CheckboxSelectMultiple)
    reverse = forms.MultipleChoiceField(
        label=_lazy("Reverse-scored items"), widget=forms.CheckboxSelectMultiple, required=False
    )
    min = forms.DecimalField(
        label=_lazy("Item minimum"), required=False, help_text=_lazy("For reverse and transformed scores.")
    )
    max = forms.DecimalField(label=_lazy("Item maximum"), required=False)
    bands = forms.CharField(
        label=_lazy("Bands"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_lazy(
            "One per line: min | max | label | English label | flag (alert); leave min or max empty for open ends."
        ),
    )

    def __init__(self, *args, scored: list[tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["items"].choices = scored or []
        self.fields["reverse"].choices = scored or []

    def clean_bands(self) -> list[dict]:
        bands = []
        for number, line in enumerate((self.cleaned_data.get("bands") or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")] + ["", "", "", "", ""]
            band: dict[str, Any] = {}
            for key, raw in (("min", parts[0]), ("max", parts[1])):
                try:
                    band[key] = None if raw == "" else _plain(Decimal(raw))
                except ArithmeticError:
                    raise ValidationError(
                        _("Line %(line)s: %(value)s is not a number.") % {"line": number, "value": raw}
                    ) from None
            band["label"] = parts[2]
            if parts[3]:
                band["label_en"] = parts[3]
            if parts[4]:
                band["flag"] = parts[4]
            bands.append(band)
        return bands

    def rule(self) -> dict:
        data = self.cleaned_data
        rule: dict[str, Any] = {
            "code": data["code"],
            "label": data["label"],
            "method": data["method"],
            "items": list(data["items"]),
        }
        if data.get("label_en"):
            rule["label_en"] = data["label_en"]
        if data.get("reverse"):
            rule["reverse"] = list(data["reverse"])
        for key in ("min", "max"):
            if data.get(key) is not None:
                rule[key] = _plain(data[key])
        if data["bands"]:
            rule["bands"] = data["bands"]
        return rule


def score_initial(rule: dict) -> dict:
    return {
        "code": rule.get("code", ""),
        "label": rule.get("label", ""),
        "label_en": rule.get("label_en", ""),
        "method": rule.get("method", "sum"),
        "items": rule.get("items", []),
        "reverse": rule.get("reverse", []),
        "min": rule.get("min"),
        "max": rule.get("max"),
        "bands": "\n".join(
            " | ".join(
                [
                    "" if band.get("min") is None else str(band["min"]),
                    "" if band.get("max") is None else str(band["max"]),
                    band.get("label", ""),
                    band.get("label_en", ""),
                    band.get("flag", ""),
                ]
            ).rstrip(" |")
            for band in rule.get("bands") or ()
        ),
    }
