"""Answers → what is shown and what it scores: pure functions over a version's items and scoring rules.

Items are the FHIR R4 `Questionnaire.item` tree. An answer option's score is its `ordinalValue`
extension (`itemWeight` in R5 terms); integer and decimal items score their value. Answers are kept by
linkId: a value, or a list for items that repeat (multiple choice). Choice answers are option codes.

Scoring rules (`QuestionnaireVersion.scoring`):

    {"scores": [
        {"code": "qi_deficiency", "label": "气虚质", "label_en": "Qi deficiency",
         "method": "sum" | "mean" | "transformed",
         "items": ["q2", "q3", …], "reverse": ["q3"],      # reverse: min + max − score
         "min": 1, "max": 5,                                # per-item range (reverse, transformed)
         "bands": [{"min": 40, "max": null, "label": "是", "label_en": "Yes", "flag": "alert"}, …]}
    ]}

`transformed` is (raw − n·min) / (n·(max − min)) × 100, the form of the TCM constitution standard
(ZYYXH/T 157-2009: (raw − items) / (items × 4) × 100 on a 1–5 scale).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

ORDINAL_URLS = (
    "http://hl7.org/fhir/StructureDefinition/ordinalValue",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
)
ANSWER_TYPES = {"boolean", "choice", "open-choice", "integer", "decimal", "date", "string", "text"}
OPERATORS = {"=", "!=", ">", "<", ">=", "<=", "exists"}


def walk(items: list[dict]) -> list[dict]:
    """Every item of the tree, depth first, parents before children."""
    found: list[dict] = []
    for item in items:
        found.append(item)
        found.extend(walk(item.get("item") or []))
    return found


def item_text(item: dict) -> str:
    """What the form shows: the item's text, else its code's display (coded questions may have no text)."""
    if item.get("text"):
        return item["text"]
    for code in item.get("code") or ():
        if code.get("display") or code.get("code"):
            return code.get("display") or code.get("code")
    return ""


def option_code(option: dict) -> str | None:
    """The code an answer option is answered with (valueCoding.code, else its string/integer value)."""
    if "valueCoding" in option:
        return str(option["valueCoding"].get("code"))
    for key in ("valueString", "valueInteger", "valueDate"):
        if key in option:
            return str(option[key])
    return None


def option_score(option: dict) -> Decimal | None:
    for extension in option.get("extension") or ():
        if extension.get("url") in ORDINAL_URLS:
            value = extension.get("valueDecimal", extension.get("valueInteger"))
            return Decimal(str(value)) if value is not None else None
    return None


def answer_values(answer: Any) -> list:
    if answer is None or answer == "" or answer == []:
        return []
    return list(answer) if isinstance(answer, list) else [answer]


def _comparable(value: Any, expected: Any) -> tuple[Any, Any]:
    """Both sides in one type: numbers as Decimal, dates as dates, the rest as strings."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return (
            str(value).lower() in ("true", "1"),
            bool(expected) if isinstance(expected, bool) else str(expected).lower() in ("true", "1"),
        )
    try:
        return Decimal(str(value)), Decimal(str(expected))
    except (ArithmeticError, ValueError):
        pass
    if isinstance(expected, str) and len(expected) == 10:
        try:
            return dt.date.fromisoformat(str(value)), dt.date.fromisoformat(expected)
        except ValueError:
            pass
    return str(value), str(expected)


def _expected(condition: dict) -> Any:
    for key, value in condition.items():
        if key.startswith("answer"):
            if key == "answerCoding":
                return value.get("code")
            return value
    return None


def condition_holds(condition: dict, answers: dict[str, Any]) -> bool:
    """One enableWhen condition against the answers given so far."""
    values = answer_values(answers.get(condition["question"]))
    operator = condition["operator"]
    expected = _expected(condition)
    if operator == "exists":
        return bool(values) == bool(expected)
    if not values:
        return False
    outcomes = []
    for value in values:
        left, right = _comparable(value, expected)
        try:
            outcomes.append(
                {
                    "=": left == right,
                    "!=": left != right,
                    ">": left > right,
                    "<": left < right,
                    ">=": left >= right,
                    "<=": left <= right,
                }[operator]
            )
        except TypeError:
            outcomes.append(False)
    # For a repeating answer, "=" means one of the answers is it; "!=" means none is.
    return all(outcomes) if operator == "!=" else any(outcomes)


def is_enabled(item: dict, answers: dict[str, Any]) -> bool:
    conditions = item.get("enableWhen") or []
    if not conditions:
        return True
    results = [condition_holds(condition, answers) for condition in conditions]
    return any(results) if item.get("enableBehavior") == "any" else all(results)


def enabled_items(items: list[dict], answers: dict[str, Any]) -> list[dict]:
    """The items shown for these answers: a disabled item hides its children too."""
    shown: list[dict] = []
    for item in items:
        if is_enabled(item, answers):
            shown.append(item)
            shown.extend(enabled_items(item.get("item") or [], answers))
    return shown


TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"


def translation_of(element: dict | None, lang: str) -> str:
    for extension in (element or {}).get("extension") or ():
        if extension.get("url") == TRANSLATION_URL:
            parts = {part.get("url"): part for part in extension.get("extension") or ()}
            if parts.get("lang", {}).get("valueCode") == lang:
                return parts.get("content", {}).get("valueString", "")
    return ""


def answer_shown(item: dict, value: Any) -> tuple[str, str]:
    """One answer as staff read it, in Chinese and English: an option's display, else the value."""
    for option in item.get("answerOption") or ():
        if option_code(option) == str(value):
            coding = option.get("valueCoding") or {}
            shown = coding.get("display") or str(value)
            return shown, translation_of(coding.get("_display"), "en") or shown
    if isinstance(value, bool):
        return ("是", "Yes") if value else ("否", "No")
    return str(value), str(value)


