"""A small questionnaire with every item type, branching and a scored total, shared by the follow-up tests."""

from __future__ import annotations

import copy

ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
SLIDER = {
    "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
    "valueCodeableConcept": {
        "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "slider"}]
    },
}


def option(code: str, display: str, score: int | None = None) -> dict:
    result: dict = {"valueCoding": {"code": code, "display": display}}
    if score is not None:
        result["extension"] = [{"url": ORDINAL, "valueDecimal": score}]
    return result


ITEMS = [
    {"linkId": "intro", "type": "display", "text": "请回答以下问题"},
    {
        "linkId": "general",
        "type": "group",
        "text": "一般情况",
        "item": [
            {"linkId": "pain", "type": "boolean", "text": "是否疼痛?", "required": True},
            {
                "linkId": "pain_level",
                "type": "integer",
                "text": "疼痛程度",
                "required": True,
                "extension": [SLIDER, {"url": MIN_VALUE, "valueInteger": 0}, {"url": MAX_VALUE, "valueInteger": 10}],
                "enableWhen": [{"question": "pain", "operator": "=", "answerBoolean": True}],
            },
        ],
    },
    {
        "linkId": "sleep",
        "type": "choice",
        "text": "睡眠",
        "answerOption": [option("good", "好", 1), option("fair", "一般", 2), option("poor", "差", 3)],
    },
    {
        "linkId": "symptoms",
        "type": "choice",
        "repeats": True,
        "text": "症状",
        "answerOption": [option("cough", "咳嗽"), option("fever", "发热"), option("fatigue", "乏力")],
    },
    {"linkId": "weight", "type": "decimal", "text": "体重 (kg)"},
    {"linkId": "visit", "type": "date", "text": "复诊日期"},
    {"linkId": "name", "type": "string", "text": "填表人"},
    {
        "linkId": "notes",
        "type": "text",
        "text": "其他",
        "enableWhen": [
            {"question": "sleep", "operator": "=", "answerCoding": {"code": "poor"}},
            {"question": "pain_level", "operator": ">=", "answerInteger": 7},
        ],
        "enableBehavior": "any",
    },
]

SCORING = {
    "scores": [
        {
            "code": "burden",
            "label": "负担",
            "method": "sum",
            "items": ["pain_level", "sleep"],
            "bands": [
                {"min": 0, "max": 5, "label": "轻"},
                {"min": 6, "max": None, "label": "重", "flag": "alert"},
            ],
        }
    ]
}


def items() -> list[dict]:
    return copy.deepcopy(ITEMS)


def scoring() -> dict:
    return copy.deepcopy(SCORING)
