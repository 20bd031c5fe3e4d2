"""Checking a version's item tree and scoring rules before they are stored.

Every error names where it is: the item's path of linkIds (`general/pain`) and the field, so the
builder can show it next to the item.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from followups.scoring import OPERATORS, option_code, option_score

ITEM_TYPES = ("group", "display", "boolean", "choice", "integer", "decimal", "date", "string", "text")
# Types that take an answer (group and display do not).
ANSWERED_TYPES = frozenset(ITEM_TYPES) - {"group", "display"}
ORDERED_TYPES = frozenset({"integer", "decimal", "date", "choice"})
MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
ITEM_CONTROL_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
SCORE_METHODS = ("sum", "mean", "transformed")
ANSWER_KEYS = {
    "boolean": ("answerBoolean",),
    "choice": ("answerCoding", "answerString", "answerInteger"),
    "integer": ("answerInteger", "answerDecimal"),
    "decimal": ("answerDecimal", "answerInteger"),
    "date": ("answerDate",),
    "string": ("answerString",),
    "text": ("answerString",),
}


class ItemErrors:
    """Errors gathered by location; raised together as one ValidationError keyed by location."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, location: str, message: str) -> None:
        self.errors.setdefault(location, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(
                {key: [ValidationError(m, code="invalid") for m in msgs] for key, msgs in self.errors.items()}
            )


def extension_value(item: dict, url: str) -> Any:
    for extension in item.get("extension") or ():
        if extension.get("url") == url:
            for key, value in extension.items():
                if key.startswith("value"):
                    return value
    return None


def item_control(item: dict) -> str | None:
    concept = extension_value(item, ITEM_CONTROL_URL)
    if isinstance(concept, dict):
        for coding in concept.get("coding") or ():
            return coding.get("code")
    return None


def is_scale(item: dict) -> bool:
    return item_control(item) == "slider"


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _check_options(item: dict, where: str, errors: ItemErrors) -> None:
    options = item.get("answerOption")
    if not isinstance(options, list) or not options:
        errors.add(f"{where}.answerOption", _("A choice item needs at least one answer option."))
        return
    seen: set[str] = set()
    for index, option in enumerate(options):
        place = f"{where}.answerOption[{index}]"
        code = option_code(option) if isinstance(option, dict) else None
        if code in (None, "", "None"):
            errors.add(place, _("An answer option needs a code (valueCoding.code) or a value."))
            continue
        if code in seen:
            errors.add(place, _("The answer option code %(code)s is used twice.") % {"code": code})
        seen.add(code)
        for extension in option.get("extension") or ():
            if "ordinalValue" in str(extension.get("url")) or "itemWeight" in str(extension.get("url")):
                raw = extension.get("valueDecimal", extension.get("valueInteger"))
                if _number(raw) is None:
                    errors.add(f"{place}.score", _("The score of option %(code)s must be a number.") % {"code": code})


def _check_item(item: Any, where: str, seen: dict[str, dict], errors: ItemErrors) -> None:
    if not isinstance(item, dict):
        errors.add(where, _("An item must be an object."))
        return
    link_id = item.get("linkId")
    if not isinstance(link_id, str) or not link_id.strip():
        errors.add(f"{where}.linkId", _("Every item needs a linkId."))
    elif link_id in seen:
        errors.add(f"{where}.linkId", _("The linkId %(link)s is used twice.") % {"link": link_id})
    kind = item.get("type")
    if kind not in ITEM_TYPES:
        errors.add(
            f"{where}.type",
            _("Type %(type)s is not supported (%(types)s).") % {"type": kind, "types": ", ".join(ITEM_TYPES)},
        )
    # A coded question (a LOINC item, say) may go without text: forms show its code's display.
    if kind not in ("display", "group") and not str(item.get("text") or "").strip() and not item.get("code"):
        errors.add(f"{where}.text", _("A question needs its text."))
    if kind == "choice":
        _check_options(item, where, errors)
    elif item.get("answerOption"):
        errors.add(f"{where}.answerOption", _("Only choice items take answer options."))
    if item.get("repeats") and kind != "choice":
        errors.add(f"{where}.repeats", _("Only choice items may repeat (multiple choice)."))
    if kind in ("group", "display") and item.get("required"):
        errors.add(f"{where}.required", _("Only questions can be required."))
    if kind == "display" and item.get("item"):
        errors.add(f"{where}.item", _("A display item cannot hold other items."))
    if kind == "group" and not item.get("item"):
        errors.add(f"{where}.item", _("A group needs at least one item."))
    low, high = extension_value(item, MIN_VALUE_URL), extension_value(item, MAX_VALUE_URL)
    if low is not None or high is not None:
        if kind not in ("integer", "decimal"):
            errors.add(f"{where}.extension", _("Only integer and decimal items take a minimum and maximum."))
        elif _number(low) is None or _number(high) is None or _number(low) >= _number(high):
            errors.add(f"{where}.extension", _("The minimum must be a number below the maximum."))
    if is_scale(item):
        if kind == "integer" and (low is None or high is None):
            errors.add(f"{where}.extension", _("A scale needs a minimum and a maximum."))
        elif kind not in ("integer", "choice"):
            errors.add(f"{where}.extension", _("A scale is a choice with scored options or an integer with a range."))
        elif kind == "choice" and any(
            option_score(option) is None for option in item.get("answerOption") or () if isinstance(option, dict)
        ):
            errors.add(f"{where}.answerOption", _("Every option of a scale needs a score."))
    _check_conditions(item, where, seen, errors)
    if isinstance(link_id, str) and link_id.strip() and link_id not in seen:
        seen[link_id] = item
    children = item.get("item") or []
    if not isinstance(children, list):
        errors.add(f"{where}.item", _("The items of a group must be a list."))
        return
    for child in children:
        child_id = child.get("linkId") if isinstance(child, dict) else None
        _check_item(child, f"{where}/{child_id or '?'}", seen, errors)


def _check_conditions(item: dict, where: str, earlier: dict[str, dict], errors: ItemErrors) -> None:
    conditions = item.get("enableWhen") or []
    if not isinstance(conditions, list):
        errors.add(f"{where}.enableWhen", _("enableWhen must be a list of conditions."))
        return
    for index, condition in enumerate(conditions):
        place = f"{where}.enableWhen[{index}]"
        if not isinstance(condition, dict):
            errors.add(place, _("A condition must be an object."))
            continue
        question = condition.get("question")
        operator = condition.get("operator")
        source = earlier.get(question) if isinstance(question, str) else None
        if source is None:
            errors.add(
                f"{place}.question",
                _("The condition refers to %(link)s, which is not an earlier item.") % {"link": question},
            )
        elif source.get("type") not in ANSWERED_TYPES:
            errors.add(
                f"{place}.question", _("The condition refers to %(link)s, which takes no answer.") % {"link": question}
            )
        if operator not in OPERATORS:
            errors.add(
                f"{place}.operator",
                _("Operator %(op)s is not supported (%(ops)s).")
                % {"op": operator, "ops": ", ".join(sorted(OPERATORS))},
            )
            continue
        answer_keys = [key for key in condition if key.startswith("answer")]
        if len(answer_keys) != 1:
            errors.add(f"{place}.answer", _("A condition needs exactly one answer value."))
            continue
        key = answer_keys[0]
        if operator == "exists":
            if key != "answerBoolean" or not isinstance(condition[key], bool):
                errors.add(f"{place}.answer", _("The exists operator takes answerBoolean true or false."))
            continue
        if source is None or source.get("type") not in ANSWERED_TYPES:
            continue
        kind = source["type"]
        if key not in ANSWER_KEYS[kind]:
            errors.add(
                f"{place}.answer",
                _("%(key)s does not fit the %(type)s item %(link)s.") % {"key": key, "type": kind, "link": question},
            )
            continue
        if operator in (">", "<", ">=", "<=") and (
            kind not in ORDERED_TYPES or (kind == "choice" and not _options_scored(source))
        ):
            errors.add(
                f"{place}.operator",
                _("%(op)s compares numbers or dates; %(link)s is a %(type)s item.")
                % {"op": operator, "link": question, "type": kind},
            )
        if kind == "choice":
            value = condition[key].get("code") if isinstance(condition[key], dict) else condition[key]
            codes = {option_code(option) for option in source.get("answerOption") or () if isinstance(option, dict)}
            if str(value) not in codes:
                errors.add(
                    f"{place}.answer", _("%(code)s is not an option of %(link)s.") % {"code": value, "link": question}
                )
    if len(conditions) > 1 and item.get("enableBehavior") not in ("any", "all"):
        errors.add(f"{where}.enableBehavior", _("With more than one condition, say whether any or all must hold."))
    if len(conditions) <= 1 and "enableBehavior" in item and item["enableBehavior"] not in ("any", "all"):
        errors.add(f"{where}.enableBehavior", _("enableBehavior is any or all."))


def _options_scored(item: dict) -> bool:
    """Choice codes compared with > or < must be numbers (e.g. a 0–10 scale answered with codes)."""
    return all(_number(option_code(option)) is not None for option in item.get("answerOption") or ())


def _scored(item: dict) -> bool:
    if item.get("type") in ("integer", "decimal", "boolean"):
        return True
    if item.get("type") == "choice":
        return any(option_score(option) is not None for option in item.get("answerOption") or ())
    return False


def _check_scoring(scoring: Any, by_link: dict[str, dict], errors: ItemErrors) -> None:
    if scoring in (None, {}):
        return
    if not isinstance(scoring, dict) or not isinstance(scoring.get("scores", []), list):
        errors.add("scoring", _("Scoring must be an object with a list of scores."))
        return
    codes: set[str] = set()
    for index, rule in enumerate(scoring.get("scores") or []):
        where = f"scoring.scores[{index}]"
        if not isinstance(rule, dict):
            errors.add(where, _("A score must be an object."))
            continue
        code = rule.get("code")
        if not isinstance(code, str) or not code.strip():
            errors.add(f"{where}.code", _("Every score needs a code."))
        elif code in codes:
            errors.add(f"{where}.code", _("The score code %(code)s is used twice.") % {"code": code})
        else:
            codes.add(code)
        if rule.get("method", "sum") not in SCORE_METHODS:
            errors.add(
                f"{where}.method",
                _("Method %(method)s is not supported (%(methods)s).")
                % {"method": rule.get("method"), "methods": ", ".join(SCORE_METHODS)},
            )
        items = rule.get("items")
        if not isinstance(items, list) or not items or not all(isinstance(link, str) for link in items):
            errors.add(f"{where}.items", _("A score needs the linkIds of the items it adds up."))
            items = []
        reverse = rule.get("reverse") or []
        if not isinstance(reverse, list) or not all(isinstance(link, str) for link in reverse):
            errors.add(f"{where}.reverse", _("Reverse-scored items are a list of linkIds."))
            reverse = []
        for link_id in items:
            item = by_link.get(link_id)
            if item is None:
                errors.add(f"{where}.items", _("%(link)s is not an item of this questionnaire.") % {"link": link_id})
            elif not _scored(item):
                errors.add(f"{where}.items", _("%(link)s carries no score.") % {"link": link_id})
        for link_id in reverse:
            if link_id not in items:
                errors.add(
                    f"{where}.reverse", _("%(link)s is reversed but not one of the score's items.") % {"link": link_id}
                )
        low, high = _number(rule.get("min", 0)), _number(rule.get("max", 0))
        if low is None or high is None:
            errors.add(f"{where}.min", _("The item minimum and maximum must be numbers."))
            continue
        needs_range = rule.get("method") == "transformed" or rule.get("reverse")
        if needs_range and (low is None or high is None or low >= high):
            errors.add(f"{where}.min", _("Transformed and reversed scores need an item minimum below the maximum."))
        _check_bands(rule.get("bands") or [], f"{where}.bands", errors)


def _check_bands(bands: Any, where: str, errors: ItemErrors) -> None:
    if not isinstance(bands, list):
        errors.add(where, _("Bands must be a list."))
        return
    ranges = []
    for index, band in enumerate(bands):
        place = f"{where}[{index}]"
        if not isinstance(band, dict) or not str(band.get("label") or "").strip():
            errors.add(place, _("Every band needs a label."))
            continue
        low = None if band.get("min") is None else _number(band["min"])
        high = None if band.get("max") is None else _number(band["max"])
        if (band.get("min") is not None and low is None) or (band.get("max") is not None and high is None):
            errors.add(place, _("A band's limits must be numbers."))
            continue
        if low is not None and high is not None and low > high:
            errors.add(place, _("A band's minimum is above its maximum."))
            continue
        ranges.append((index, low, high))
    for position, (index, low, high) in enumerate(ranges):
        for other_index, other_low, other_high in ranges[:position]:
            below = high is not None and other_low is not None and high < other_low
            above = low is not None and other_high is not None and low > other_high
            if not (below or above):
                errors.add(
                    f"{where}[{index}]",
                    _("This band overlaps band %(other)s.") % {"other": other_index + 1},
                )


def _location(items: list, loc: tuple) -> str:
    """Pydantic's `('item', 1, 'item', 0, 'answerOption', 2, 'valueCoding')` → `general/pain.answerOption[2].valueCoding`."""
    names: list[str] = []
    children: Any = items
    position = 0
    while position + 1 < len(loc) and loc[position] == "item" and isinstance(loc[position + 1], int):
        index = loc[position + 1]
        item = children[index] if isinstance(children, list) and index < len(children) else None
        names.append(str(item.get("linkId") or "?") if isinstance(item, dict) else f"[{index}]")
        children = item.get("item") if isinstance(item, dict) else None
        position += 2
    rest = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[position:])
    return ("/".join(names) or "items") + rest


def _structure_check(items: list, errors: ItemErrors) -> None:
    """The items against the FHIR R4 Questionnaire.item model: element names and value types."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError as PydanticValidationError

    try:
        get_fhir_model_class("Questionnaire").model_validate(
            {"resourceType": "Questionnaire", "status": "draft", "item": items}
        )
    except PydanticValidationError as error:
        for detail in error.errors():
            loc = tuple(part for part in detail.get("loc", ()) if part != "__root__")
            message = _("Unknown element.") if detail.get("type") == "extra_forbidden" else detail.get("msg", "")
            errors.add(_location(items, loc), str(message))


def items_check(*, items: Any, scoring: Any) -> None:
    """Raise a ValidationError keyed by item path and field if the items or scoring rules are not sound."""
    errors = ItemErrors()
    if not isinstance(items, list) or not items:
        errors.add("items", _("A questionnaire needs at least one item."))
        errors.raise_if_any()
    _structure_check(items, errors)
    errors.raise_if_any()
    seen: dict[str, dict] = {}
    for item in items:
        link_id = item.get("linkId") if isinstance(item, dict) else None
        _check_item(item, str(link_id or "?"), seen, errors)
    _check_scoring(scoring, seen, errors)
    errors.raise_if_any()
