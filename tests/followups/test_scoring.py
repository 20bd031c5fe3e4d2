"""Branching (enableWhen) and scores computed from answers."""

from __future__ import annotations

from followups.scoring import enabled_items, relevant_answers, scores_compute

ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"


def likert(link_id: str) -> dict:
    return {
        "linkId": link_id,
        "text": link_id,
        "type": "choice",
        "answerOption": [
            {"valueCoding": {"code": str(score)}, "extension": [{"url": ORDINAL, "valueDecimal": score}]}
            for score in range(1, 6)
        ],
    }


ITEMS = [
    {"linkId": "pain", "text": "Pain?", "type": "boolean"},
    {
        "linkId": "where",
        "text": "Where?",
        "type": "string",
        "enableWhen": [{"question": "pain", "operator": "=", "answerBoolean": True}],
        "item": [{"linkId": "where.detail", "text": "Detail", "type": "text"}],
    },
    {
        "linkId": "bp",
        "text": "Systolic",
        "type": "integer",
        "enableWhen": [
            {"question": "bp_known", "operator": "exists", "answerBoolean": True},
            {"question": "pain", "operator": "=", "answerBoolean": False},
        ],
        "enableBehavior": "any",
    },
    {"linkId": "bp_known", "text": "Known?", "type": "boolean"},
    likert("a"),
    likert("b"),
]


def test_enable_when_with_all_and_any_hides_children_of_hidden_items():
    shown = [item["linkId"] for item in enabled_items(ITEMS, {"pain": False})]
    assert shown == ["pain", "bp", "bp_known", "a", "b"]

    shown = [item["linkId"] for item in enabled_items(ITEMS, {"pain": True})]
    assert shown == ["pain", "where", "where.detail", "bp_known", "a", "b"]

    answers = {"pain": True, "where": "knee", "where.detail": "left", "bp": 150}
    assert relevant_answers(ITEMS, answers) == {"pain": True, "where": "knee", "where.detail": "left"}


def test_sum_mean_and_transformed_with_reverse_scoring_and_bands():
    scoring = {
        "scores": [
            {"code": "sum", "method": "sum", "items": ["a", "b"]},
            {"code": "mean", "method": "mean", "items": ["a", "b"]},
            {
                "code": "t",
                "method": "transformed",
                "items": ["a", "b"],
                "reverse": ["b"],
                "min": 1,
                "max": 5,
                "bands": [
                    {"min": 40, "max": None, "label": "是", "label_en": "Yes", "flag": "alert"},
                    {"min": 30, "max": 39.99, "label": "倾向是", "label_en": "Tending to"},
                    {"min": None, "max": 29.99, "label": "否", "label_en": "No"},
                ],
            },
        ]
    }

    scores = scores_compute(ITEMS, scoring, {"a": "4", "b": "2"})

    assert scores["sum"]["value"] == 6.0
    assert scores["mean"]["value"] == 3.0
    # a = 4, b reversed = 1 + 5 − 2 = 4: raw 8, (8 − 2) / (2 × 4) × 100 = 75.
    assert (scores["t"]["value"], scores["t"]["band"], scores["t"]["flag"]) == (75.0, "是", "alert")


def test_a_transformed_score_needs_every_item():
    scoring = {"scores": [{"code": "t", "method": "transformed", "items": ["a", "b"], "min": 1, "max": 5}]}
    assert scores_compute(ITEMS, scoring, {"a": "4"}) == {}
