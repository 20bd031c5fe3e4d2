"""高血压患者随访 — hypertension follow-up by the national basic public health service norms
(国家基本公共卫生服务规范 第三版, 高血压患者健康管理服务规范: at least four face-to-face follow-ups a year,
and the items of its 高血压患者随访服务记录表).

Scores and their flags:
- `sbp` / `dbp`: the measured pressures; "warning" when not controlled (≥ 140 / ≥ 90 mmHg), "alert" at
  the norm's emergency referral threshold (≥ 180 / ≥ 110 mmHg);
- `danger_signs`: the norm's danger signs needing emergency referral (each scores 1) → "alert";
- `symptoms`: the form's symptom list (each but 无症状 scores 1) → "warning";
- `bmi`: 24 and over overweight, 28 and over obese (WS/T 428), "warning";
- `adherence`: 规律 1, 间断 2, 不服药 3 → "warning" when not regular.
`schedule` gives the norm's follow-up rhythm for the service that plans the visits.
"""

from __future__ import annotations

from followups.builtin._items import ADHERENCE, CLASSIFICATION, band, choice, group, item, levels, option, when

CODE = "hypertension"

# 规范: 每年至少 4 次面对面随访; 控制不满意或有不良反应者 2 周内随访.
SCHEDULE = {"visits_per_year": 4, "days_after_uncontrolled": 14}

DANGER_SIGNS = [
    option("none", "无", "None", 0),
    option("sbp_dbp_high", "收缩压 ≥ 180 和/或舒张压 ≥ 110 mmHg", "Systolic ≥ 180 and/or diastolic ≥ 110 mmHg", 1),
    option("consciousness", "意识改变", "Change in consciousness", 1),
    option("headache", "剧烈头痛或头晕", "Severe headache or dizziness", 1),
    option("vomiting", "恶心呕吐", "Nausea and vomiting", 1),
    option("vision", "视力模糊、眼痛", "Blurred vision or eye pain", 1),
    option("palpitation", "心悸胸闷", "Palpitations or chest tightness", 1),
    option("orthopnoea", "喘憋不能平卧", "Breathless, cannot lie flat", 1),
    option("precordial_pain", "心前区疼痛", "Pain over the heart", 1),
    option("pregnancy", "妊娠期或哺乳期血压高于正常", "Raised blood pressure in pregnancy or while breastfeeding", 1),
    option("other_emergency", "其他不能处理的急症", "Another emergency that cannot be managed here", 1),
]

SYMPTOMS = [
    option("none", "无症状", "No symptoms", 0),
    option("headache_dizziness", "头痛头晕", "Headache or dizziness", 1),
    option("nausea", "恶心呕吐", "Nausea or vomiting", 1),
    option("vision_tinnitus", "眼花耳鸣", "Blurred vision or ringing in the ears", 1),
    option("dyspnoea", "呼吸困难", "Difficulty breathing", 1),
    option("palpitation", "心悸胸闷", "Palpitations or chest tightness", 1),
    option("epistaxis", "鼻衄出血不止", "Nosebleed that will not stop", 1),
    option("numbness", "四肢发麻", "Numb limbs", 1),
    option("oedema", "下肢水肿", "Swollen legs", 1),
]

