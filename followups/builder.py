"""The questionnaire builder's forms: one item, one scoring rule, or the whole tree as JSON, and their
conversion to and from the stored FHIR-shaped items."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from followups.forms import FALSE_WORDS, TRUE_WORDS, kind_of
from followups.scoring import OPERATORS, option_code, option_score, walk
from followups.services.items import (
    ITEM_CONTROL_SYSTEM,
    ITEM_CONTROL_URL,
    MAX_VALUE_URL,
    MIN_VALUE_URL,
    extension_value,
    is_scale,
)

ORDINAL_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MANAGED_URLS = {ORDINAL_URL, MIN_VALUE_URL, MAX_VALUE_URL, ITEM_CONTROL_URL}


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
    kind = kind_of(item)
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
