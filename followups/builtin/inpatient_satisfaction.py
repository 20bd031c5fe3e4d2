"""住院患者满意度调查 — inpatient satisfaction survey, asked after discharge.

As the outpatient survey: the hidden `department` and `doctor` items are answered from the follow-up task
(`context_answers`: the discharging department's code, the attending doctor's username), so the doctor
domain is a per-doctor rating and `dept_overall` a per-department one. Scores: the mean of every 1–5
item, one mean per domain, and the 0–10 recommendation with its NPS category.
"""

from __future__ import annotations

from followups.builtin._items import RECOMMEND_OPTIONS, choice, group, item, satisfaction, when
from followups.builtin.outpatient_satisfaction import context_answers, satisfaction_scoring

CODE = "inpatient-satisfaction"

DOMAINS: dict[str, tuple[str, str, list[str]]] = {
    "admission": ("入院与出院手续", "Admission and discharge", ["adm_process", "dis_guidance"]),
    "doctor": ("医生", "Doctor", ["doc_rounds", "doc_explanation", "doc_attitude"]),
    "nursing": ("护理", "Nursing", ["nurse_timely", "nurse_attitude", "nurse_education"]),
    "environment": ("病房环境与膳食", "Ward and meals", ["env_ward", "env_meals"]),
    "pharmacy": ("用药与中药汤剂", "Medication and herbal decoction", ["pharm_explanation", "pharm_decoction"]),
    "costs": ("费用", "Costs", ["cost_transparency"]),
    "department": ("科室", "Department", ["dept_overall"]),
}

ITEMS = [
    item("department", "string", "出院科室", "Discharging department", hidden=True),
    item("doctor", "string", "主管医生", "Attending doctor", hidden=True),
    group(
        "admission",
        "入院与出院",
        "Admission and discharge",
        [
            satisfaction("adm_process", "入院手续办理是否便捷？", "Was admission quick and easy?"),
            satisfaction(
                "dis_guidance",
                "出院时的用药、饮食和复诊指导是否清楚？",
                "Were the instructions on medicines, diet and follow-up visits at discharge clear?",
            ),
        ],
    ),
    group(
        "doctor_group",
        "医生",
        "The doctor",
        [
            satisfaction("doc_rounds", "医生查房是否及时？", "Did the doctors come on rounds in good time?"),
            satisfaction(
                "doc_explanation",
                "医生对病情、检查和治疗方案解释清楚吗？",
                "Did the doctor explain your condition, tests and treatment clearly?",
            ),
            satisfaction(
                "doc_attitude", "您对医生的服务态度满意吗？", "How satisfied are you with the doctor's manner?"
            ),
        ],
    ),
    group(
        "nursing",
        "护理",
        "Nursing",
        [
            satisfaction("nurse_timely", "呼叫护士时是否得到及时回应？", "Did the nurses come promptly when called?"),
            satisfaction(
                "nurse_attitude", "您对护士的服务态度满意吗？", "How satisfied are you with the nurses' manner?"
            ),
            satisfaction("nurse_education", "护士的健康宣教是否清楚？", "Was the nurses' health education clear?"),
        ],
    ),
    group(
        "environment",
        "病房环境与膳食",
        "Ward and meals",
        [
            satisfaction("env_ward", "病房是否整洁、安静？", "Was the ward clean and quiet?"),
            satisfaction("env_meals", "您对住院膳食满意吗？", "How satisfied are you with the meals?"),
        ],
    ),
    group(
        "pharmacy",
        "用药与中药汤剂",
        "Medication and herbal decoction",
        [
            satisfaction(
                "pharm_explanation",
                "用药的目的和方法是否向您说明？",
                "Were you told what your medicines are for and how to take them?",
            ),
            item(
                "took_decoction", "boolean", "住院期间是否服用中药汤剂？", "Did you take herbal decoctions in hospital?"
            ),
            satisfaction(
                "pharm_decoction",
                "中药汤剂是否按时送达、温度适宜？",
                "Were the decoctions brought on time and at the right temperature?",
                enableWhen=[when("took_decoction", "=", answerBoolean=True)],
            ),
        ],
    ),
    group(
        "costs",
        "费用",
        "Costs",
        [
            satisfaction(
                "cost_transparency",
                "每日费用清单是否透明、清楚？",
                "Was the daily statement of charges transparent and clear?",
            )
        ],
    ),
    satisfaction(
        "dept_overall",
        "您对本次住院科室的总体满意度如何？",
        "Overall, how satisfied are you with the department you stayed in?",
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

DEFINITION = {
    "code": CODE,
    "title": "住院患者满意度调查",
    "title_en": "Inpatient satisfaction survey",
    "description": "出院后的满意度调查：入出院、医生、护理、病房与膳食、用药与汤剂、费用、科室，以及 0–10 推荐意愿。",
    "purpose": "satisfaction",
    "items": ITEMS,
    "scoring": satisfaction_scoring(DOMAINS),
}

__all__ = ["CODE", "DEFINITION", "context_answers"]