ITEMS = [
    group(
        "signs",
        "体征",
        "Signs",
        [
            item("sbp", "integer", "收缩压", "Systolic blood pressure", unit="mm[Hg]", required=True),
            item("dbp", "integer", "舒张压", "Diastolic blood pressure", unit="mm[Hg]", required=True),
            item("heart_rate", "integer", "心率", "Heart rate", unit="/min"),
            item("weight", "decimal", "体重", "Weight", unit="kg"),
            item("height", "decimal", "身高", "Height", unit="cm"),
            item("bmi", "decimal", "体质指数（BMI）", "Body mass index (BMI)", unit="kg/m2"),
            item("other_signs", "string", "其他体征", "Other signs"),
        ],
    ),
    choice(
        "danger_signs",
        "危急情况（有任一项须紧急转诊）",
        "Danger signs (any one: refer urgently)",
        DANGER_SIGNS,
        repeats=True,
        required=True,
    ),
    choice("symptoms", "症状（可多选）", "Symptoms (choose all that apply)", SYMPTOMS, repeats=True, required=True),
    item(
        "symptoms_other",
        "string",
        "其他症状",
        "Other symptoms",
    ),
    group(
        "lifestyle",
        "生活方式指导",
        "Lifestyle",
        [
            item("smoking", "integer", "日吸烟量", "Cigarettes a day", unit="/d"),
            item("drinking", "decimal", "日饮酒量（两）", "Alcohol a day (liang, 50 g)", unit="liang/d"),
            item("exercise_times", "integer", "运动次数（次/周）", "Exercise sessions a week", unit="/wk"),
            item("exercise_minutes", "integer", "每次运动时间（分钟）", "Minutes per session", unit="min"),
            choice(
                "salt",
                "摄盐情况（咸淡）",
                "Salt intake",
                [
                    option("light", "轻", "Light"),
                    option("moderate", "中", "Moderate"),
                    option("heavy", "重", "Heavy"),
                ],
            ),
            levels("psychology", "心理调整", "Psychological adjustment"),
            levels("compliance", "遵医行为", "Following medical advice"),
        ],
    ),
    choice("adherence", "服药依从性", "Medication adherence", ADHERENCE, required=True),
    item("medications", "text", "用药情况（药物名称、用法用量）", "Medicines (name, dose and frequency)"),
    item("adverse_reaction", "boolean", "药物不良反应", "Adverse drug reactions", required=True),
    item(
        "adverse_reaction_detail",
        "string",
        "不良反应情况",
        "Which reaction",
        enableWhen=[when("adverse_reaction", "=", answerBoolean=True)],
    ),
    choice("classification", "此次随访分类", "Classification of this follow-up", CLASSIFICATION, required=True),
    item("referral", "boolean", "是否转诊", "Referred", required=True),
    group(
        "referral_group",
        "转诊",
        "Referral",
        [
            item("referral_reason", "string", "转诊原因", "Reason for referral"),
            item("referral_to", "string", "转诊机构及科别", "Referred to (institution and department)"),
        ],
        enableWhen=[when("referral", "=", answerBoolean=True)],
    ),
    item("next_visit", "date", "下次随访日期", "Next follow-up date"),
]

SCORING = {
    "scores": [
        {
            "code": "sbp",
            "label": "收缩压",
            "label_en": "Systolic pressure",
            "method": "sum",
            "items": ["sbp"],
            "bands": [
                band(180, None, "危急，须紧急转诊", "Danger: refer urgently", "alert"),
                band(140, 179.99, "控制不满意", "Not controlled", "warning"),
                band(None, 139.99, "控制满意", "Controlled"),
            ],
        },
        {
            "code": "dbp",
            "label": "舒张压",
            "label_en": "Diastolic pressure",
            "method": "sum",
            "items": ["dbp"],
            "bands": [
                band(110, None, "危急，须紧急转诊", "Danger: refer urgently", "alert"),
                band(90, 109.99, "控制不满意", "Not controlled", "warning"),
                band(None, 89.99, "控制满意", "Controlled"),
            ],
        },
        {
            "code": "danger_signs",
            "label": "危急情况",
            "label_en": "Danger signs",
            "method": "sum",
            "items": ["danger_signs"],
            "bands": [band(1, None, "须紧急转诊", "Refer urgently", "alert"), band(0, 0, "无", "None")],
        },
        {
            "code": "symptoms",
            "label": "症状数",
            "label_en": "Symptoms",
            "method": "sum",
            "items": ["symptoms"],
            "bands": [band(1, None, "有症状", "Symptoms", "warning"), band(0, 0, "无症状", "No symptoms")],
        },
        {
            "code": "bmi",
            "label": "体质指数",
            "label_en": "Body mass index",
            "method": "sum",
            "items": ["bmi"],
            "bands": [
                band(28, None, "肥胖", "Obese", "warning"),
                band(24, 27.99, "超重", "Overweight", "warning"),
                band(18.5, 23.99, "正常", "Normal"),
                band(None, 18.49, "偏瘦", "Underweight"),
            ],
        },
        {
            "code": "adherence",
            "label": "服药依从性",
            "label_en": "Medication adherence",
            "method": "sum",
            "items": ["adherence"],
            "bands": [
                band(1, 1, "规律", "Regular"),
                band(2, 2, "间断", "Intermittent", "warning"),
                band(3, 3, "不服药", "Not taking", "warning"),
            ],
        },
    ]
}

DEFINITION = {
    "code": CODE,
    "title": "高血压患者随访服务记录表",
    "title_en": "Hypertension follow-up",
    "description": "依据《国家基本公共卫生服务规范（第三版）》高血压患者健康管理：每年至少 4 次随访；血压、症状、体征、生活方式、服药依从性、不良反应、随访分类与转诊。",
    "purpose": "clinical",
    "disease_codes": ["I10", "I11", "I12", "I13", "I15"],
    "items": ITEMS,
    "scoring": SCORING,
}
