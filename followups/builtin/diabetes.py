"""2型糖尿病患者随访 — type 2 diabetes follow-up by the national basic public health service norms
(国家基本公共卫生服务规范 第三版, 2型糖尿病患者健康管理服务规范: at least four follow-ups a year with a
fasting glucose each time, and the items of its 2型糖尿病患者随访服务记录表).

Scores and their flags:
- `fpg`: fasting plasma glucose (mmol/L); "warning" when not controlled (≥ 7.0), "alert" at the norm's
  emergency referral thresholds (≥ 16.7 or ≤ 3.9);
- `danger_signs`: the norm's danger signs needing emergency referral (each scores 1) → "alert";
- `symptoms`: the form's symptom list (each but 无症状 scores 1) → "warning";
- `hypoglycaemia`: 无 0, 偶尔 1, 频繁 2 → "warning" from 偶尔, "alert" when frequent;
- `dorsalis_pedis`: the foot pulse, weakened 1, absent 2 → "warning";
- `bmi`, `adherence`: as in the hypertension follow-up.
"""

from __future__ import annotations

from followups.builtin._items import ADHERENCE, CLASSIFICATION, band, choice, group, item, levels, option, when
from followups.builtin.hypertension import SCORING as HYPERTENSION_SCORING

CODE = "diabetes"

# 规范: 每年至少 4 次面对面随访; 血糖控制不满意或有不良反应者 2 周内随访.
SCHEDULE = {"visits_per_year": 4, "days_after_uncontrolled": 14}

DANGER_SIGNS = [
    option("none", "无", "None", 0),
    option("glucose", "血糖 ≥ 16.7 或 ≤ 3.9 mmol/L", "Glucose ≥ 16.7 or ≤ 3.9 mmol/L", 1),
    option("bp", "收缩压 ≥ 180 和/或舒张压 ≥ 110 mmHg", "Systolic ≥ 180 and/or diastolic ≥ 110 mmHg", 1),
    option("consciousness", "意识或行为改变", "Change in consciousness or behaviour", 1),
    option("ketone_breath", "呼气有烂苹果样丙酮味", "Breath smelling of acetone (rotten apples)", 1),
    option(
        "acute_symptoms",
        "心悸、出汗、食欲减退、恶心、呕吐、多饮、多尿、腹痛",
        "Palpitations, sweating, loss of appetite, nausea, vomiting, thirst, frequent urination, abdominal pain",
        1,
    ),
    option("deep_breathing", "深大呼吸、皮肤潮红", "Deep rapid breathing, flushed skin", 1),
    option("tachycardia", "持续性心动过速（心率 > 100 次/分）", "Persistent tachycardia (over 100 a minute)", 1),
    option("fever", "体温 > 39℃", "Temperature over 39 °C", 1),
    option("vision_loss", "视力突然骤降", "Sudden loss of vision", 1),
    option("pregnancy", "妊娠期或哺乳期血糖高于正常", "Raised glucose in pregnancy or while breastfeeding", 1),
    option("other_emergency", "其他突发异常情况", "Another sudden abnormality", 1),
]

SYMPTOMS = [
    option("none", "无症状", "No symptoms", 0),
    option("polydipsia", "多饮", "Excessive thirst", 1),
    option("polyphagia", "多食", "Excessive hunger", 1),
    option("polyuria", "多尿", "Frequent urination", 1),
    option("blurred_vision", "视力模糊", "Blurred vision", 1),
    option("infection", "感染", "Infection", 1),
    option("numbness", "手脚麻木", "Numb hands or feet", 1),
    option("oedema", "下肢浮肿", "Swollen legs", 1),
    option("weight_loss", "体重明显下降", "Marked weight loss", 1),
]

