"""中医体质分类与判定 — the TCM constitution questionnaire of ZYYXH/T 157-2009.

The standard's table lists 67 questions over nine constitutions; six of them appear in two groups
(容易疲乏, 说话声音低弱无力, 感到闷闷不乐, 比一般人耐受不了寒冷, 容易忘事 in 平和质 and a biased type;
比别人容易患感冒 in 阳虚质 and 气虚质) and 湿热质 has one question for women (带下色黄) and one for men
(阴囊潮湿). Here each question is asked once, in the standard's table order, and counted in every group
it belongs to: 60 questions for a patient, on the standard's 1–5 scale (没有/很少/有时/经常/总是).

The sex-specific 湿热质 question is shown by enableWhen on the `sex` item (answered from the patient's
record when known: `initial_answers`). There are two `damp_heat` rules, one per sex; a transformed score
needs every item answered and hidden answers are dropped, so exactly one of them is computed.

平和质 items 2, 3, 4, 5, 7, 8 (marked * in the standard) are reverse-scored in 平和质 only; the same
questions count forward in 气虚质, 气郁质, 阳虚质 and 血瘀质. Every score is the standard's transformed
score (raw − items) / (items × 4) × 100; the judgement is `followups.constitution.constitution_judge`.
"""

from __future__ import annotations

from followups.builtin._items import band, choice, group, option, when

CODE = "tcm-constitution"

SCALE = [
    option("1", "没有（根本不）", "Never (not at all)", 1),
    option("2", "很少（有一点）", "Rarely (a little)", 2),
    option("3", "有时（有些）", "Sometimes (somewhat)", 3),
    option("4", "经常（相当）", "Often (quite)", 4),
    option("5", "总是（非常）", "Always (very)", 5),
]

# code → (Chinese, English)
CONSTITUTIONS: dict[str, tuple[str, str]] = {
    "balanced": ("平和质", "Balanced"),
    "qi_deficiency": ("气虚质", "Qi deficiency"),
    "yang_deficiency": ("阳虚质", "Yang deficiency"),
    "yin_deficiency": ("阴虚质", "Yin deficiency"),
    "phlegm_dampness": ("痰湿质", "Phlegm-dampness"),
    "damp_heat": ("湿热质", "Damp-heat"),
    "blood_stasis": ("血瘀质", "Blood stasis"),
    "qi_stagnation": ("气郁质", "Qi stagnation"),
    "inherited_special": ("特禀质", "Inherited special"),
}
BIASED = tuple(code for code in CONSTITUTIONS if code != "balanced")