def answer_row(item: dict, answer: Any) -> dict[str, str]:
    """An item and its answer (every value of a repeating one) as text, in Chinese and English."""
    shown = [answer_shown(item, value) for value in answer_values(answer)]
    question = item_text(item) or item["linkId"]
    return {
        "link_id": item["linkId"],
        "question": question,
        "question_en": translation_of(item.get("_text"), "en") or question,
        "answer": "、".join(zh for zh, _en in shown),
        "answer_en": ", ".join(en for _zh, en in shown),
    }


def answered_rows(items: list[dict], answers: dict[str, Any]) -> list[dict[str, str]]:
    """Every answered item of the tree, in order, as `answer_row`s."""
    return [
        answer_row(item, answers[item["linkId"]]) for item in walk(items) if answer_values(answers.get(item["linkId"]))
    ]


def relevant_answers(items: list[dict], answers: dict[str, Any]) -> dict[str, Any]:
    """The answers to items that are shown; answers to hidden items are dropped, as a form would."""
    shown = {item["linkId"] for item in enabled_items(items, answers)}
    return {link_id: value for link_id, value in answers.items() if link_id in shown}


def item_score(item: dict, answer: Any) -> Decimal | None:
    """What one answer scores: the options' ordinal values (summed for multiple choice) or the number given."""
    values = answer_values(answer)
    if not values:
        return None
    if item.get("type") in ("choice", "open-choice"):
        by_code = {option_code(option): option_score(option) for option in item.get("answerOption") or ()}
        scores = [by_code.get(str(value)) for value in values]
        scores = [score for score in scores if score is not None]
        return sum(scores, Decimal(0)) if scores else None
    if item.get("type") in ("integer", "decimal"):
        try:
            return sum((Decimal(str(value)) for value in values), Decimal(0))
        except ArithmeticError:
            return None
    if item.get("type") == "boolean":
        return Decimal(1) if str(values[0]).lower() in ("true", "1") else Decimal(0)
    return None


def _band(bands: list[dict], value: Decimal) -> dict | None:
    for band in bands:
        low, high = band.get("min"), band.get("max")
        if (low is None or value >= Decimal(str(low))) and (high is None or value <= Decimal(str(high))):
            return band
    return None


def scores_compute(items: list[dict], scoring: dict, answers: dict[str, Any]) -> dict[str, dict]:
    """Every score of the rules, by code: value (2 decimals), answered items, band label and flag.

    A score whose items are not all answered is computed over those that are (`answered` says how
    many), except `transformed`, which needs every item and is left out otherwise.
    """
    by_link = {item["linkId"]: item for item in walk(items)}
    shown = relevant_answers(items, answers)
    results: dict[str, dict] = {}
    for rule in scoring.get("scores") or ():
        low, high = Decimal(str(rule.get("min", 0))), Decimal(str(rule.get("max", 0)))
        reverse = set(rule.get("reverse") or ())
        values = []
        for link_id in rule["items"]:
            item = by_link.get(link_id)
            score = item_score(item, shown.get(link_id)) if item is not None else None
            if score is None:
                continue
            values.append(low + high - score if link_id in reverse else score)
        method = rule.get("method", "sum")
        count = len(rule["items"])
        if not values or (method == "transformed" and len(values) < count):
            continue
        raw = sum(values, Decimal(0))
        if method == "mean":
            value = raw / len(values)
        elif method == "transformed":
            value = (raw - count * low) / (count * (high - low)) * 100 if high > low else Decimal(0)
        else:
            value = raw
        value = value.quantize(Decimal("0.01"))
        band = _band(rule.get("bands") or [], value) or {}
        results[rule["code"]] = {
            "value": float(value),
            "raw": float(raw),
            "answered": len(values),
            "band": band.get("label", ""),
            "band_en": band.get("label_en", ""),
            "flag": band.get("flag", ""),
        }
    return results


# The scores a satisfaction survey is read by: the overall mean of its 1–5 items, and the 0–10 recommendation.
SATISFACTION_SCORE = "satisfaction"
RECOMMENDATION_SCORE = "recommend"


def satisfaction_items(scoring: dict) -> list[str]:
    """The linkIds of the items the overall satisfaction mean is made of, in its rule's order."""
    for rule in scoring.get("scores") or ():
        if rule.get("code") == SATISFACTION_SCORE:
            return list(rule.get("items") or ())
    return []


def satisfaction_figures(items: list[dict], scoring: dict, answers: dict[str, Any], scores: dict) -> dict[str, Any]:
    """What statistics keep of a completed response: the overall mean, the 0–10 recommendation (None when a
    survey has no such score) and the score of each item of the mean that was answered, by linkId."""
    by_link = {item["linkId"]: item for item in walk(items)}
    shown = relevant_answers(items, answers)
    item_scores = {}
    for link_id in satisfaction_items(scoring):
        score = item_score(by_link[link_id], shown.get(link_id)) if link_id in by_link else None
        if score is not None:
            item_scores[link_id] = float(score)
    overall = (scores.get(SATISFACTION_SCORE) or {}).get("value")
    recommendation = (scores.get(RECOMMENDATION_SCORE) or {}).get("value")
    return {
        "satisfaction": Decimal(str(overall)).quantize(Decimal("0.01")) if overall is not None else None,
        "recommendation": int(recommendation) if recommendation is not None and 0 <= recommendation <= 10 else None,
        "item_scores": item_scores,
    }