ITEMS = [
    choice(
        "danger_signs",
        "危急情况（有任一项须紧急转诊）",
        "Danger signs (any one: refer urgently)",
        DANGER_SIGNS,
        repeats=True,
        required=True,
    ),
    choice("symptoms", "症状（可多选）", "Symptoms (choose all that apply)", SYMPTOMS, repeats=True, required=True),
    group(
        "signs",
        "体征",
        "Signs",
        [
            item("sbp", "integer", "收缩压", "Systolic blood pressure", unit="mm[Hg]"),
            item("dbp", "integer", "舒张压", "Diastolic blood pressure", unit="mm[Hg]"),
            item("weight", "decimal", "体重", "Weight", unit="kg"),
            item("height", "decimal", "身高", "Height", unit="cm"),
            item("bmi", "decimal", "体质指数（BMI）", "Body mass index (BMI)", unit="kg/m2"),
            choice(
                "dorsalis_pedis",
                "足背动脉搏动",
                "Dorsalis pedis pulse",
                [
                    option("normal", "触及正常", "Felt, normal", 0),
                    option("weak_both", "减弱（双侧）", "Weak (both feet)", 1),
                    option("weak_left", "减弱（左侧）", "Weak (left)", 1),
                    option("weak_right", "减弱（右侧）", "Weak (right)", 1),
                    option("absent_both", "消失（双侧）", "Absent (both feet)", 2),
                    option("absent_left", "消失（左侧）", "Absent (left)", 2),
                    option("absent_right", "消失（右侧）", "Absent (right)", 2),
                ],
            ),
            item("other_signs", "string", "其他体征", "Other signs"),
        ],
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
            item("staple_food", "integer", "主食（克/天）", "Staple food (grams a day)", unit="g/d"),
            levels("psychology", "心理调整", "Psychological adjustment"),
            levels("compliance", "遵医行为", "Following medical advice"),
        ],
    ),
    group(
        "tests",
        "辅助检查",
        "Tests",
        [
            item("fpg", "decimal", "空腹血糖", "Fasting plasma glucose", unit="mmol/L", required=True),
            item("hba1c", "decimal", "糖化血红蛋白", "Glycated haemoglobin (HbA1c)", unit="%"),
            item("test_date", "date", "检查日期", "Date of the test"),
        ],
    ),
    choice("adherence", "服药依从性", "Medication adherence", ADHERENCE, required=True),
    item(
        "medications",
        "text",
        "口服降糖药（药物名称、用法用量）",
        "Oral glucose-lowering medicines (name, dose and frequency)",
    ),
    item("insulin", "boolean", "是否使用胰岛素", "Using insulin", required=True),
    group(
        "insulin_group",
        "胰岛素",
        "Insulin",
        [
            item("insulin_type", "string", "胰岛素种类", "Insulin type"),
            item("insulin_dose", "string", "用法和用量", "Dose and timing"),
        ],
        enableWhen=[when("insulin", "=", answerBoolean=True)],
    ),
    item("adverse_reaction", "boolean", "药物不良反应", "Adverse drug reactions", required=True),
    item(
        "adverse_reaction_detail",
        "string",
        "不良反应情况",
        "Which reaction",
        enableWhen=[when("adverse_reaction", "=", answerBoolean=True)],
    ),
    choice(
        "hypoglycaemia",
        "低血糖反应",
        "Hypoglycaemic reactions",
        [
            option("none", "无", "None", 0),
            option("occasional", "偶尔", "Occasional", 1),
            option("frequent", "频繁", "Frequent", 2),
        ],
        required=True,
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


def _shared(code: str) -> dict:
    return next(rule for rule in HYPERTENSION_SCORING["scores"] if rule["code"] == code)


SCORING = {
    "scores": [
        {
            "code": "fpg",
            "label": "空腹血糖",
            "label_en": "Fasting glucose",
            "method": "sum",
            "items": ["fpg"],
            # First match wins: the danger thresholds come before the ranges they sit at the edge of.
            "bands": [
                band(16.7, None, "危急（高血糖），须紧急转诊", "Danger (high): refer urgently", "alert"),
                band(None, 3.9, "危急（低血糖），须紧急转诊", "Danger (low): refer urgently", "alert"),
                band(7.0, 16.69, "控制不满意", "Not controlled", "warning"),
                band(3.91, 6.99, "控制满意", "Controlled"),
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
            "code": "hypoglycaemia",
            "label": "低血糖反应",
            "label_en": "Hypoglycaemia",
            "method": "sum",
            "items": ["hypoglycaemia"],
            "bands": [
                band(2, None, "频繁", "Frequent", "alert"),
                band(1, 1, "偶尔", "Occasional", "warning"),
                band(0, 0, "无", "None"),
            ],
        },
        {
            "code": "dorsalis_pedis",
            "label": "足背动脉搏动",
            "label_en": "Foot pulse",
            "method": "sum",
            "items": ["dorsalis_pedis"],
            "bands": [
                band(2, None, "消失", "Absent", "warning"),
                band(1, 1, "减弱", "Weak", "warning"),
                band(0, 0, "正常", "Normal"),
            ],
        },
        _shared("bmi"),
        _shared("adherence"),
    ]
}

DEFINITION = {
    "code": CODE,
    "title": "2型糖尿病患者随访服务记录表",
    "title_en": "Type 2 diabetes follow-up",
    "description": "依据《国家基本公共卫生服务规范（第三版）》2型糖尿病患者健康管理：每年至少 4 次随访；空腹血糖、症状、体征、足背动脉、生活方式、用药与胰岛素、低血糖反应、随访分类与转诊。",
    "purpose": "clinical",
    "disease_codes": ["E11"],
    "items": ITEMS,
    "scoring": SCORING,
}