# The questions, by group in the standard's table order: (linkId, Chinese, English).
QUESTIONS: dict[str, list[tuple[str, str, str]]] = {
    "yang_deficiency": [
        ("yang1", "您手脚发凉吗？", "Are your hands and feet cold?"),
        ("yang2", "您胃脘部、背部或腰膝部怕冷吗？", "Do your stomach, back, or lower back and knees feel the cold?"),
        ("yang3", "您感到怕冷、衣服比别人穿得多吗？", "Do you feel the cold and wear more clothes than others?"),
        (
            "yang4",
            "您比一般人耐受不了寒冷（冬天的寒冷，夏天的冷空调、电扇等）吗？",
            "Do you bear cold less well than most people (winter cold, air conditioning or fans in summer)?",
        ),
        ("yang5", "您比别人容易患感冒吗？", "Do you catch colds more easily than others?"),
        (
            "yang6",
            "您吃（喝）凉的东西会感到不舒服或者怕吃（喝）凉东西吗？",
            "Does cold food or drink make you uncomfortable, or do you avoid it?",
        ),
        (
            "yang7",
            "您受凉或吃（喝）凉的东西后，容易腹泻（拉肚子）吗？",
            "Do you easily get diarrhoea after catching cold or eating or drinking something cold?",
        ),
    ],
    "yin_deficiency": [
        ("yin1", "您感到手脚心发热吗？", "Do your palms and soles feel hot?"),
        ("yin2", "您感觉身体、脸上发热吗？", "Do your body or face feel hot?"),
        ("yin3", "您皮肤或口唇干吗？", "Are your skin or lips dry?"),
        ("yin4", "您口唇的颜色比一般人红吗？", "Are your lips redder than most people's?"),
        ("yin5", "您容易便秘或大便干燥吗？", "Are you easily constipated, or are your stools dry?"),
        ("yin6", "您面部两颧潮红或偏红吗？", "Are your cheeks flushed or reddish?"),
        ("yin7", "您感到眼睛干涩吗？", "Do your eyes feel dry?"),
        (
            "yin8",
            "您感到口干咽燥、总想喝水吗？",
            "Do your mouth and throat feel dry, so that you always want to drink?",
        ),
    ],
    "qi_deficiency": [
        ("qi1", "您容易疲乏吗？", "Do you tire easily?"),
        ("qi2", "您容易气短（呼吸短促，接不上气）吗？", "Do you easily get short of breath?"),
        ("qi3", "您容易心慌吗？", "Do you easily get palpitations?"),
        ("qi4", "您容易头晕或站起时晕眩吗？", "Do you easily feel dizzy, or light-headed when standing up?"),
        ("qi6", "您喜欢安静、懒得说话吗？", "Do you prefer quiet and not feel like talking?"),
        ("qi7", "您说话声音低弱无力吗？", "Is your voice low and weak?"),
        ("qi8", "您活动量稍大就容易出虚汗吗？", "Do you sweat easily with a little more activity?"),
    ],
    "phlegm_dampness": [
        ("phlegm1", "您感到胸闷或腹部胀满吗？", "Do you feel tightness in the chest or fullness in the abdomen?"),
        ("phlegm2", "您感到身体沉重不轻松或不爽快吗？", "Does your body feel heavy and sluggish?"),
        ("phlegm3", "您腹部肥满松软吗？", "Is your abdomen plump and soft?"),
        ("phlegm4", "您有额部油脂分泌多的现象吗？", "Is your forehead oily?"),
        (
            "phlegm5",
            "您上眼睑比别人肿（上眼睑有轻微隆起的现象）吗？",
            "Are your upper eyelids more puffy than other people's?",
        ),
        ("phlegm6", "您嘴里有黏黏的感觉吗？", "Does your mouth feel sticky?"),
        (
            "phlegm7",
            "您平时痰多，特别是咽喉部总感到有痰堵着吗？",
            "Do you have much phlegm, especially a feeling of phlegm stuck in the throat?",
        ),
        (
            "phlegm8",
            "您舌苔厚腻或有舌苔厚厚的感觉吗？",
            "Is your tongue coating thick and greasy, or does it feel thick?",
        ),
    ],
    "damp_heat": [
        ("dampheat1", "您面部或鼻部有油腻感或者油亮发光吗？", "Is your face or nose greasy or shiny?"),
        ("dampheat2", "您容易生痤疮或疮疖吗？", "Do you easily get acne or boils?"),
        ("dampheat3", "您感到口苦或嘴里有异味吗？", "Do you have a bitter taste or an odd taste in your mouth?"),
        (
            "dampheat4",
            "您大便黏滞不爽、有解不尽的感觉吗？",
            "Are your stools sticky, with a feeling of not having finished?",
        ),
        (
            "dampheat5",
            "您小便时尿道有发热感、尿色浓（深）吗？",
            "Does it burn when you pass water, or is your urine dark?",
        ),
        (
            "dampheat6f",
            "您带下色黄（白带颜色发黄）吗？（限女性回答）",
            "Is your vaginal discharge yellow? (women only)",
        ),
        ("dampheat6m", "您的阴囊部位潮湿吗？（限男性回答）", "Is your scrotum damp? (men only)"),
    ],
    "blood_stasis": [
        (
            "stasis1",
            "您的皮肤在不知不觉中会出现青紫瘀斑（皮下出血）吗？",
            "Do bruises (bleeding under the skin) appear on your skin without you knowing why?",
        ),
        ("stasis2", "您两颧部有细微红丝吗？", "Do you have fine red veins on your cheeks?"),
        ("stasis3", "您身体上有哪里疼痛吗？", "Do you have pain anywhere in your body?"),
        (
            "stasis4",
            "您面色晦黯或容易出现褐斑吗？",
            "Is your complexion dull and dark, or do you easily get brown spots?",
        ),
        ("stasis5", "您容易有黑眼圈吗？", "Do you easily get dark circles under your eyes?"),
        ("stasis6", "您容易忘事（健忘）吗？", "Are you forgetful?"),
        ("stasis7", "您口唇颜色偏黯吗？", "Are your lips darkish?"),
    ],
    "inherited_special": [
        ("special1", "您没有感冒时也会打喷嚏吗？", "Do you sneeze even without a cold?"),
        ("special2", "您没有感冒时也会鼻塞、流鼻涕吗？", "Is your nose blocked or runny even without a cold?"),
        (
            "special3",
            "您有因季节变化、温度变化或异味等原因而咳喘的现象吗？",
            "Do you cough or wheeze with changes of season or temperature, or with odours?",
        ),
        (
            "special4",
            "您容易过敏（对药物、食物、气味、花粉或在季节交替、气候变化时）吗？",
            "Are you prone to allergies (to medicines, food, smells, pollen, or when the season or weather changes)?",
        ),
        (
            "special5",
            "您的皮肤容易起荨麻疹（风团、风疹块、风疙瘩）吗？",
            "Does your skin easily break out in hives (wheals)?",
        ),
        (
            "special6",
            "您的皮肤因过敏出现过紫癜（紫红色瘀点、瘀斑）吗？",
            "Have you had purpura (purple-red spots or patches) on your skin from an allergy?",
        ),
        (
            "special7",
            "您的皮肤一抓就红，并出现抓痕吗？",
            "Does your skin turn red and show marks as soon as it is scratched?",
        ),
    ],
    "qi_stagnation": [
        ("stagnation1", "您感到闷闷不乐、情绪低沉吗？", "Do you feel unhappy and low in spirits?"),
        ("stagnation2", "您容易精神紧张、焦虑不安吗？", "Do you easily get tense or anxious?"),
        ("stagnation3", "您多愁善感、感情脆弱吗？", "Are you sentimental and emotionally fragile?"),
        ("stagnation4", "您容易感到害怕或受到惊吓吗？", "Are you easily frightened or startled?"),
        ("stagnation5", "您胁肋部或乳房胀痛吗？", "Do you have distending pain in your sides or breasts?"),
        ("stagnation6", "您无缘无故叹气吗？", "Do you sigh for no reason?"),
        (
            "stagnation7",
            "您咽喉部有异物感，且吐之不出、咽之不下吗？",
            "Do you feel something stuck in your throat that you can neither cough up nor swallow?",
        ),
    ],
    "balanced": [
        ("balanced1", "您精力充沛吗？", "Are you full of energy?"),
        (
            "balanced6",
            "您能适应外界自然和社会环境的变化吗？",
            "Do you adapt to changes in your natural and social surroundings?",
        ),
        ("balanced7", "您容易失眠吗？", "Do you sleep badly easily?"),
    ],
}

