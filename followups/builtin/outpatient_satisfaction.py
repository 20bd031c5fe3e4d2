"""门诊患者满意度调查 — outpatient satisfaction survey.

The department and the doctor being rated are hidden items (`department`, `doctor`) whose answers are
written from the follow-up task when the response is created (`context_answers`): the department's code
and the doctor's username. The doctor domain (`doctor`) is therefore a per-doctor rating and the
department item (`dept_overall`) a per-department one, and both can be grouped by those answers.

Scores: `satisfaction` is the mean of every 1–5 item answered; one mean per domain; `recommend` is the
0–10 recommendation with its NPS category (promoter 9–10, passive 7–8, detractor 0–6).
"""

from __future__ import annotations

from followups.builtin._items import (
    MEAN_BANDS,
    NPS_BANDS,
    RECOMMEND_OPTIONS,
    choice,
    group,
    item,
    satisfaction,
    when,
)

CODE = "outpatient-satisfaction"

DOMAINS: dict[str, tuple[str, str, list[str]]] = {
    "registration": ("挂号与候诊", "Registration and waiting", ["reg_booking", "reg_waiting"]),
    "doctor": ("医生", "Doctor", ["doc_explanation", "doc_attitude", "doc_patience"]),
    "nursing": ("护理与导诊", "Nursing and guidance", ["nurse_attitude", "nurse_guidance"]),
    "environment": ("就诊环境", "Environment", ["env_clean", "env_signs"]),
    "pharmacy": ("药房与中药代煎", "Pharmacy and herbal decoction", ["pharm_wait", "pharm_decoction"]),
    "costs": ("收费", "Costs", ["cost_transparency"]),
    "department": ("科室", "Department", ["dept_overall"]),
}


def context_answers(*, department: str, doctor: str) -> dict[str, str]:
    """The hidden answers a response starts with: the rated department's code and doctor's username."""
    return {"department": department, "doctor": doctor}


ITEMS = [
    item("department", "string", "就诊科室", "Department visited", hidden=True),
    item("doctor", "string", "接诊医生", "Doctor seen", hidden=True),
    group(
        "registration",
        "挂号与候诊",
        "Registration and waiting",
        [
            satisfaction(
                "reg_booking",
                "您对挂号（预约）的便捷程度满意吗？",
                "How satisfied are you with how easy it was to book?",
            ),
            satisfaction("reg_waiting", "您对候诊时间满意吗？", "How satisfied are you with the waiting time?"),
        ],
    ),
    group(
        "doctor_group",
        "医生",
        "The doctor",
        [
            satisfaction(
                "doc_explanation",
                "医生对您的病情和治疗方案解释清楚吗？",
                "Did the doctor explain your condition and treatment clearly?",
            ),
            satisfaction(
                "doc_attitude", "您对医生的服务态度满意吗？", "How satisfied are you with the doctor's manner?"
            ),
            satisfaction(
                "doc_patience",
                "医生问诊、望闻问切是否耐心细致？",
                "Was the doctor patient and thorough in the consultation and examination?",
            ),
        ],
    ),
    group(
        "nursing",
        "护理与导诊",
        "Nursing and guidance",
        [
            satisfaction(
                "nurse_attitude", "您对护士的服务态度满意吗？", "How satisfied are you with the nurses' manner?"
            ),
            satisfaction("nurse_guidance", "导诊、分诊指引是否清楚？", "Was the guidance and triage clear?"),
        ],
    ),
    group(
        "environment",
        "就诊环境",
        "Environment",
        [
            satisfaction(
                "env_clean", "您对就诊环境的整洁舒适满意吗？", "How satisfied are you with the cleanliness and comfort?"
            ),
            satisfaction("env_signs", "院内标识指引是否清楚？", "Were the signs in the hospital clear?"),
        ],
    ),
    group(
        "pharmacy",
        "药房与中药代煎",
        "Pharmacy and herbal decoction",
        [
            satisfaction(
                "pharm_wait", "您对取药等候时间满意吗？", "How satisfied are you with the wait at the pharmacy?"
            ),
            item(
                "used_decoction",
                "boolean",
                "本次是否使用了中药代煎（或配送）服务？",
                "Did you use the herbal decoction (or delivery) service this time?",
            ),
            satisfaction(
                "pharm_decoction",
                "您对中药代煎（配送）服务满意吗？",
                "How satisfied are you with the herbal decoction (delivery) service?",
                enableWhen=[when("used_decoction", "=", answerBoolean=True)],
            ),
        ],
    ),
    group(
        "costs",
        "收费",
        "Costs",
        [satisfaction("cost_transparency", "收费是否透明、清楚？", "Were the charges transparent and clear?")],
    ),
    satisfaction(
        "dept_overall",
        "您对本次就诊科室的总体满意度如何？",
        "Overall, how satisfied are you with the department you visited?",
    ),
    choice(
        "recommend",
        "您有多大可能向亲友推荐本院？（0 = 完全不可能，10 = 非常可能）",
        "How likely are you to recommend this hospital to family and friends? (0 = not at all, 10 = extremely)",
        RECOMMEND_OPTIONS,
        required=True,
    ),
    item("comments", "text", "您还有什么意见或建议？", "Any other comments or suggestions?"),
]


def satisfaction_scoring(domains: dict[str, tuple[str, str, list[str]]]) -> dict:
    """The overall mean, one mean per domain, and the 0–10 recommendation with its NPS category."""
    every = [link_id for _zh, _en, link_ids in domains.values() for link_id in link_ids]
    scores = [
        {"code": "satisfaction", "label": "总体满意度", "label_en": "Satisfaction", "method": "mean", "items": every,
         "bands": MEAN_BANDS},
    ]  # fmt: skip
    for code, (zh, en, link_ids) in domains.items():
        scores.append(
            {"code": code, "label": zh, "label_en": en, "method": "mean", "items": link_ids, "bands": MEAN_BANDS}
        )
    scores.append(
        {"code": "recommend", "label": "推荐意愿", "label_en": "Recommendation", "method": "sum", "items": ["recommend"],
         "bands": NPS_BANDS}
    )  # fmt: skip
    return {"scores": scores}


SCORING = satisfaction_scoring(DOMAINS)

DEFINITION = {
    "code": CODE,
    "title": "门诊患者满意度调查",
    "title_en": "Outpatient satisfaction survey",
    "description": "门诊就诊后的满意度调查：挂号候诊、医生、护理、环境、药房与代煎、收费、科室，以及 0–10 推荐意愿。",
    "purpose": "satisfaction",
    "items": ITEMS,
    "scoring": SCORING,
}

__all__ = ["CODE", "DEFINITION", "context_answers"]
