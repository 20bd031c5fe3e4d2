"""出院后随访 — post-discharge clinical follow-up.

Red-flag answers raise the `red_flags` score (each red-flag symptom scores 1, the others 0) into its
"alert" band; a worse state than at discharge, missed medicines, or a wish to be seen raise `attention`.
Branching: symptoms are asked only when the patient reports any; decoction questions only when herbal
decoctions were prescribed; the visit question's details only when a visit is wanted.
"""

from __future__ import annotations

from followups.builtin._items import band, choice, group, item, option, when

CODE = "post-discharge"

RED_FLAGS = ("fever", "bleeding", "chest_pain", "breathless", "severe_pain", "confusion")

ITEMS = [
    choice(
        "recovery",
        "与出院时相比，您现在的身体状况如何？",
        "Compared with the day you left hospital, how are you now?",
        [
            option("much_better", "明显好转", "Much better", 0),
            option("better", "有所好转", "A little better", 0),
            option("same", "差不多", "About the same", 0),
            option("worse", "加重", "Worse", 1),
        ],
        required=True,
    ),
    item(
        "has_symptoms",
        "boolean",
        "出院后是否出现新的不适或症状？",
        "Have you had any new discomfort or symptoms since discharge?",
        required=True,
    ),
    group(
        "symptoms_group",
        "症状",
        "Symptoms",
        [
            choice(
                "symptoms",
                "请选择您出现的症状（可多选）",
                "Which symptoms have you had? (choose all that apply)",
                [
                    option("fever", "发热（体温 ≥ 38.5℃）", "Fever (38.5 °C or above)", 1),
                    option("bleeding", "伤口或其他部位出血", "Bleeding from the wound or elsewhere", 1),
                    option("chest_pain", "胸痛、胸闷", "Chest pain or tightness", 1),
                    option("breathless", "气促、呼吸困难", "Shortness of breath", 1),
                    option("severe_pain", "剧烈疼痛", "Severe pain", 1),
                    option("confusion", "意识模糊、言语不清", "Confusion or slurred speech", 1),
                    option("wound", "伤口红肿、渗液", "Red, swollen or weeping wound", 0),
                    option("poor_appetite", "食欲差", "Poor appetite", 0),
                    option("poor_sleep", "睡眠差", "Poor sleep", 0),
                    option("fatigue", "乏力", "Tiredness", 0),
                    option("other", "其他", "Other", 0),
                ],
                repeats=True,
                required=True,
            ),
            item("symptoms_detail", "text", "请描述症状及开始的时间", "Describe the symptoms and when they began"),
        ],
        enableWhen=[when("has_symptoms", "=", answerBoolean=True)],
    ),
    choice(
        "medication",
        "您是否按医嘱服用出院带药？",
        "Are you taking the medicines prescribed at discharge as directed?",
        [
            option("as_prescribed", "按时按量服用", "Yes, as prescribed", 0),
            option("sometimes_missed", "偶尔漏服", "Sometimes missed", 0),
            option("stopped", "已自行停药", "Stopped on my own", 1),
            option("none_prescribed", "未开药", "No medicines prescribed", 0),
        ],
        required=True,
    ),
    item(
        "decoction_prescribed", "boolean", "出院时是否开具中药汤剂？", "Were herbal decoctions prescribed at discharge?"
    ),
    group(
        "decoction_group",
        "中药汤剂",
        "Herbal decoction",
        [
            choice(
                "decoction_taking",
                "您是否按时服用中药汤剂？",
                "Are you taking the decoction on time?",
                [
                    option("daily", "每日按时服用", "Every day, on time", 0),
                    option("irregular", "不规律", "Irregularly", 0),
                    option("stopped", "已停服", "Stopped", 1),
                ],
            ),
            choice(
                "decoction_method",
                "中药汤剂如何煎煮？",
                "How is the decoction prepared?",
                [
                    option("hospital", "医院代煎", "Prepared by the hospital"),
                    option("home", "自行煎煮", "Prepared at home"),
                ],
            ),
            item(
                "decoction_discomfort",
                "boolean",
                "服药后是否有胃部不适、腹泻等反应？",
                "Any stomach upset, diarrhoea or other reaction after taking it?",
            ),
        ],
        enableWhen=[when("decoction_prescribed", "=", answerBoolean=True)],
    ),
    choice(
        "diet",
        "您是否按出院指导调整饮食和作息？",
        "Are you following the diet and rest advice you were given?",
        [
            option("yes", "是", "Yes"),
            option("partly", "部分做到", "Partly"),
            option("no", "否", "No"),
        ],
    ),
    choice(
        "exercise",
        "目前的活动情况",
        "How active are you now?",
        [
            option("normal", "恢复日常活动", "Back to daily activities"),
            option("light", "可轻度活动", "Light activity"),
            option("bed", "卧床为主", "Mostly in bed"),
        ],
    ),
    item(
        "wants_visit",
        "boolean",
        "您是否需要提前复诊或希望医生联系您？",
        "Do you need to be seen earlier or want a doctor to call you?",
        required=True,
    ),
    item(
        "visit_reason",
        "text",
        "请说明原因",
        "Please say why",
        enableWhen=[when("wants_visit", "=", answerBoolean=True)],
    ),
    item("comments", "text", "其他想告诉医生的情况", "Anything else you would like the doctor to know"),
]

SCORING = {
    "scores": [
        {
            "code": "red_flags",
            "label": "危险症状",
            "label_en": "Red-flag symptoms",
            "method": "sum",
            "items": ["symptoms"],
            "bands": [
                band(1, None, "有危险症状", "Red-flag symptoms", "alert"),
                band(0, 0, "无危险症状", "No red-flag symptoms"),
            ],
        },
        {
            "code": "attention",
            "label": "需关注",
            "label_en": "Needs attention",
            "method": "sum",
            "items": ["recovery", "medication", "decoction_taking", "wants_visit"],
            "bands": [
                band(1, None, "需医生关注", "Needs a doctor's attention", "warning"),
                band(0, 0, "恢复顺利", "Recovering as expected"),
            ],
        },
    ]
}

DEFINITION = {
    "code": CODE,
    "title": "出院后随访",
    "title_en": "Post-discharge follow-up",
    "description": "出院后的恢复情况、症状（危险症状预警）、用药与中药汤剂、饮食起居及复诊需求。",
    "purpose": "clinical",
    "items": ITEMS,
    "scoring": SCORING,
}