# Each group's items in the standard's own numbering; shared questions are asked under their first group.
GROUP_ITEMS: dict[str, list[str]] = {
    "balanced": ["balanced1", "qi1", "qi7", "stagnation1", "yang4", "balanced6", "balanced7", "stasis6"],
    "qi_deficiency": ["qi1", "qi2", "qi3", "qi4", "yang5", "qi6", "qi7", "qi8"],
    "yang_deficiency": [f"yang{number}" for number in range(1, 8)],
    "yin_deficiency": [f"yin{number}" for number in range(1, 9)],
    "phlegm_dampness": [f"phlegm{number}" for number in range(1, 9)],
    "damp_heat": [f"dampheat{number}" for number in range(1, 6)],  # + the woman's or the man's item
    "blood_stasis": [f"stasis{number}" for number in range(1, 8)],
    "qi_stagnation": [f"stagnation{number}" for number in range(1, 8)],
    "inherited_special": [f"special{number}" for number in range(1, 8)],
}
# 平和质 (2)(3)(4)(5)(7)(8): 容易疲乏, 说话声音低弱无力, 感到闷闷不乐, 耐受不了寒冷, 容易失眠, 容易忘事.
BALANCED_REVERSED = ["qi1", "qi7", "stagnation1", "yang4", "balanced7", "stasis6"]

SEX_ITEMS = {"dampheat6f": "female", "dampheat6m": "male"}


def _question(link_id: str, zh: str, en: str) -> dict:
    extra = {}
    if link_id in SEX_ITEMS:
        extra["enableWhen"] = [when("sex", "=", answerCoding={"code": SEX_ITEMS[link_id]})]
    return choice(link_id, zh, en, SCALE, required=True, **extra)


ITEMS = [
    choice(
        "sex",
        "性别",
        "Sex",
        [option("female", "女", "Female"), option("male", "男", "Male")],
        required=True,
    ),
    *[
        group(code, CONSTITUTIONS[code][0], CONSTITUTIONS[code][1], [_question(*question) for question in questions])
        for code, questions in QUESTIONS.items()
    ],
]

BIASED_BANDS = [
    band(40, None, "是", "Yes"),
    band(30, 39.99, "倾向是", "Tending to"),
    band(None, 29.99, "否", "No"),
]


def _rule(code: str, items: list[str]) -> dict:
    zh, en = CONSTITUTIONS[code]
    rule = {"code": code, "label": zh, "label_en": en, "method": "transformed", "items": items, "min": 1, "max": 5}
    if code == "balanced":
        rule["reverse"] = BALANCED_REVERSED
    else:
        rule["bands"] = BIASED_BANDS
    return rule


def _rules() -> list[dict]:
    rules = [_rule("balanced", GROUP_ITEMS["balanced"])]
    for code in BIASED:
        if code == "damp_heat":
            rules += [_rule(code, [*GROUP_ITEMS[code], sex_item]) for sex_item in SEX_ITEMS]
        else:
            rules.append(_rule(code, GROUP_ITEMS[code]))
    return rules


SCORING = {"scores": _rules()}


def initial_answers(patient) -> dict[str, str]:
    """The answers known before asking: the patient's sex, when the record has it as female or male."""
    return {"sex": patient.sex} if patient.sex in SEX_ITEMS.values() else {}


DEFINITION = {
    "code": CODE,
    "title": "中医体质分类与判定",
    "title_en": "TCM constitution assessment",
    "description": "中华中医药学会标准《中医体质分类与判定》（ZYYXH/T 157-2009）：60 个条目，判定平和质及八种偏颇体质。",
    "purpose": "constitution",
    "items": ITEMS,
    "scoring": SCORING,
}
