"""Builders for the built-in questionnaires: each returns a plain dict in the stored format (a FHIR R4
`Questionnaire.item` node), Chinese in `text` and English in the FHIR translation extension on `_text`."""

from __future__ import annotations

from typing import Any

ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
HIDDEN = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"


def english(text: str) -> dict:
    """The `_text` element carrying the English translation."""
    return {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [{"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": text}],
            }
        ]
    }


def option(code: str, zh: str, en: str, score: float | int | None = None) -> dict:
    coding: dict[str, Any] = {"code": code, "display": zh, "_display": english(en)}
    found: dict[str, Any] = {"valueCoding": coding}
    if score is not None:
        found["extension"] = [{"url": ORDINAL, "valueDecimal": score}]
    return found


def item(link_id: str, kind: str, zh: str, en: str, **extra: Any) -> dict:
    """One item; `extra` passes FHIR fields through (required, repeats, enableWhen, item, …)."""
    found: dict[str, Any] = {"linkId": link_id, "text": zh, "_text": english(en), "type": kind}
    unit = extra.pop("unit", None)
    hidden = extra.pop("hidden", False)
    extensions = []
    if unit:
        extensions.append({"url": UNIT, "valueCoding": {"system": "http://unitsofmeasure.org", "code": unit}})
    if hidden:
        extensions.append({"url": HIDDEN, "valueBoolean": True})
    if extensions:
        found["extension"] = extensions
    found.update(extra)
    return found


def choice(link_id: str, zh: str, en: str, options: list[dict], **extra: Any) -> dict:
    return item(link_id, "choice", zh, en, answerOption=options, **extra)


def group(link_id: str, zh: str, en: str, children: list[dict], **extra: Any) -> dict:
    return item(link_id, "group", zh, en, item=children, **extra)


def when(question: str, operator: str, **answer: Any) -> dict:
    """An enableWhen condition: `when("fever", "=", answerBoolean=True)`."""
    return {"question": question, "operator": operator, **answer}


def band(low: float | None, high: float | None, zh: str, en: str, flag: str = "") -> dict:
    found: dict[str, Any] = {"min": low, "max": high, "label": zh, "label_en": en}
    if flag:
        found["flag"] = flag
    return found


SATISFACTION_OPTIONS = [
    option("1", "很不满意", "Very dissatisfied", 1),
    option("2", "不满意", "Dissatisfied", 2),
    option("3", "一般", "Neutral", 3),
    option("4", "满意", "Satisfied", 4),
    option("5", "很满意", "Very satisfied", 5),
]


def satisfaction(link_id: str, zh: str, en: str, **extra: Any) -> dict:
    """A 1–5 satisfaction item."""
    return choice(link_id, zh, en, SATISFACTION_OPTIONS, required=True, **extra)


RECOMMEND_OPTIONS = [option(str(score), str(score), str(score), score) for score in range(11)]

NPS_BANDS = [
    band(9, 10, "推荐者", "Promoter"),
    band(7, 8, "被动者", "Passive"),
    band(0, 6, "贬损者", "Detractor", "warning"),
]

MEAN_BANDS = [
    band(4, None, "满意", "Satisfied"),
    band(3, 3.99, "一般", "Neutral"),
    band(None, 2.99, "不满意", "Dissatisfied", "alert"),
]

YES_NO_LEVELS = {"good": ("良好", "Good"), "fair": ("一般", "Fair"), "poor": ("差", "Poor")}


def levels(link_id: str, zh: str, en: str, **extra: Any) -> dict:
    """Good / fair / poor (良好 / 一般 / 差), as the public health follow-up forms ask it."""
    return choice(link_id, zh, en, [option(code, *YES_NO_LEVELS[code]) for code in ("good", "fair", "poor")], **extra)


ADHERENCE = [
    option("regular", "规律", "Regularly", 1),
    option("intermittent", "间断", "Intermittently", 2),
    option("none", "不服药", "Not taking", 3),
]

CLASSIFICATION = [
    option("controlled", "控制满意", "Satisfactorily controlled"),
    option("uncontrolled", "控制不满意", "Not satisfactorily controlled"),
    option("adverse_reaction", "不良反应", "Adverse reaction"),
    option("complication", "并发症", "Complication"),
]
