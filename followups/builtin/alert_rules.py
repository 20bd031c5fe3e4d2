"""The alert rules HCRM ships with: low satisfaction and detractors to the department head, red flags after
discharge to the attending doctor. Written once by `load_questionnaires`; staff may change or retire them."""

from __future__ import annotations

from followups.builtin import inpatient_satisfaction, outpatient_satisfaction, post_discharge

# name, questionnaire code, fields
ALERT_RULES: list[tuple[str, str, dict]] = [
    *[
        (
            f"{title}：单项评分 ≤ 2",
            module.CODE,
            {"condition": "answer", "link_id": "*", "operator": "<=", "value": "2", "severity": "warning"},
        )
        for title, module in (("门诊满意度", outpatient_satisfaction), ("住院满意度", inpatient_satisfaction))
    ],
    *[
        (
            f"{title}：推荐意愿贬损者（0–6）",
            module.CODE,
            {"condition": "score_band", "score_code": "recommend", "score_min": 0, "score_max": 6, "severity": "info"},
        )
        for title, module in (("门诊满意度", outpatient_satisfaction), ("住院满意度", inpatient_satisfaction))
    ],
    (
        "出院后危险症状",
        post_discharge.CODE,
        {
            "condition": "red_flag",
            "score_code": "red_flags",
            "severity": "critical",
            "recipient": "doctor",
            "escalate_after_minutes": 60,
        },
    ),
]

DEFAULTS = {"recipient": "department_head", "escalate_to": "department_head", "escalate_after_minutes": 24 * 60}
