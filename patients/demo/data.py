"""Reference data for the demo hospital: a TCM hospital in Guangzhou.

Everything here is plain, immutable data (tuples, named tuples, dicts built in a fixed order) so
that generation depends only on the seed. Codes follow the systems the archive stores: GB/T 2260
region codes, ICD-10 (GB/T 14396), GB/T 15657-style TCM disease and syndrome codes, LOINC, ATC.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple
from zoneinfo import ZoneInfo

# Visits are spread over the three years before a fixed anchor, never "now", so that the same
# seed gives the same rows whenever it runs.
ANCHOR = dt.date(2026, 11, 1)
HISTORY_DAYS = 1096
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")
# Departments, staff and tags are stamped with the day the hospital went live on HCRM.
GO_LIVE = dt.datetime(2023, 10, 9, 9, 0, tzinfo=HOSPITAL_TZ)

DEMO_PASSWORD = "hcrm-demo-2026"  # noqa: S105 (published in the README for the demo logins)
HIS_ASSIGNER = "HIS"
SOURCE_SYSTEM = "HIS"
CARD_ASSIGNER = "广州市中医院"

# --- Departments and staff ------------------------------------------------------------------


class DepartmentSpec(NamedTuple):
    code: str
    name: str
    name_en: str
    kind: str
    description: str
    doctors: int
    specialties: tuple[str, ...]


DEPARTMENTS: tuple[DepartmentSpec, ...] = (
    DepartmentSpec("NK", "内科", "Internal medicine", "clinical", "中医内科常见病、多发病及脑病的诊治。", 4,
                   ("失眠", "头痛", "眩晕", "感冒咳嗽", "糖尿病", "痛风", "中风病急性期", "慢性疲劳")),
    DepartmentSpec("ZJ", "针灸科", "Acupuncture", "clinical", "针刺、艾灸、拔罐等针灸疗法。", 5,
                   ("面瘫", "颈肩腰腿痛", "失眠", "偏头痛", "中风后遗症", "带状疱疹后遗神经痛")),
    DepartmentSpec("TN", "推拿科", "Tuina", "clinical", "成人推拿与小儿推拿。", 4,
                   ("颈椎病", "腰椎间盘突出症", "急性腰扭伤", "小儿积滞", "小儿厌食")),
    DepartmentSpec("GS", "骨伤科", "Orthopaedics and traumatology", "clinical", "骨折、筋伤与骨关节病的中西医结合治疗。", 5,
                   ("骨折手法整复", "腰椎间盘突出症", "膝骨关节炎", "骨质疏松症", "关节置换")),
    DepartmentSpec("FK", "妇科", "Gynaecology", "clinical", "月经病、不孕症、妊娠病与更年期调理。", 4,
                   ("痛经", "月经不调", "不孕症", "绝经前后诸证", "妊娠恶阻", "产后缺乳")),
    DepartmentSpec("EK", "儿科", "Paediatrics", "clinical", "小儿外感、咳喘及脾胃病。", 4,
                   ("小儿外感发热", "小儿咳嗽", "小儿哮喘", "小儿积滞", "小儿厌食")),
    DepartmentSpec("PF", "皮肤科", "Dermatology", "clinical", "湿疹、荨麻疹、痤疮、带状疱疹等皮肤病。", 3,
                   ("湿疹", "特应性皮炎", "荨麻疹", "痤疮", "带状疱疹")),
    DepartmentSpec("ZWB", "治未病中心", "Preventive treatment centre", "preventive", "体质辨识、健康体检、冬病夏治与亚健康调理。", 3,
                   ("体质辨识", "亚健康调理", "冬病夏治", "膏方调养", "过敏性鼻炎")),
    DepartmentSpec("PW", "脾胃病科", "Spleen and stomach diseases", "clinical", "慢性胃炎、反流病、肠易激综合征等脾胃病。", 4,
                   ("慢性胃炎", "胃食管反流病", "肠易激综合征", "功能性便秘", "幽门螺杆菌感染")),
    DepartmentSpec("XXG", "心血管科", "Cardiovascular medicine", "clinical", "高血压、冠心病、心律失常与心力衰竭。", 5,
                   ("高血压病", "冠心病", "心律失常", "慢性心力衰竭", "血脂异常")),
    DepartmentSpec("FB", "肺病科", "Pulmonary diseases", "clinical", "咳嗽、哮喘、慢阻肺与肺部感染。", 4,
                   ("慢性咳嗽", "支气管哮喘", "慢性阻塞性肺疾病", "社区获得性肺炎", "过敏性鼻炎")),
    DepartmentSpec("KF", "康复科", "Rehabilitation", "clinical", "中风后遗症、骨关节病及术后的中西医结合康复。", 3,
                   ("中风后遗症", "膝骨关节炎", "肩周炎", "术后康复")),
)  # fmt: skip

# The chief physician of these departments is one of the hospital's renowned elders (名老中医).
RENOWNED_DEPARTMENTS = ("NK", "ZJ", "GS", "FK", "PW", "XXG")
# The second doctor of these departments also works in a neighbouring one (the demo `doctor` login
# is a sixth doctor of internal medicine).
SECOND_DEPARTMENT = {"NK": "ZWB", "ZJ": "KF", "TN": "EK", "GS": "KF", "PW": "NK", "XXG": "ZWB", "FB": "ZWB"}
DOCTOR_TITLES = (
    "chief_physician",
    "associate_chief_physician",
    "attending_physician",
    "resident_physician",
    "attending_physician",
    "associate_chief_physician",
)
NURSES_PER_DEPARTMENT = 2
AGENTS = 4
# Registration fee (yuan) by doctor title; renowned elders charge the special-needs fee.
REGISTRATION_FEES = {
    "chief_physician": 50,
    "associate_chief_physician": 35,
    "attending_physician": 20,
    "resident_physician": 15,
    "renowned": 200,
}


class DemoLogin(NamedTuple):
    username: str
    role: str
    full_name: str
    department: str
    title: str
    is_head: bool = False
    is_superuser: bool = False


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("admin", "administrator", "系统管理员", "", "", is_superuser=True),
    DemoLogin("doctor", "doctor", "李明华", "NK", "attending_physician"),
    DemoLogin("nurse", "nurse", "陈晓燕", "NK", "senior_nurse"),
    DemoLogin("agent", "agent", "黄丽娟", "NK", ""),
    DemoLogin("head", "department_head", "张国栋", "NK", "chief_physician", is_head=True),
    DemoLogin("analyst", "analyst", "刘思远", "", ""),
)

TAGS: tuple[tuple[str, str], ...] = (
    ("VIP", "#b45309"),
    ("慢病管理", "#2563eb"),
    ("高血压", "#dc2626"),
    ("糖尿病", "#7c3aed"),
    ("孕产妇", "#db2777"),
    ("老年人", "#059669"),
)

# --- Names --------------------------------------------------------------------------------------

# Surnames weighted for a Guangzhou hospital: the national top names, with the Cantonese ones
# (陈, 黄, 梁, 何, 罗, 区, 司徒 ...) more frequent than the national average.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("陈", 9.0), ("李", 7.0), ("黄", 6.0), ("张", 5.5), ("王", 5.0), ("刘", 4.5), ("梁", 3.5), ("林", 3.2),
    ("吴", 2.8), ("何", 2.8), ("罗", 2.4), ("杨", 2.4), ("郑", 2.0), ("周", 1.8), ("赵", 1.6), ("谢", 1.6),
    ("冯", 1.5), ("邓", 1.5), ("钟", 1.4), ("曾", 1.4), ("叶", 1.3), ("徐", 1.2), ("朱", 1.2), ("麦", 0.9),
    ("孙", 1.0), ("胡", 1.0), ("高", 0.9), ("郭", 0.9), ("马", 0.8), ("苏", 0.9), ("卢", 0.9), ("蔡", 0.9),
    ("潘", 0.8), ("杜", 0.5), ("彭", 0.7), ("许", 0.7), ("邱", 0.6), ("余", 0.7), ("欧", 0.5), ("莫", 0.6),
    ("关", 0.6), ("谭", 0.8), ("廖", 0.7), ("江", 0.6), ("方", 0.5), ("唐", 0.6), ("韩", 0.4), ("宋", 0.4),
    ("袁", 0.4), ("沈", 0.3), ("曹", 0.4), ("魏", 0.3), ("程", 0.3), ("范", 0.3), ("汤", 0.3), ("丁", 0.3),
    ("姚", 0.3), ("邹", 0.4), ("熊", 0.3), ("金", 0.3), ("陆", 0.3), ("石", 0.3), ("崔", 0.2), ("康", 0.2),
    ("毛", 0.2), ("严", 0.3), ("温", 0.5), ("赖", 0.5), ("龚", 0.2), ("文", 0.3), ("容", 0.3), ("骆", 0.2),
    ("伍", 0.4), ("黎", 0.5), ("易", 0.2), ("戴", 0.2), ("贺", 0.2), ("姜", 0.2), ("万", 0.2), ("侯", 0.1),
    ("区", 0.3), ("单", 0.05), ("解", 0.05), ("仇", 0.05), ("查", 0.05), ("覃", 0.2), ("翟", 0.05), ("柏", 0.05),
    ("欧阳", 0.2), ("司徒", 0.15), ("司马", 0.03), ("上官", 0.02), ("诸葛", 0.02), ("东方", 0.01), ("皇甫", 0.01),
)  # fmt: skip

SURNAME_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "han": SURNAMES,
    "zhuang": (("韦", 5), ("覃", 4), ("黄", 4), ("蓝", 2), ("农", 2), ("陆", 1), ("莫", 2), ("梁", 1)),
    "hui": (("马", 6), ("白", 2), ("哈", 1), ("纳", 1), ("海", 1), ("杨", 1)),
    "manchu": (("关", 3), ("佟", 2), ("那", 1), ("赵", 2), ("金", 2), ("索", 1)),
    "korean": (("金", 6), ("李", 4), ("朴", 4), ("崔", 3), ("郑", 2), ("姜", 1)),
}

# Given names by birth cohort (before 1960, 1960-79, 1980-99, 2000 on) and sex.
_GIVEN = {
    ("male", 0): "建国 国强 国华 志明 德明 振华 建华 永康 金福 福生 国庆 志强 文华 建军 卫东 树林 洪 伟 明 辉 荣 海 "
    "成 强 忠 光明 炳坤 锦荣 耀祖 炳南 汉文 国栋 柏林 家明 德华 伟雄 志坚 国梁 宝山 玉堂 明德 振兴 锦华 汉明 少华",
    ("female", 0): "秀英 桂英 秀兰 玉兰 桂兰 淑珍 淑英 凤英 玉珍 秀珍 丽华 美华 惠芳 凤珍 月娥 桂芳 玉梅 素珍 彩霞 "
    "秀琴 玉凤 淑华 瑞英 少芬 丽珍 妙玲 燕芳 金凤 爱华 素芬 丽英 惠珍 英 兰 珍 芳 梅 霞 带娣 润好 转娣",
    ("male", 1): "伟 勇 军 斌 涛 强 磊 鹏 刚 平 辉 明 健 波 建平 建新 志勇 海涛 晓东 国平 卫国 振宇 立新 永强 俊杰 "
    "志刚 红军 海波 少华 永明 锦辉 志伟 伟强 国辉 文斌 家豪 建伟 新民 伟明 冠华 嘉明",
    ("female", 1): "丽 芳 红 燕 敏 静 霞 艳 娟 萍 丽华 红梅 春梅 玉霞 晓红 海燕 丽娟 秀芳 美玲 晓燕 小红 慧 琴 雪梅 "
    "凤霞 少玲 翠玲 惠玲 丽萍 艳红 秋菊 晓梅 海英 月华 淑贞 美莲 燕玲 小玲",
    ("male", 2): "浩 磊 鑫 杰 涛 超 鹏 宇 帅 俊 斌 晨 伟 健 亮 博 文 志华 俊杰 志豪 文博 子豪 嘉豪 晓明 伟杰 家乐 "
    "振宇 泽锋 浩然 宇航 梓健 俊豪 永杰 杰文 家俊 锦鸿 嘉俊 伟豪 建锋 国威 卓然 健华",
    ("female", 2): "婷 静 丽 娜 敏 颖 琳 倩 雪 佳 晶 洁 欣 怡 婷婷 静怡 丽娜 晓燕 雅婷 佳慧 思琪 嘉欣 慧敏 晓琳 诗琪 "
    "雅琪 嘉怡 丹丹 秀娟 倩文 晓丹 丽婷 淑仪 美琪 颖诗 咏诗 宝仪 晓彤 嘉敏 凯琳",
    ("male", 3): "子轩 浩宇 宇轩 梓轩 浩然 一诺 子墨 宇辰 俊熙 梓豪 沐阳 皓轩 博文 承泽 锦程 天佑 梓睿 明轩 思源 宇航 "
    "嘉懿 睿 泽宇 诺 铭 骏 晨 瑞 霖 煜 梓航 乐言 奕辰 铭轩 子睿 家齐",
    ("female", 3): "梓涵 欣怡 雨桐 诗涵 可馨 一诺 子涵 依诺 语嫣 紫萱 梓萱 思彤 欣妍 雨萱 芷若 佳琪 若汐 雅琳 婉清 "
    "梦琪 晨曦 悦 萱 彤 妍 琳 涵 梓琪 安琪 芊芊 诗雨 乐瑶 紫琪 语桐 沐晴",
}
GIVEN_NAMES: dict[tuple[str, int], tuple[str, ...]] = {key: tuple(value.split()) for key, value in _GIVEN.items()}
COHORT_START_YEARS = (1960, 1980, 2000)

# Names of peoples who do not use a Chinese surname, written as Chinese documents write them.
FULL_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("uyghur", "male"): ("艾力·买买提", "买买提江·吐尔逊", "阿不都热合曼·艾则孜", "艾尔肯·阿不都拉", "吐尔逊·卡德尔",
                         "努尔兰·艾山", "亚森·吾斯曼", "阿里木江·热西提", "麦麦提·依明", "艾克拜尔·买买提"),
    ("uyghur", "female"): ("阿依古丽·吐尔逊", "古丽娜尔·艾力", "热依拉·买买提", "帕提古丽·阿不都拉", "迪丽努尔·艾山",
                           "玛依拉·卡德尔", "努尔古丽·亚森", "阿依努尔·热西提", "米日古丽·依明", "祖丽皮亚·吾斯曼"),
    ("tibetan", "male"): ("扎西", "扎西顿珠", "次仁", "次仁多吉", "格桑", "格桑多吉", "洛桑", "平措", "丹增", "旺堆", "尼玛", "边巴"),
    ("tibetan", "female"): ("卓玛", "次仁卓玛", "央金", "拉姆", "德吉", "措姆", "白玛", "格桑梅朵", "达娃", "曲珍", "普布卓玛"),
    ("mongolian", "male"): ("巴特尔", "额尔敦", "苏和", "巴雅尔", "朝鲁", "宝音", "孟和", "阿拉坦", "毕力格", "那顺"),
    ("mongolian", "female"): ("其其格", "乌云", "斯琴", "萨仁", "娜仁", "高娃", "托娅", "塔娜", "琪琪格", "斯琴高娃"),
}  # fmt: skip

# --- Where patients live ----------------------------------------------------------------------


class Region(NamedTuple):
    code: str  # GB/T 2260 district code, also the first six digits of a resident's national ID
    province: str
    city: str
    district: str
    postal_code: str
    weight: float
    streets: tuple[str, ...] = ()
    area_code: str = ""  # landline area code, only for the home city
    ethnicities: tuple[tuple[str, float, str], ...] = ()  # (ethnicity, weight, naming style)


_GZ = ("广东省", "广州市")
REGIONS: tuple[Region, ...] = (
    Region("440103", *_GZ, "荔湾区", "510140", 6, ("中山七路", "龙津西路", "芳村大道中", "花地大道南", "黄沙大道"), "20"),
    Region("440104", *_GZ, "越秀区", "510030", 9, ("中山五路", "东风东路", "环市东路", "北京路", "解放北路", "农林下路"), "20"),
    Region("440105", *_GZ, "海珠区", "510220", 9, ("江南大道中", "新港中路", "工业大道中", "昌岗中路", "宝岗大道"), "20"),
    Region("440106", *_GZ, "天河区", "510630", 10, ("天河路", "体育西路", "天河北路", "黄埔大道西", "中山大道西", "华夏路"), "20"),
    Region("440111", *_GZ, "白云区", "510440", 9, ("白云大道北", "机场路", "广州大道北", "同和路", "云城东路"), "20"),
    Region("440112", *_GZ, "黄埔区", "510700", 4, ("黄埔东路", "开创大道", "科学大道", "香雪大道"), "20"),
    Region("440113", *_GZ, "番禺区", "511400", 7, ("番禺大道北", "大北路", "兴业大道", "迎宾路", "大学城外环西路"), "20"),
    Region("440114", *_GZ, "花都区", "510800", 3, ("新华路", "迎宾大道", "凤凰北路"), "20"),
    Region("440115", *_GZ, "南沙区", "511458", 2, ("进港大道", "凤凰大道", "环市大道中"), "20"),
    Region("440117", *_GZ, "从化区", "510900", 2, ("河滨北路", "河滨南路", "新城东路"), "20"),
    Region("440118", *_GZ, "增城区", "511300", 3, ("荔城大道", "府佑路", "增城大道"), "20"),
    Region("440304", "广东省", "深圳市", "福田区", "518000", 3),
    Region("440604", "广东省", "佛山市", "禅城区", "528000", 3),
    Region("440605", "广东省", "佛山市", "南海区", "528200", 3),
    Region("440402", "广东省", "珠海市", "香洲区", "519000", 1.5),
    Region("440703", "广东省", "江门市", "蓬江区", "529000", 1),
    Region("441802", "广东省", "清远市", "清城区", "511500", 1.5),
    Region("441202", "广东省", "肇庆市", "端州区", "526000", 1),
    Region("440802", "广东省", "湛江市", "赤坎区", "524000", 1),
    Region("440511", "广东省", "汕头市", "金平区", "515000", 1),
    Region("441402", "广东省", "梅州市", "梅江区", "514000", 1),
    Region("110101", "北京市", "北京市", "东城区", "100010", 0.8),
    Region("110108", "北京市", "北京市", "海淀区", "100080", 0.8),
    Region("310115", "上海市", "上海市", "浦东新区", "200120", 1),
    Region("430104", "湖南省", "长沙市", "岳麓区", "410006", 2, ethnicities=(("汉族", 94, "han"), ("土家族", 4, "han"), ("苗族", 2, "han"))),
    Region("450103", "广西壮族自治区", "南宁市", "青秀区", "530022", 2, ethnicities=(("汉族", 58, "han"), ("壮族", 40, "zhuang"), ("瑶族", 2, "han"))),
    Region("450302", "广西壮族自治区", "桂林市", "秀峰区", "541001", 1, ethnicities=(("汉族", 85, "han"), ("壮族", 10, "zhuang"), ("瑶族", 5, "han"))),
    Region("360102", "江西省", "南昌市", "东湖区", "330006", 1),
    Region("350203", "福建省", "厦门市", "思明区", "361001", 1),
    Region("420106", "湖北省", "武汉市", "武昌区", "430061", 1.5),
    Region("510104", "四川省", "成都市", "锦江区", "610021", 1),
    Region("410105", "河南省", "郑州市", "金水区", "450003", 1, ethnicities=(("汉族", 97, "han"), ("回族", 3, "hui"))),
    Region("460106", "海南省", "海口市", "龙华区", "570105", 1, ethnicities=(("汉族", 95, "han"), ("黎族", 5, "han"))),
    Region("330106", "浙江省", "杭州市", "西湖区", "310013", 0.5),
    Region("520102", "贵州省", "贵阳市", "南明区", "550001", 0.5, ethnicities=(("汉族", 80, "han"), ("苗族", 12, "han"), ("布依族", 8, "han"))),
    Region("530102", "云南省", "昆明市", "五华区", "650032", 0.5, ethnicities=(("汉族", 82, "han"), ("彝族", 10, "han"), ("白族", 8, "han"))),
    Region("650102", "新疆维吾尔自治区", "乌鲁木齐市", "天山区", "830002", 0.4, ethnicities=(("维吾尔族", 60, "uyghur"), ("汉族", 30, "han"), ("回族", 10, "hui"))),
    Region("540102", "西藏自治区", "拉萨市", "城关区", "850000", 0.2, ethnicities=(("藏族", 80, "tibetan"), ("汉族", 20, "han"))),
    Region("150102", "内蒙古自治区", "呼和浩特市", "新城区", "010050", 0.3, ethnicities=(("汉族", 55, "han"), ("蒙古族", 35, "mongolian"), ("满族", 10, "manchu"))),
    Region("222401", "吉林省", "延边朝鲜族自治州", "延吉市", "133000", 0.3, ethnicities=(("朝鲜族", 50, "korean"), ("汉族", 50, "han"))),
)  # fmt: skip

# People living anywhere without a listed mix: mostly Han, with the minorities Guangzhou has.
DEFAULT_ETHNICITIES: tuple[tuple[str, float, str], ...] = (
    ("汉族", 985, "han"), ("壮族", 4, "zhuang"), ("回族", 3, "hui"), ("满族", 3, "manchu"),
    ("土家族", 2, "han"), ("瑶族", 2, "han"), ("苗族", 1, "han"),
)  # fmt: skip
STREETS = (
    "人民路",
    "解放路",
    "建设路",
    "中山路",
    "胜利路",
    "文化路",
    "和平路",
    "新华路",
    "民主路",
    "青年路",
    "建国路",
    "朝阳路",
)
COMMUNITIES = ("丽江花园", "祈福新邨", "碧桂园", "锦绣花园", "金碧花园", "华景新城", "骏景花园", "名雅苑", "翠湖苑",
               "东湖新村", "南国花园", "怡景花园", "星河湾", "保利花园", "逸景翠园", "芳村花园", "幸福里", "天宝小区")  # fmt: skip

# Real mobile prefixes (China Mobile, Unicom, Telecom, virtual operators); 174 is satellite-only.
MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "170", "171", "172", "173", "175", "176", "177", "178", "180", "181",
    "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip
EMAIL_DOMAINS = (
    ("qq.com", 5),
    ("163.com", 3),
    ("126.com", 1),
    ("foxmail.com", 1),
    ("sina.com", 0.5),
    ("gmail.com", 0.3),
)

# --- Social data ------------------------------------------------------------------------------

# (ages, weight) for ages 0-95 in years: a TCM hospital sees more elderly than the population.
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 6, 5), (7, 13, 4), (14, 17, 1.5), (18, 29, 8), (30, 44, 17), (45, 59, 25), (60, 74, 25), (75, 89, 12.5), (90, 95, 2),
)  # fmt: skip


class Occupation(NamedTuple):
    name: str
    employers: str  # key into EMPLOYERS ("" when the job has no employer to record)
    incomes: tuple[float, float, float, float]  # weights of lt3000, 3000_8000, 8000_20000, gt20000


OCCUPATIONS: tuple[tuple[Occupation, float], ...] = (
    (Occupation("公司职员", "company", (1, 6, 4, 1)), 18),
    (Occupation("工程师", "company", (0, 3, 6, 2)), 6),
    (Occupation("教师", "school", (0, 5, 5, 0.5)), 6),
    (Occupation("医务人员", "hospital", (0, 4, 5, 1)), 4),
    (Occupation("公务员", "government", (0, 5, 5, 0.5)), 4),
    (Occupation("工人", "factory", (2, 7, 1, 0)), 10),
    (Occupation("个体经营者", "", (2, 5, 3, 1)), 9),
    (Occupation("销售人员", "company", (1, 6, 3, 1)), 6),
    (Occupation("司机", "transport", (1, 7, 2, 0)), 4),
    (Occupation("会计", "company", (0, 6, 4, 0.5)), 3),
    (Occupation("自由职业", "", (2, 4, 3, 1)), 5),
    (Occupation("农民", "", (6, 3, 0.3, 0)), 4),
    (Occupation("无业", "", (8, 1, 0, 0)), 3),
)
RETIRED = Occupation("离退休人员", "", (2, 6, 2, 0.3))
STUDENT = Occupation("学生", "student", (1, 0, 0, 0))
CHILD = Occupation("学龄前儿童", "", (1, 0, 0, 0))
EMPLOYERS: dict[str, tuple[str, ...]] = {
    "company": ("中国移动通信集团广东有限公司", "中国南方电网有限责任公司", "广州医药集团有限公司", "广州汽车集团股份有限公司",
                "唯品会（中国）有限公司", "网易（广州）计算机系统有限公司", "广州酷狗计算机科技有限公司", "中国南方航空股份有限公司",
                "广州地铁集团有限公司", "越秀地产股份有限公司", "广州银行股份有限公司", "招商银行广州分行", "广州发展集团股份有限公司",
                "广州珠江啤酒股份有限公司", "宝洁（中国）有限公司"),
    "school": ("广州市第一中学", "广州市执信中学", "广州市天河区第一实验小学", "华南师范大学附属中学", "广州市越秀区东风西路小学",
               "中山大学", "华南理工大学", "广州中医药大学"),
    "hospital": ("广州市第一人民医院", "中山大学附属第一医院", "广东省人民医院", "广州市妇女儿童医疗中心", "天河区石牌街社区卫生服务中心"),
    "government": ("广州市天河区人民政府", "广州市越秀区人民政府", "广州市税务局", "广州市公安局", "广东省卫生健康委员会"),
    "factory": ("广州本田汽车有限公司", "美的集团股份有限公司", "广州立白企业集团有限公司", "广州海鸥住宅工业股份有限公司", "格力电器（广州）有限公司"),
    "transport": ("广州市第一巴士有限公司", "广州交通集团出租汽车有限公司", "顺丰速运有限公司", "广州白云国际机场股份有限公司"),
    "student": ("广州市第六中学", "广州市天河中学", "华南理工大学", "暨南大学", "广州大学", "广东工业大学"),
}  # fmt: skip
INCOME_BANDS = ("lt3000", "3000_8000", "8000_20000", "gt20000")
SOURCES = (
    ("walk_in", 45),
    ("his_import", 35),
    ("online", 8),
    ("referral", 6),
    ("campaign", 3),
    ("inquiry", 2),
    ("fhir_import", 1),
)
FAMILY_NOTES = ("独居，子女在外地工作", "与配偶同住", "与子女同住，老伴已故", "家中有高龄老人需照护", "育有一子一女",
                "二孩家庭，两个孩子均在本院儿科就诊", "夫妻双方均为本院患者", "由保姆照护起居")  # fmt: skip

# Encounters per patient and their weights: averages about 2.5.
ENCOUNTER_COUNTS = (
    (1, 40),
    (2, 25),
    (3, 13),
    (4, 9),
    (5, 5),
    (6, 2),
    (7, 2),
    (8, 1),
    (9, 1),
    (10, 1),
    (11, 0.6),
    (12, 0.4),
)
ENCOUNTER_KINDS = (("outpatient", 80), ("emergency", 8), ("inpatient", 10), ("physical_exam", 2))
# Children are seen in these departments only; adults never in paediatrics.
CHILD_DEPARTMENTS = frozenset({"EK", "TN", "PF", "ZJ", "GS"})
PROCEDURE_DEPARTMENTS = frozenset({"ZJ", "TN", "KF"})

DURATIONS = {
    "acute": ("1天", "2天", "3天", "4天", "5天", "1周"),
    "subacute": ("3天", "1周", "2周", "半月", "1月", "2月"),
    "chronic": ("3月", "半年", "1年", "2年", "3年", "5年", "10余年"),
    "injury": ("2小时", "3小时", "半天", "1天"),
    "pregnancy": ("7周", "8周", "9周", "10周"),
    "postpartum": ("1周", "2周", "1月"),
    "infertility": ("1年", "2年", "3年"),
}

# --- Clinical reference data ---------------------------------------------------------------

_HERB = re.compile(r"^(?P<name>\S+?)(?P<dose>\d+(?:\.\d+)?)(?P<unit>g|枚|片)?(?P<note>先煎|后下|包煎|烊化|另煎|冲服)?$")


def _herbs(text: str) -> tuple[dict, ...]:
    """`"天麻9 钩藤12后下 大枣4枚"` → herb dicts in the shape MedicationOrder.herbs stores."""
    herbs = []
    for item in text.split():
        match = _HERB.match(item)
        if match is None:
            raise ValueError(f"unreadable herb {item!r}")
        dose = float(match["dose"])
        herb = {"name": match["name"], "dose": int(dose) if dose.is_integer() else dose, "unit": match["unit"] or "g"}
        if match["note"]:
            herb["note"] = match["note"]
        herbs.append(herb)
    return tuple(herbs)


def _child_dose(herb: dict) -> dict:
    # Children under 14 take about half the adult dose, rounded to half a gram; counted items stay whole.
    dose = max(1, round(herb["dose"] / 2)) if herb["unit"] != "g" else max(1.0, round(herb["dose"]) / 2)
    return {**herb, "dose": int(dose) if float(dose).is_integer() else dose}


class Formula(NamedTuple):
    name: str
    herbs: list[dict]
    child_herbs: list[dict]


_FORMULAS = {
    "天麻钩藤饮": "天麻9 钩藤12后下 石决明18先煎 栀子9 黄芩9 川牛膝12 杜仲9 益母草9 桑寄生9 首乌藤9 茯神9",
    "半夏白术天麻汤": "法半夏9 天麻9 茯苓9 橘红6 白术15 甘草3 生姜3片 大枣2枚",
    "补中益气汤": "黄芪18 党参9 白术9 炙甘草9 当归3 陈皮6 升麻6 柴胡6",
    "逍遥散": "柴胡9 当归9 白芍9 白术9 茯苓9 炙甘草5 薄荷3后下 生姜3片",
    "归脾汤": "白术9 当归9 茯神9 黄芪12 龙眼肉12 远志6 酸枣仁12 木香6后下 炙甘草3 党参9 生姜3片 大枣3枚",
    "血府逐瘀汤": "桃仁12 红花9 当归9 生地黄9 川芎5 赤芍6 牛膝9 桔梗5 柴胡3 枳壳6 甘草3",
    "二陈汤": "法半夏9 陈皮9 茯苓12 炙甘草6 生姜3片 乌梅3",
    "小柴胡汤": "柴胡12 黄芩9 党参9 法半夏9 炙甘草6 生姜9 大枣4枚",
    "香砂六君子汤": "党参12 白术9 茯苓12 炙甘草6 陈皮6 法半夏9 木香6后下 砂仁6后下",
    "半夏泻心汤": "法半夏12 黄芩9 干姜9 党参9 炙甘草9 黄连3 大枣4枚",
    "柴胡疏肝散": "柴胡6 陈皮6 川芎5 香附5 枳壳5 白芍5 炙甘草3",
    "黄芪建中汤": "黄芪15 桂枝9 白芍18 炙甘草6 生姜9 大枣4枚 饴糖30烊化",
    "酸枣仁汤": "酸枣仁15 甘草3 知母6 茯苓6 川芎6",
    "温胆汤": "法半夏6 竹茹6 枳实6 陈皮9 炙甘草3 茯苓5 生姜3片 大枣1枚",
    "柴胡加龙骨牡蛎汤": "柴胡12 龙骨15先煎 牡蛎15先煎 黄芩9 党参9 桂枝9 茯苓9 法半夏9 大黄6后下 生姜9 大枣6枚",
    "独活寄生汤": "独活9 桑寄生6 杜仲6 牛膝6 细辛3 秦艽6 茯苓6 肉桂3后下 防风6 川芎6 党参6 甘草6 当归6 白芍6 生地黄6",
    "葛根汤": "葛根12 麻黄9先煎 桂枝6 生姜9 炙甘草6 白芍6 大枣4枚",
    "羌活胜湿汤": "羌活6 独活6 藁本3 防风3 炙甘草3 川芎3 蔓荆子2",
    "黄芪桂枝五物汤": "黄芪15 白芍9 桂枝9 生姜18 大枣4枚",
    "身痛逐瘀汤": "秦艽3 川芎6 桃仁9 红花9 甘草6 羌活3 没药6 当归9 五灵脂6包煎 香附3 牛膝9 地龙6",
    "复元活血汤": "柴胡15 天花粉9 当归9 红花6 甘草6 酒大黄9 桃仁9",
    "甘姜苓术汤": "甘草6 干姜12 茯苓12 白术6",
    "蠲痹汤": "羌活9 独活9 肉桂3后下 秦艽9 当归9 川芎6 炙甘草3 海风藤9 桑枝9 乳香6 木香6后下",
    "桃红四物汤": "桃仁9 红花6 当归9 川芎6 白芍9 熟地黄12",
    "桑菊饮": "桑叶8 菊花3 苦杏仁6 连翘5 薄荷3后下 桔梗6 甘草3 芦根6",
    "银翘散": "连翘15 金银花15 桔梗6 薄荷6后下 淡竹叶4 甘草5 荆芥穗4 淡豆豉5 牛蒡子6 芦根15",
    "荆防败毒散": "荆芥6 防风6 羌活6 独活6 柴胡6 前胡6 川芎6 枳壳6 茯苓6 桔梗6 甘草3",
    "新加香薷饮": "香薷6 金银花9 扁豆花9 厚朴6 连翘6",
    "止嗽散": "桔梗9 荆芥9 紫菀9 百部9 白前9 甘草3 陈皮6",
    "清金化痰汤": "黄芩12 栀子12 知母15 桑白皮15 瓜蒌子15 浙贝母9 麦冬9 橘红9 茯苓9 桔梗9 甘草3",
    "麻杏石甘汤": "麻黄9先煎 苦杏仁9 石膏18先煎 炙甘草6",
    "苏子降气汤": "紫苏子9 法半夏9 当归6 炙甘草6 前胡6 厚朴6 肉桂3后下",
    "小青龙汤": "麻黄9先煎 白芍9 细辛3 干姜6 炙甘草6 桂枝9 五味子6 法半夏9",
    "定喘汤": "白果9 麻黄9先煎 紫苏子6 甘草3 款冬花9 苦杏仁9 桑白皮9 黄芩6 法半夏9",
    "玉屏风散": "黄芪18 白术12 防风6",
    "苍耳子散": "苍耳子9 辛夷9包煎 白芷9 薄荷6后下",
    "痛泻要方": "白术9 白芍6 陈皮5 防风6",
    "参苓白术散": "党参15 白术12 茯苓15 山药15 白扁豆12 莲子9 薏苡仁15 砂仁6后下 桔梗6 炙甘草6",
    "增液汤": "玄参30 麦冬24 生地黄24",
    "葛根芩连汤": "葛根15 黄芩9 黄连6 炙甘草6",
    "宣痹汤": "防己15 苦杏仁15 滑石15包煎 连翘9 栀子9 薏苡仁15 法半夏9 蚕沙9包煎 赤小豆9",
    "补阳还五汤": "黄芪60 当归6 赤芍5 地龙3 川芎3 红花3 桃仁3",
    "地黄饮子": "熟地黄12 巴戟天9 山茱萸9 石斛9 肉苁蓉9 附子6先煎 五味子6 肉桂3后下 茯苓9 麦冬9 石菖蒲6 远志6",
    "牵正散": "白附子6 僵蚕9 全蝎3",
    "瓜蒌薤白半夏汤": "瓜蒌12 薤白9 法半夏12",
    "生脉散": "党参9 麦冬9 五味子6",
    "炙甘草汤": "炙甘草12 生姜9 桂枝9 党参6 生地黄30 阿胶6烊化 麦冬10 火麻仁10 大枣10枚",
    "真武汤": "茯苓9 白芍9 生姜9 附子9先煎 白术6",
    "玉女煎": "石膏15先煎 熟地黄15 麦冬6 知母5 牛膝5",
    "川芎茶调散": "川芎12 荆芥12 白芷6 羌活6 甘草6 细辛3 防风5 薄荷12后下",
    "少腹逐瘀汤": "小茴香3 干姜3 延胡索6 没药6 当归9 川芎6 肉桂3后下 赤芍6 蒲黄9包煎 五灵脂6包煎",
    "温经汤": "吴茱萸9 当归6 白芍6 川芎6 党参6 桂枝6 阿胶6烊化 牡丹皮6 生姜6 甘草6 法半夏6 麦冬9",
    "定经汤": "菟丝子15 白芍15 当归15 熟地黄9 山药9 茯苓9 荆芥穗6 柴胡6",
    "二仙汤": "仙茅9 淫羊藿9 巴戟天9 当归9 黄柏6 知母6",
    "甘麦大枣汤": "甘草9 浮小麦15 大枣10枚",
    "毓麟珠": "党参6 白术9 茯苓9 白芍9 川芎6 炙甘草3 当归9 熟地黄12 菟丝子12 杜仲9 鹿角霜9 花椒3",
    "开郁种玉汤": "白芍15 香附9 当归15 白术15 牡丹皮9 茯苓9 天花粉6",
    "苏叶黄连汤": "紫苏叶3 黄连3",
    "下乳涌泉散": "当归9 白芍9 川芎6 生地黄9 柴胡6 青皮6 天花粉9 漏芦9 通草6 桔梗6 白芷6 王不留行9 甘草3",
    "消风散": "当归6 生地黄6 防风6 蝉蜕6 知母6 苦参6 胡麻仁6 荆芥6 苍术6 牛蒡子6 石膏6先煎 甘草3 木通3",
    "当归饮子": "当归9 白芍9 川芎6 生地黄12 白蒺藜9 防风6 荆芥穗6 制何首乌9 黄芪12 甘草3",
    "龙胆泻肝汤": "龙胆6 黄芩9 栀子9 泽泻12 木通6 车前子9包煎 当归3 生地黄9 柴胡6 甘草6",
    "除湿胃苓汤": "苍术9 厚朴9 陈皮9 猪苓9 泽泻9 茯苓9 白术9 滑石9包煎 防风6 栀子6 木通3 肉桂3后下 甘草3",
    "桂枝汤": "桂枝9 白芍9 生姜9 大枣3枚 炙甘草6",
    "枇杷清肺饮": "枇杷叶9 桑白皮9 黄连3 黄柏6 党参3 甘草3",
    "茵陈蒿汤": "茵陈18 栀子9 大黄6后下",
    "保和汤": "山楂9 六神曲9 法半夏6 茯苓9 陈皮6 连翘6 莱菔子6",
    "异功散": "党参9 白术9 茯苓9 炙甘草3 陈皮6",
}
FORMULAS: dict[str, Formula] = {
    name: Formula(name, list(_herbs(text)), [_child_dose(herb) for herb in _herbs(text)])
    for name, text in _FORMULAS.items()
}
DECOCTION_INSTRUCTIONS = "每日1剂，水煎400ml，分早晚两次温服"
CHILD_DECOCTION_INSTRUCTIONS = "每日1剂，水煎200ml，分3-4次温服"
GRANULE_INSTRUCTIONS = "每日1剂，开水冲服，分早晚两次温服"


class Drug(NamedTuple):
    name: str
    kind: str  # "patent" or "western"
    code: str  # ATC for western drugs where one applies
    dose: str
    route: str
    frequency: str
    audience: str = "any"  # "adult", "child" or "any"


def _drugs(kind: str, rows: str) -> dict[str, Drug]:
    drugs = {}
    for line in rows.strip().splitlines():
        name, code, dose, route, frequency, *audience = line.split("|")
        drugs[name] = Drug(name, kind, code, dose, route, frequency, *audience)
    return drugs


PATENTS = _drugs(
    "patent",
    """
六味地黄丸||8丸|口服|tid|adult
杞菊地黄丸||8丸|口服|tid|adult
知柏地黄丸||8丸|口服|tid|adult
金匮肾气丸||8丸|口服|bid|adult
天王补心丹||8丸|口服|tid|adult
归脾丸||8丸|口服|tid|adult
逍遥丸||8丸|口服|tid|adult
补中益气丸||8丸|口服|tid|adult
左归丸||9g|口服|bid|adult
四妙丸||6g|口服|bid|adult
麻仁丸||6g|口服|bid|adult
四神丸||9g|口服|bid|adult
左金丸||3g|口服|bid|adult
保和丸||6g|口服|bid
香砂养胃丸||8丸|口服|tid|adult
天麻钩藤颗粒||1袋|冲服|tid|adult
松龄血脉康胶囊||3粒|口服|tid|adult
参芪降糖颗粒||1袋|冲服|tid|adult
津力达颗粒||1袋|冲服|tid|adult
血脂康胶囊||2粒|口服|bid|adult
复方丹参滴丸||10丸|口服|tid|adult
通心络胶囊||3粒|口服|tid|adult
麝香保心丸||2丸|口服|tid|adult
稳心颗粒||1袋|冲服|tid|adult
参松养心胶囊||3粒|口服|tid|adult
芪苈强心胶囊||4粒|口服|tid|adult
百乐眠胶囊||4粒|口服|bid|adult
乌灵胶囊||3粒|口服|tid|adult
正天丸||6g|口服|tid|adult
养血清脑颗粒||1袋|冲服|tid|adult
眩晕宁颗粒||1袋|冲服|tid|adult
连花清瘟胶囊||4粒|口服|tid|adult
感冒清热颗粒||1袋|冲服|bid|adult
小儿豉翘清热颗粒||1袋|冲服|tid|child
藿香正气水||10ml|口服|bid|adult
蒲地蓝消炎口服液||10ml|口服|tid
急支糖浆||20ml|口服|tid|adult
苏黄止咳胶囊||3粒|口服|tid|adult
小儿消积止咳口服液||10ml|口服|tid|child
小儿肺热咳喘口服液||10ml|口服|tid|child
玉屏风颗粒||1袋|冲服|tid
辛芩颗粒||1袋|冲服|tid|adult
胃苏颗粒||1袋|冲服|tid|adult
气滞胃痛颗粒||1袋|冲服|tid|adult
参苓白术颗粒||1袋|冲服|tid
芪蓉润肠口服液||20ml|口服|tid|adult
保济丸||1瓶|口服|tid
脑心通胶囊||3粒|口服|tid|adult
华佗再造丸||8g|口服|bid|adult
颈复康颗粒||1袋|冲服|bid|adult
颈舒颗粒||1袋|冲服|tid|adult
腰痹通胶囊||3粒|口服|tid|adult
仙灵骨葆胶囊||3粒|口服|bid|adult
骨疏康颗粒||1袋|冲服|bid|adult
壮腰健肾丸||1丸|口服|bid|adult
云南白药胶囊||2粒|口服|qid|adult
活血止痛胶囊||3粒|口服|tid|adult
伤科接骨片||4片|口服|tid|adult
舒筋活血片||5片|口服|tid|adult
元胡止痛片||4片|口服|tid|adult
益母草颗粒||1袋|冲服|bid|adult
桂枝茯苓丸||1丸|口服|bid|adult
少腹逐瘀颗粒||1袋|冲服|tid|adult
乌鸡白凤丸||1丸|口服|bid|adult
定坤丹||1丸|口服|bid|adult
坤宝丸||50粒|口服|bid|adult
更年安片||6片|口服|tid|adult
滋肾育胎丸||5g|口服|tid|adult
通乳颗粒||1袋|冲服|tid|adult
润燥止痒胶囊||4粒|口服|tid|adult
湿毒清胶囊||3粒|口服|tid|adult
皮肤病血毒丸||20粒|口服|bid|adult
防风通圣丸||6g|口服|bid|adult
龙胆泻肝丸||6g|口服|bid|adult
当归苦参丸||1丸|口服|bid|adult
金花消痤丸||4g|口服|tid|adult
健胃消食片||3片|嚼服|tid|child
健儿消食口服液||10ml|口服|bid|child
""",
)
WESTERN = _drugs(
    "western",
    """
氨氯地平片|C08CA01|5mg|口服|qd|adult
硝苯地平控释片|C08CA05|30mg|口服|qd|adult
缬沙坦胶囊|C09CA03|80mg|口服|qd|adult
厄贝沙坦片|C09CA04|150mg|口服|qd|adult
美托洛尔缓释片|C07AB02|47.5mg|口服|qd|adult
阿托伐他汀钙片|C10AA05|20mg|口服|qn|adult
瑞舒伐他汀钙片|C10AA07|10mg|口服|qn|adult
阿司匹林肠溶片|B01AC06|100mg|口服|qd|adult
氯吡格雷片|B01AC04|75mg|口服|qd|adult
单硝酸异山梨酯缓释片|C01DA14|40mg|口服|qd|adult
呋塞米片|C03CA01|20mg|口服|qd|adult
螺内酯片|C03DA01|20mg|口服|qd|adult
沙库巴曲缬沙坦钠片|C09DX04|50mg|口服|bid|adult
二甲双胍片|A10BA02|0.5g|口服|tid|adult
阿卡波糖片|A10BF01|50mg|口服|tid|adult
格列美脲片|A10BB12|2mg|口服|qd|adult
达格列净片|A10BK01|10mg|口服|qd|adult
奥美拉唑肠溶胶囊|A02BC01|20mg|口服|bid|adult
雷贝拉唑钠肠溶片|A02BC04|10mg|口服|qd|adult
铝碳酸镁咀嚼片|A02AD04|1g|嚼服|tid|adult
莫沙必利片|A03FA|5mg|口服|tid|adult
匹维溴铵片|A03AX04|50mg|口服|tid|adult
乳果糖口服溶液|A06AD11|15ml|口服|qd|adult
蒙脱石散|A07BC05|3g|口服|tid
口服补液盐散|A07CA|1袋|口服|prn
布洛芬缓释胶囊|M01AE01|0.3g|口服|bid|adult
布洛芬混悬液|M01AE01|5ml|口服|prn|child
对乙酰氨基酚片|N02BE01|0.5g|口服|prn|adult
塞来昔布胶囊|M01AH01|200mg|口服|qd|adult
双氯芬酸钠缓释片|M01AB05|75mg|口服|qd|adult
乙哌立松片|M03BX09|50mg|口服|tid|adult
甲钴胺片|B03BA05|0.5mg|口服|tid|adult
硫酸氨基葡萄糖胶囊|M01AX05|0.5g|口服|tid|adult
碳酸钙D3片|A12AX|600mg|口服|qd|adult
阿仑膦酸钠片|M05BA04|70mg|口服|qw|adult
骨化三醇软胶囊|A11CC04|0.25μg|口服|qd|adult
秋水仙碱片|M04AC01|0.5mg|口服|bid|adult
非布司他片|M04AA03|40mg|口服|qd|adult
艾司唑仑片|N05CD04|1mg|口服|qn|adult
右佐匹克隆片|N05CF04|3mg|口服|qn|adult
甲磺酸倍他司汀片|N07CA01|6mg|口服|tid|adult
丁苯酞软胶囊||0.2g|口服|tid|adult
泼尼松片|H02AB07|30mg|口服|qd|adult
普瑞巴林胶囊|N03AX16|75mg|口服|bid|adult
伐昔洛韦片|J05AB11|0.3g|口服|bid|adult
氯雷他定片|R06AX13|10mg|口服|qd
西替利嗪片|R06AE07|10mg|口服|qd|adult
阿莫西林胶囊|J01CA04|0.5g|口服|tid|adult
头孢呋辛酯片|J01DC02|0.25g|口服|bid|adult
头孢克洛颗粒|J01DC04|0.125g|口服|tid|child
左氧氟沙星片|J01MA12|0.5g|口服|qd|adult
多西环素片|J01AA02|0.1g|口服|bid|adult
氨溴索片|R05CB06|30mg|口服|tid|adult
孟鲁司特钠片|R03DC03|10mg|口服|qn
布地奈德福莫特罗吸入粉雾剂|R03AK07|1吸|吸入|bid
噻托溴铵吸入粉雾剂|R03BB04|18μg|吸入|qd|adult
布地奈德鼻喷雾剂|R01AD05|2喷|喷鼻|qd
维生素B6片|A11HA02|10mg|口服|tid|adult
丁酸氢化可的松乳膏|D07AB02|适量|外用|bid
糠酸莫米松乳膏|D07AC13|适量|外用|qd
地奈德乳膏|D07AB08|适量|外用|bid
炉甘石洗剂|D04AX|适量|外用|tid
阿达帕林凝胶|D10AD03|适量|外用|qn|adult
双氯芬酸二乙胺乳胶剂|M02AA15|适量|外用|tid|adult
""",
)


class Technique(NamedTuple):
    name: str
    system: str  # ProcedureSystem
    code: str
    price: int  # yuan per session
    departments: frozenset[str]


_ALL = frozenset({"NK", "ZJ", "TN", "GS", "FK", "EK", "PF", "ZWB", "PW", "XXG", "FB", "KF"})
TECHNIQUES: dict[str, Technique] = {
    t.name: t
    for t in (
        Technique("针刺", "tcm_technique", "ZL-ZC", 45, frozenset({"ZJ", "KF", "NK", "FK", "PF"})),
        Technique("电针", "tcm_technique", "ZL-DZ", 60, frozenset({"ZJ", "KF"})),
        Technique("温针灸", "tcm_technique", "ZL-WZJ", 70, frozenset({"ZJ"})),
        Technique("艾灸", "tcm_technique", "ZL-AJ", 35, frozenset({"ZJ", "FK", "ZWB", "KF"})),
        Technique("拔罐", "tcm_technique", "ZL-BG", 30, frozenset({"ZJ", "TN", "PF"})),
        Technique("刮痧", "tcm_technique", "ZL-GS", 40, frozenset({"TN", "ZJ"})),
        Technique("推拿", "tcm_technique", "ZL-TN", 80, frozenset({"TN", "KF"})),
        Technique("小儿推拿", "tcm_technique", "ZL-XETN", 60, frozenset({"TN", "EK"})),
        Technique("捏脊", "tcm_technique", "ZL-NJ", 30, frozenset({"TN", "EK"})),
        Technique("穴位贴敷", "tcm_technique", "ZL-XWTF", 50, _ALL),
        Technique("中药熏蒸", "tcm_technique", "ZL-ZYXZ", 90, frozenset({"TN", "GS", "KF", "PF"})),
        Technique("耳穴压豆", "tcm_technique", "ZL-EXYD", 25, frozenset({"ZJ", "NK", "PF", "ZWB"})),
        Technique("穴位注射", "tcm_technique", "ZL-XWZS", 55, frozenset({"ZJ"})),
        Technique("小针刀", "tcm_technique", "ZL-XZD", 180, frozenset({"ZJ", "GS"})),
        Technique("手法整复", "tcm_technique", "ZL-SFZF", 260, frozenset({"GS"})),
        Technique("中频脉冲电治疗", "local", "KF-ZP", 40, frozenset({"KF"})),
        Technique("运动疗法", "local", "KF-YD", 80, frozenset({"KF"})),
    )
}
# What a department does when the condition names no technique it performs.
DEFAULT_TECHNIQUES = {"ZJ": ("针刺",), "TN": ("推拿",), "KF": ("运动疗法", "针刺")}


class Surgery(NamedTuple):
    name: str
    code: str  # ICD-9-CM-3
    price: int


SURGERIES: dict[str, Surgery] = {
    s.name: s
    for s in (
        Surgery("腰椎间盘髓核摘除术", "80.51", 18000),
        Surgery("经皮椎间孔镜下髓核摘除术", "80.51", 22000),
        Surgery("桡骨远端骨折切开复位内固定术", "79.32", 12000),
        Surgery("人工股骨头置换术", "81.52", 32000),
        Surgery("全髋关节置换术", "81.51", 45000),
        Surgery("股骨颈骨折闭合复位内固定术", "79.15", 16000),
        Surgery("全膝关节置换术", "81.54", 42000),
        Surgery("膝关节镜下清理术", "80.86", 9000),
    )
}


class LabTest(NamedTuple):
    code: str  # LOINC
    name: str
    unit: str
    decimals: int
    male: tuple[float | None, float]  # reference range; None: no lower limit
    female: tuple[float | None, float]
    high: tuple[float, float] = (1.05, 1.6)  # multiples of the upper limit an abnormal value falls in
    low: tuple[float, float] = (0.7, 0.97)


LAB_TESTS: dict[str, LabTest] = {
    "WBC": LabTest("6690-2", "白细胞计数", "10^9/L", 2, (3.5, 9.5), (3.5, 9.5), (1.05, 2.0)),
    "RBC": LabTest("789-8", "红细胞计数", "10^12/L", 2, (4.3, 5.8), (3.8, 5.1)),
    "HGB": LabTest("718-7", "血红蛋白", "g/L", 0, (130, 175), (115, 150), (1.02, 1.1), (0.6, 0.97)),
    "PLT": LabTest("777-3", "血小板计数", "10^9/L", 0, (125, 350), (125, 350)),
    "ALT": LabTest("1742-6", "丙氨酸氨基转移酶", "U/L", 0, (9, 50), (7, 40), (1.05, 3.0)),
    "AST": LabTest("1920-8", "天门冬氨酸氨基转移酶", "U/L", 0, (15, 40), (13, 35), (1.05, 2.5)),
    "CR": LabTest("14682-9", "肌酐", "μmol/L", 0, (57, 111), (41, 81), (1.05, 2.0)),
    "BUN": LabTest("14937-7", "尿素氮", "mmol/L", 2, (2.9, 8.2), (2.9, 8.2), (1.05, 1.8)),
    "UA": LabTest("14933-6", "尿酸", "μmol/L", 0, (208, 428), (155, 357), (1.05, 1.5)),
    "GLU": LabTest("14771-0", "空腹血糖", "mmol/L", 2, (3.9, 6.1), (3.9, 6.1), (1.1, 2.6), (0.8, 0.97)),
    "HBA1C": LabTest("4548-4", "糖化血红蛋白", "%", 1, (4.0, 6.0), (4.0, 6.0), (1.1, 1.8)),
    "TC": LabTest("14647-2", "总胆固醇", "mmol/L", 2, (None, 5.2), (None, 5.2), (1.03, 1.4)),
    "TG": LabTest("14927-8", "甘油三酯", "mmol/L", 2, (None, 1.7), (None, 1.7), (1.05, 3.0)),
    "LDL": LabTest("22748-8", "低密度脂蛋白胆固醇", "mmol/L", 2, (None, 3.4), (None, 3.4), (1.03, 1.5)),
}


class LabPanel(NamedTuple):
    code: str  # LOINC panel, or the single test's code
    name: str
    tests: tuple[str, ...]
    price: int


LAB_PANELS: dict[str, LabPanel] = {
    "CBC": LabPanel("58410-2", "血常规", ("WBC", "RBC", "HGB", "PLT"), 20),
    "LIVER": LabPanel("24325-3", "肝功能", ("ALT", "AST"), 16),
    "KIDNEY": LabPanel("24362-6", "肾功能", ("CR", "BUN", "UA"), 30),
    "GLUCOSE": LabPanel("14771-0", "血糖", ("GLU",), 8),
    "LIPIDS": LabPanel("57698-3", "血脂", ("TC", "TG", "LDL"), 40),
    "HBA1C": LabPanel("4548-4", "糖化血红蛋白", ("HBA1C",), 60),
}
ADMISSION_PANELS = ("CBC", "LIVER", "KIDNEY")
EXAM_PANELS = ("CBC", "LIVER", "KIDNEY", "GLUCOSE", "LIPIDS")
EXAM_PACKAGES = (380, 680, 1280)
EXAM_PANEL_CHANCE = 0.1  # an outpatient visit with no condition-specific tests still gets a blood count

# --- Histories, allergies ------------------------------------------------------------------

HISTORY_PAST = (
    "既往体健",
    "否认高血压、糖尿病等慢性病史",
    "否认肝炎、结核等传染病史",
    "有慢性胃炎病史多年",
    "有过敏性鼻炎病史",
)
HISTORY_FAMILY = ("父亲有高血压病史", "母亲有2型糖尿病病史", "否认家族遗传病史", "父亲因脑梗死去世", "母亲有冠心病病史",
                  "兄长有痛风病史", "家族中无类似疾病")  # fmt: skip
HISTORY_PERSONAL = ("吸烟20年，每日约10支", "偶有饮酒", "无烟酒嗜好", "长期熬夜", "久坐少动", "饮食偏咸", "已戒烟5年")
HISTORY_SURGICAL = (
    "2012年行阑尾切除术",
    "2015年行胆囊切除术",
    "2019年行左侧腹股沟疝修补术",
    "2010年行甲状腺结节切除术",
)
HISTORY_OBSTETRIC = ("14岁初潮，周期28-30天，经期5-6天，G1P1", "13岁初潮，周期26-32天，经期4-5天，G2P1",
                     "15岁初潮，周期30天，经期5天，G0P0", "14岁初潮，月经规律，G3P2")  # fmt: skip
HISTORY_CAESAREAN = "2018年行剖宫产术"

# (substance, code, reaction, severities, weight, children only)
ALLERGENS: tuple[tuple[str, str, str, tuple[str, ...], float, bool], ...] = (
    ("青霉素", "J01C", "皮疹、瘙痒", ("moderate", "severe"), 10, False),
    ("头孢类抗生素", "J01D", "皮疹", ("mild", "moderate"), 5, False),
    ("磺胺类药物", "J01E", "药疹", ("moderate",), 4, False),
    ("阿司匹林", "N02BA01", "诱发哮喘", ("moderate", "severe"), 2, False),
    ("布洛芬", "M01AE01", "荨麻疹", ("mild",), 1.5, False),
    ("碘造影剂", "V08A", "恶心、皮疹", ("moderate",), 1, False),
    ("海鲜", "", "荨麻疹", ("mild", "moderate"), 6, False),
    ("花粉", "", "鼻塞、喷嚏", ("mild",), 3, False),
    ("尘螨", "", "鼻痒、喘息", ("mild", "moderate"), 3, False),
    ("芒果", "", "口周红斑", ("mild",), 2, False),
    ("牛奶", "", "腹泻、湿疹", ("mild",), 2, True),
    ("鸡蛋", "", "皮疹", ("mild",), 2, True),
    ("乳胶", "", "接触性皮炎", ("mild",), 0.5, False),
)

# --- Conditions ----------------------------------------------------------------------------

SYNDROMES = (
    "肝阳上亢证", "痰湿中阻证", "肝肾阴虚证", "气阴两虚证", "阴虚热盛证", "脾虚湿盛证", "痰浊阻遏证", "心血瘀阻证",
    "气虚血瘀证", "痰浊闭阻证", "心脾两虚证", "痰火扰心证", "阳虚水泛证", "肝郁化火证", "阴虚火旺证", "痰热扰心证",
    "心肾不交证", "瘀血阻络证", "风寒袭络证", "痰浊上扰证", "气血亏虚证", "肾精不足证", "风寒束表证", "风热犯表证",
    "暑湿伤表证", "风寒袭肺证", "风热犯肺证", "痰热壅肺证", "痰湿蕴肺证", "风热闭肺证", "痰热闭肺证", "肺肾气虚证",
    "冷哮证", "热哮证", "肺脾气虚证", "肺气虚寒证", "肾阳不足证", "脾胃虚弱证", "肝胃不和证", "脾胃湿热证",
    "胃阴不足证", "肝胃郁热证", "肝郁脾虚证", "脾肾阳虚证", "肠燥津亏证", "气机郁滞证", "大肠湿热证", "寒湿困脾证",
    "食滞胃肠证", "湿热蕴结证", "痰瘀痹阻证", "风痰阻络证", "痰热腑实证", "肝肾亏虚证", "风热袭络证", "风寒痹阻证",
    "气滞血瘀证", "痰湿阻络证", "寒湿痹阻证", "湿热痹阻证", "肾虚血瘀证", "寒凝血瘀证", "气血虚弱证", "肝郁气滞证",
    "肾气虚证", "脾气虚证", "肾阳虚证", "痰湿阻滞证", "脾虚湿蕴证", "血虚风燥证", "湿热蕴肤证", "湿热浸淫证",
    "肝经郁热证", "肺经风热证", "乳食内积证", "脾虚夹积证", "脾失健运证", "脾胃气虚证",
)  # fmt: skip
# GB/T 15657-style codes, numbered in the order above so they never change between runs.
SYNDROME_CODES = {name: f"ZYV{number:03d}" for number, name in enumerate(SYNDROMES, start=1)}


class Scenario(NamedTuple):
    """A condition as a hospital sees it: where it is treated, how it is coded, what is done for it."""

    icd: tuple[str, str]
    tcm: tuple[str, str] | None
    departments: tuple[tuple[str, float], ...]
    syndromes: tuple[str, ...]
    complaints: tuple[str, ...]
    course: str  # key of DURATIONS
    ages: tuple[float, float, float, float]  # weight for children (<14), 14-39, 40-59, 60 and over
    kinds: tuple[str, ...] = ("outpatient",)
    sex: str = ""
    age_range: tuple[int, int] = (0, 200)
    chronic: bool = False
    formulas: tuple[str, ...] = ()
    patents: tuple[str, ...] = ()
    western: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    site: str = ""
    labs: tuple[str, ...] = ()
    lab_bias: tuple[tuple[str, str, float], ...] = ()  # (test, "H" or "L", chance)
    surgeries: tuple[str, ...] = ()
    surgery_chance: float = 0.0
    history: str = ""  # past-history sentence; {years} is filled in
    tag: str = ""


_OUT_EM = ("outpatient", "emergency")
_OUT_IN = ("outpatient", "inpatient")
_ALL_KINDS = ("outpatient", "emergency", "inpatient")

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(("I10", "原发性高血压"), ("BNG070", "眩晕病"), (("XXG", 6), ("NK", 3)),
             ("肝阳上亢证", "痰湿中阻证", "肝肾阴虚证"), ("头晕{d}", "头晕头痛{d}", "发现血压升高{d}", "头胀痛伴耳鸣{d}"),
             "chronic", (0, 0.4, 3, 6), _ALL_KINDS, chronic=True, formulas=("天麻钩藤饮", "半夏白术天麻汤"),
             patents=("天麻钩藤颗粒", "松龄血脉康胶囊", "杞菊地黄丸"),
             western=("氨氯地平片", "缬沙坦胶囊", "厄贝沙坦片", "美托洛尔缓释片", "硝苯地平控释片"),
             labs=("LIPIDS", "KIDNEY", "GLUCOSE"), lab_bias=(("TC", "H", 0.3), ("TG", "H", 0.3), ("LDL", "H", 0.3)),
             history="高血压病史{years}年，规律服用降压药", tag="高血压"),
    Scenario(("E11.9", "2型糖尿病"), ("BNV060", "消渴病"), (("NK", 6), ("ZWB", 1)),
             ("气阴两虚证", "阴虚热盛证", "脾虚湿盛证"), ("口干多饮{d}", "发现血糖升高{d}", "乏力、口干{d}"),
             "chronic", (0, 0.3, 2.5, 4), _OUT_IN, chronic=True, formulas=("玉女煎", "生脉散"),
             patents=("参芪降糖颗粒", "津力达颗粒", "六味地黄丸"), western=("二甲双胍片", "阿卡波糖片", "格列美脲片", "达格列净片"),
             labs=("GLUCOSE", "HBA1C", "LIPIDS", "KIDNEY"),
             lab_bias=(("GLU", "H", 0.75), ("HBA1C", "H", 0.7), ("TG", "H", 0.3)),
             history="2型糖尿病病史{years}年", tag="糖尿病"),
    Scenario(("E78.5", "高脂血症"), ("BNV070", "血浊病"), (("XXG", 3), ("ZWB", 2)),
             ("痰浊阻遏证", "脾虚湿盛证"), ("体检发现血脂升高{d}", "头昏乏力{d}"),
             "chronic", (0, 0.3, 2, 2.5), chronic=True, formulas=("二陈汤",), patents=("血脂康胶囊",),
             western=("阿托伐他汀钙片", "瑞舒伐他汀钙片"), labs=("LIPIDS", "LIVER"),
             lab_bias=(("TC", "H", 0.7), ("TG", "H", 0.6), ("LDL", "H", 0.6))),
    Scenario(("I25.1", "冠状动脉粥样硬化性心脏病"), ("BNX020", "胸痹心痛病"), (("XXG", 8),),
             ("心血瘀阻证", "气虚血瘀证", "痰浊闭阻证", "气阴两虚证"),
             ("反复胸闷{d}", "胸闷胸痛{d}", "活动后胸闷气短{d}", "心前区闷痛{d}，加重2天"),
             "chronic", (0, 0.05, 1.5, 4), _ALL_KINDS, chronic=True, formulas=("血府逐瘀汤", "瓜蒌薤白半夏汤", "生脉散"),
             patents=("复方丹参滴丸", "通心络胶囊", "麝香保心丸"),
             western=("阿司匹林肠溶片", "阿托伐他汀钙片", "单硝酸异山梨酯缓释片", "氯吡格雷片", "美托洛尔缓释片"),
             labs=("LIPIDS", "CBC", "LIVER", "KIDNEY"), lab_bias=(("LDL", "H", 0.4),), history="冠心病病史{years}年"),
    Scenario(("I49.9", "心律失常"), ("BNX010", "心悸病"), (("XXG", 5),),
             ("心脾两虚证", "气阴两虚证", "心血瘀阻证", "痰火扰心证"), ("心悸{d}", "阵发性心慌{d}", "心悸伴胸闷{d}"),
             "chronic", (0, 0.4, 1.5, 2), chronic=True, formulas=("归脾汤", "生脉散", "炙甘草汤"),
             patents=("稳心颗粒", "参松养心胶囊"), western=("美托洛尔缓释片",), labs=("CBC",)),
    Scenario(("I50.9", "心力衰竭"), ("BNX040", "心衰病"), (("XXG", 2),), ("气虚血瘀证", "阳虚水泛证"),
             ("反复气促、双下肢浮肿{d}", "活动后气喘{d}，加重1周"), "chronic", (0, 0, 0.2, 1.5), _OUT_IN, chronic=True,
             formulas=("真武汤", "生脉散"), patents=("芪苈强心胶囊",), western=("呋塞米片", "螺内酯片", "沙库巴曲缬沙坦钠片"),
             labs=("CBC", "KIDNEY", "LIVER"), lab_bias=(("CR", "H", 0.35), ("BUN", "H", 0.3)), history="慢性心力衰竭病史{years}年"),
    Scenario(("G47.0", "失眠"), ("BNX090", "不寐病"), (("NK", 7), ("ZJ", 2), ("ZWB", 1)),
             ("心脾两虚证", "肝郁化火证", "阴虚火旺证", "痰热扰心证", "心肾不交证"),
             ("失眠{d}", "入睡困难{d}", "眠浅易醒{d}", "失眠多梦{d}，加重1周"), "chronic", (0.05, 1.5, 2.5, 2.5),
             chronic=True, formulas=("归脾汤", "酸枣仁汤", "温胆汤", "柴胡加龙骨牡蛎汤"),
             patents=("天王补心丹", "百乐眠胶囊", "乌灵胶囊", "归脾丸"), western=("右佐匹克隆片", "艾司唑仑片"),
             techniques=("针刺", "耳穴压豆"), site="百会、神门、三阴交、安眠"),
    Scenario(("G43.9", "偏头痛"), ("BNG010", "头痛病"), (("NK", 5), ("ZJ", 4)),
             ("肝阳上亢证", "瘀血阻络证", "风寒袭络证", "痰浊上扰证"), ("反复头痛{d}", "偏侧头痛{d}", "头痛{d}，加重2天"),
             "chronic", (0.1, 2, 2, 1), _OUT_EM, chronic=True, formulas=("川芎茶调散", "天麻钩藤饮", "血府逐瘀汤"),
             patents=("正天丸", "养血清脑颗粒"), western=("布洛芬缓释胶囊", "对乙酰氨基酚片"),
             techniques=("针刺", "电针"), site="风池、太阳、率谷、合谷"),
    Scenario(("R42", "头晕和眩晕"), ("BNG070", "眩晕病"), (("NK", 6), ("ZJ", 1)),
             ("痰湿中阻证", "气血亏虚证", "肝阳上亢证", "肾精不足证"), ("头晕{d}", "眩晕伴恶心{d}", "天旋地转感{d}"),
             "subacute", (0, 1, 2, 3), _OUT_EM, formulas=("半夏白术天麻汤", "归脾汤", "天麻钩藤饮"),
             patents=("眩晕宁颗粒", "天麻钩藤颗粒"), western=("甲磺酸倍他司汀片",), techniques=("针刺",),
             site="百会、风池、内关、足三里", labs=("CBC",), lab_bias=(("HGB", "L", 0.15),)),
    Scenario(("J06.9", "急性上呼吸道感染"), ("BNW010", "感冒病"), (("NK", 5), ("EK", 6), ("FB", 2)),
             ("风寒束表证", "风热犯表证", "暑湿伤表证"), ("发热咽痛{d}", "鼻塞流涕{d}", "恶寒发热伴头痛{d}", "咽痛咳嗽{d}", "发热{d}"),
             "acute", (6, 3, 2, 1.5), _OUT_EM, formulas=("银翘散", "桑菊饮", "荆防败毒散", "新加香薷饮"),
             patents=("连花清瘟胶囊", "感冒清热颗粒", "小儿豉翘清热颗粒", "藿香正气水", "蒲地蓝消炎口服液"),
             western=("对乙酰氨基酚片", "布洛芬混悬液", "氨溴索片"), labs=("CBC",), lab_bias=(("WBC", "H", 0.35),)),
    Scenario(("J20.9", "急性支气管炎"), ("BNF010", "咳嗽病"), (("FB", 6), ("EK", 3), ("NK", 2)),
             ("风寒袭肺证", "风热犯肺证", "痰热壅肺证", "痰湿蕴肺证"), ("咳嗽咳痰{d}", "咳嗽{d}", "咳嗽伴发热{d}"),
             "subacute", (4, 2, 2, 2), formulas=("止嗽散", "桑菊饮", "清金化痰汤", "二陈汤"),
             patents=("急支糖浆", "苏黄止咳胶囊", "小儿消积止咳口服液"), western=("氨溴索片", "阿莫西林胶囊", "头孢呋辛酯片"),
             labs=("CBC",), lab_bias=(("WBC", "H", 0.3),)),
    Scenario(("J18.9", "肺炎"), ("BNF040", "风温肺热病"), (("FB", 6),), ("痰热壅肺证", "风热犯肺证", "气阴两虚证"),
             ("发热咳嗽{d}", "咳嗽咳黄痰伴发热{d}", "咳嗽气促{d}"), "acute", (0, 0.5, 1, 3), _ALL_KINDS,
             formulas=("麻杏石甘汤", "清金化痰汤"), patents=("连花清瘟胶囊",), western=("左氧氟沙星片", "头孢呋辛酯片", "氨溴索片"),
             labs=("CBC", "LIVER", "KIDNEY"), lab_bias=(("WBC", "H", 0.6),)),
    Scenario(("J18.9", "肺炎"), ("BEF030", "肺炎喘嗽"), (("EK", 1),), ("风热闭肺证", "痰热闭肺证"),
             ("发热咳嗽{d}", "咳嗽气喘{d}"), "acute", (5, 0, 0, 0), _ALL_KINDS, formulas=("麻杏石甘汤",),
             patents=("小儿肺热咳喘口服液",), western=("头孢克洛颗粒", "布洛芬混悬液"), labs=("CBC",), lab_bias=(("WBC", "H", 0.5),)),
    Scenario(("J44.1", "慢性阻塞性肺疾病伴有急性加重"), ("BNF060", "肺胀病"), (("FB", 6),),
             ("痰湿蕴肺证", "痰热壅肺证", "肺肾气虚证"), ("反复咳嗽咳痰气喘{d}，加重1周", "气促{d}"),
             "chronic", (0, 0, 0.5, 3), _ALL_KINDS, chronic=True, formulas=("苏子降气汤", "二陈汤", "清金化痰汤"),
             patents=("苏黄止咳胶囊",), western=("布地奈德福莫特罗吸入粉雾剂", "噻托溴铵吸入粉雾剂", "氨溴索片"),
             labs=("CBC",), lab_bias=(("WBC", "H", 0.3),), history="慢性阻塞性肺疾病病史{years}年"),
    Scenario(("J45.9", "哮喘"), ("BNF020", "哮病"), (("FB", 5), ("EK", 2)), ("冷哮证", "热哮证", "肺脾气虚证"),
             ("反复喘息{d}", "发作性喘促{d}，加重2天", "胸闷气喘{d}"), "chronic", (2, 1.5, 1, 1), _OUT_EM, chronic=True,
             formulas=("小青龙汤", "定喘汤"), patents=("玉屏风颗粒",), western=("布地奈德福莫特罗吸入粉雾剂", "孟鲁司特钠片"),
             techniques=("穴位贴敷",), site="肺俞、定喘、膏肓", labs=("CBC",), history="支气管哮喘病史{years}年"),
    Scenario(("J30.4", "变应性鼻炎"), ("BRB050", "鼻鼽"), (("ZWB", 5), ("FB", 2), ("EK", 1)),
             ("肺气虚寒证", "脾气虚证", "肾阳不足证"), ("反复鼻塞流清涕{d}", "晨起喷嚏{d}"), "chronic", (2, 2, 1, 0.5),
             chronic=True, formulas=("玉屏风散", "苍耳子散"), patents=("玉屏风颗粒", "辛芩颗粒"),
             western=("氯雷他定片", "布地奈德鼻喷雾剂"), techniques=("穴位贴敷", "艾灸"), site="大椎、肺俞、膏肓、定喘"),
    Scenario(("K29.5", "慢性胃炎"), ("BNP010", "胃脘痛"), (("PW", 7), ("NK", 2)),
             ("脾胃虚弱证", "肝胃不和证", "脾胃湿热证", "胃阴不足证"), ("胃脘胀痛{d}", "反复上腹痛{d}", "胃脘隐痛伴纳差{d}", "嗳气反酸{d}"),
             "chronic", (0, 1.5, 2.5, 2), _OUT_IN, chronic=True, formulas=("香砂六君子汤", "柴胡疏肝散", "半夏泻心汤", "黄芪建中汤"),
             patents=("香砂养胃丸", "胃苏颗粒", "气滞胃痛颗粒"), western=("奥美拉唑肠溶胶囊", "铝碳酸镁咀嚼片", "莫沙必利片"),
             labs=("CBC",), history="慢性胃炎病史{years}年"),
    Scenario(("K21.9", "胃食管反流病"), ("BNP030", "吐酸病"), (("PW", 5),), ("肝胃郁热证", "肝胃不和证", "脾胃虚弱证"),
             ("反酸烧心{d}", "胸骨后灼热感{d}"), "chronic", (0, 1.5, 2, 1.5), chronic=True, formulas=("半夏泻心汤", "柴胡疏肝散"),
             patents=("左金丸",), western=("奥美拉唑肠溶胶囊", "雷贝拉唑钠肠溶片", "铝碳酸镁咀嚼片")),
    Scenario(("K58.0", "肠易激综合征"), ("BNP110", "泄泻病"), (("PW", 5), ("NK", 1)), ("肝郁脾虚证", "脾胃虚弱证", "脾肾阳虚证"),
             ("反复腹泻{d}", "腹痛腹泻{d}", "大便溏烂{d}"), "chronic", (0, 2, 1.5, 1), chronic=True,
             formulas=("痛泻要方", "参苓白术散"), patents=("四神丸", "参苓白术颗粒"), western=("匹维溴铵片", "蒙脱石散")),
    Scenario(("K59.0", "便秘"), ("BNP130", "便秘病"), (("PW", 4),), ("脾气虚证", "肠燥津亏证", "气机郁滞证"),
             ("大便干结{d}", "排便困难{d}"), "chronic", (0.3, 1, 1, 2.5), chronic=True, formulas=("补中益气汤", "增液汤"),
             patents=("麻仁丸", "芪蓉润肠口服液"), western=("乳果糖口服溶液",), techniques=("穴位贴敷",), site="神阙、天枢"),
    Scenario(("K52.9", "急性胃肠炎"), ("BNP110", "泄泻病"), (("NK", 6), ("EK", 3)), ("大肠湿热证", "寒湿困脾证", "食滞胃肠证"),
             ("腹泻{d}", "呕吐腹泻{d}", "腹痛腹泻伴发热{d}"), "acute", (3, 2, 1, 1), _OUT_EM, formulas=("葛根芩连汤",),
             patents=("藿香正气水", "保济丸"), western=("蒙脱石散", "口服补液盐散"), labs=("CBC",), lab_bias=(("WBC", "H", 0.3),)),
    Scenario(("M10.9", "痛风"), ("BNV080", "痛风"), (("NK", 5), ("GS", 1)), ("湿热蕴结证", "痰瘀痹阻证", "脾虚湿盛证"),
             ("右足第一跖趾关节红肿疼痛{d}", "关节红肿热痛{d}"), "subacute", (0, 0.8, 1.5, 1), _OUT_EM, sex="male",
             chronic=True, formulas=("宣痹汤",), patents=("四妙丸",), western=("秋水仙碱片", "非布司他片", "塞来昔布胶囊"),
             labs=("KIDNEY", "CBC"), lab_bias=(("UA", "H", 0.8),), history="痛风病史{years}年"),
    Scenario(("I63.9", "脑梗死"), ("BNG080", "中风病"), (("NK", 5),), ("风痰阻络证", "气虚血瘀证", "肝阳上亢证", "痰热腑实证"),
             ("突发左侧肢体乏力{d}", "言语不利伴右侧肢体麻木{d}", "口角歪斜{d}"), "acute", (0, 0, 0.4, 2),
             ("emergency", "inpatient"), formulas=("补阳还五汤", "半夏白术天麻汤", "天麻钩藤饮"),
             patents=("脑心通胶囊", "通心络胶囊", "华佗再造丸"), western=("阿司匹林肠溶片", "氯吡格雷片", "阿托伐他汀钙片", "丁苯酞软胶囊"),
             techniques=("针刺",), site="肩髃、曲池、合谷、足三里、三阴交",
             labs=("CBC", "LIVER", "KIDNEY", "LIPIDS", "GLUCOSE"), lab_bias=(("LDL", "H", 0.4), ("GLU", "H", 0.25)),
             history="脑梗死病史{years}年"),
    Scenario(("I69.3", "脑梗死后遗症"), ("BNG080", "中风病"), (("KF", 7), ("ZJ", 3)), ("气虚血瘀证", "肝肾亏虚证", "风痰阻络证"),
             ("脑梗死后左侧肢体活动不利{d}", "中风后言语不利{d}", "右侧肢体乏力{d}"), "chronic", (0, 0, 0.5, 2), _OUT_IN,
             chronic=True, formulas=("补阳还五汤", "地黄饮子"), patents=("脑心通胶囊", "华佗再造丸"),
             western=("阿司匹林肠溶片", "阿托伐他汀钙片"), techniques=("针刺", "电针", "推拿", "中频脉冲电治疗", "运动疗法"),
             site="患侧肢体", labs=("LIPIDS",), history="脑梗死病史{years}年"),
    Scenario(("G51.0", "面神经麻痹"), ("BNG100", "面瘫病"), (("ZJ", 8),), ("风寒袭络证", "风热袭络证", "气虚血瘀证"),
             ("口角歪斜{d}", "右侧口眼歪斜{d}", "左侧面部麻木、闭目不全{d}"), "subacute", (0.3, 2, 1.5, 1),
             formulas=("牵正散", "补阳还五汤"), western=("甲钴胺片", "泼尼松片"), techniques=("针刺", "电针", "艾灸", "拔罐"),
             site="阳白、四白、地仓、颊车、翳风、合谷"),
    Scenario(("M47.8", "颈椎病"), ("BGS010", "项痹病"), (("TN", 6), ("GS", 3), ("ZJ", 3), ("KF", 1)),
             ("风寒痹阻证", "气滞血瘀证", "痰湿阻络证", "肝肾亏虚证"),
             ("颈项疼痛{d}", "颈痛伴右上肢麻木{d}", "颈肩部酸痛{d}，加重3天", "颈部僵硬伴头晕{d}"), "chronic", (0, 2, 3, 2),
             _OUT_IN, chronic=True, formulas=("葛根汤", "羌活胜湿汤", "黄芪桂枝五物汤"), patents=("颈复康颗粒", "颈舒颗粒"),
             western=("塞来昔布胶囊", "乙哌立松片", "甲钴胺片"), techniques=("推拿", "针刺", "电针", "拔罐", "中药熏蒸", "刮痧"),
             site="颈项部"),
    Scenario(("M51.2", "腰椎间盘突出症"), ("BGS020", "腰痹病"), (("GS", 5), ("TN", 4), ("ZJ", 3), ("KF", 1)),
             ("气滞血瘀证", "寒湿痹阻证", "湿热痹阻证", "肝肾亏虚证"),
             ("腰痛伴左下肢放射痛{d}", "腰腿痛{d}，加重1周", "腰痛伴右下肢麻木{d}"), "chronic", (0, 1.5, 3, 2), _OUT_IN,
             chronic=True, formulas=("身痛逐瘀汤", "独活寄生汤"), patents=("腰痹通胶囊", "仙灵骨葆胶囊"),
             western=("塞来昔布胶囊", "乙哌立松片", "甲钴胺片"), techniques=("推拿", "针刺", "电针", "中药熏蒸", "小针刀"),
             site="腰骶部", surgeries=("腰椎间盘髓核摘除术", "经皮椎间孔镜下髓核摘除术"), surgery_chance=0.3),
    Scenario(("M54.5", "腰痛"), ("BNS150", "腰痛病"), (("ZJ", 4), ("TN", 4), ("GS", 1)), ("寒湿痹阻证", "气滞血瘀证", "肝肾亏虚证"),
             ("腰痛{d}", "腰痛反复发作{d}", "腰部酸痛{d}"), "chronic", (0, 2, 2.5, 2), chronic=True,
             formulas=("独活寄生汤", "甘姜苓术汤"), patents=("腰痹通胶囊", "金匮肾气丸", "壮腰健肾丸"),
             western=("布洛芬缓释胶囊", "乙哌立松片"), techniques=("针刺", "艾灸", "拔罐", "推拿", "温针灸"), site="腰部"),
    Scenario(("S33.5", "急性腰扭伤"), ("BGS030", "腰部伤筋"), (("TN", 4), ("GS", 4), ("ZJ", 2)), ("气滞血瘀证",),
             ("腰部扭伤后疼痛{d}", "搬重物后腰痛、活动受限{d}"), "injury", (0, 2, 1.5, 0.3), _OUT_EM,
             formulas=("复元活血汤", "身痛逐瘀汤"), patents=("云南白药胶囊", "活血止痛胶囊"),
             western=("双氯芬酸钠缓释片", "塞来昔布胶囊"), techniques=("推拿", "针刺", "拔罐"), site="腰部、腰痛点、后溪"),
    Scenario(("M17.9", "膝关节骨性关节炎"), ("BGS040", "膝痹病"), (("GS", 5), ("KF", 3), ("ZJ", 2), ("TN", 1)),
             ("肝肾亏虚证", "寒湿痹阻证", "气滞血瘀证", "湿热痹阻证"),
             ("双膝关节疼痛{d}", "右膝疼痛、上下楼加重{d}", "膝关节肿痛{d}"), "chronic", (0, 0.2, 2, 4), _OUT_IN, chronic=True,
             formulas=("独活寄生汤", "身痛逐瘀汤"), patents=("仙灵骨葆胶囊",),
             western=("塞来昔布胶囊", "硫酸氨基葡萄糖胶囊", "双氯芬酸二乙胺乳胶剂"),
             techniques=("针刺", "温针灸", "中药熏蒸", "小针刀", "运动疗法"), site="膝关节（内外膝眼、鹤顶、阳陵泉）",
             surgeries=("全膝关节置换术", "膝关节镜下清理术"), surgery_chance=0.35),
    Scenario(("M75.0", "肩周炎"), ("BGS050", "漏肩风"), (("ZJ", 4), ("TN", 4), ("KF", 2)), ("寒湿痹阻证", "气滞血瘀证", "气血亏虚证"),
             ("右肩疼痛、活动受限{d}", "左肩关节疼痛{d}"), "chronic", (0, 0.2, 3, 2), formulas=("黄芪桂枝五物汤", "蠲痹汤"),
             patents=("舒筋活血片",), western=("塞来昔布胶囊",), techniques=("针刺", "温针灸", "推拿", "拔罐", "小针刀"),
             site="肩髃、肩髎、肩贞、阿是穴"),
    Scenario(("S52.5", "桡骨远端骨折"), ("BGG010", "骨折病"), (("GS", 8),), ("气滞血瘀证", "瘀血阻络证", "肝肾亏虚证"),
             ("跌倒致右腕肿痛、活动受限{d}", "外伤后左腕疼痛{d}"), "injury", (0.5, 0.5, 1, 2.5), _ALL_KINDS,
             formulas=("桃红四物汤",), patents=("伤科接骨片", "云南白药胶囊"), western=("塞来昔布胶囊",),
             techniques=("手法整复",), site="腕部", labs=("CBC",), surgeries=("桡骨远端骨折切开复位内固定术",), surgery_chance=0.6),
    Scenario(("S72.0", "股骨颈骨折"), ("BGG010", "骨折病"), (("GS", 4),), ("气滞血瘀证", "肝肾亏虚证"),
             ("跌倒致左髋疼痛、不能站立{d}", "摔倒后右髋疼痛{d}"), "injury", (0, 0, 0.2, 3), ("emergency", "inpatient"),
             formulas=("桃红四物汤",), patents=("伤科接骨片",), western=("碳酸钙D3片", "阿仑膦酸钠片"),
             labs=("CBC", "LIVER", "KIDNEY"), lab_bias=(("HGB", "L", 0.4),),
             surgeries=("人工股骨头置换术", "全髋关节置换术", "股骨颈骨折闭合复位内固定术"), surgery_chance=0.85),
    Scenario(("M81.9", "骨质疏松"), ("BGS060", "骨痿"), (("GS", 3), ("ZWB", 1)), ("肝肾阴虚证", "脾肾阳虚证", "肾虚血瘀证"),
             ("腰背疼痛{d}", "全身骨痛乏力{d}"), "chronic", (0, 0, 0.8, 3), sex="female", chronic=True,
             patents=("仙灵骨葆胶囊", "骨疏康颗粒", "左归丸"), western=("碳酸钙D3片", "阿仑膦酸钠片", "骨化三醇软胶囊"),
             formulas=("独活寄生汤",)),
    Scenario(("N94.6", "痛经"), ("BFY070", "痛经病"), (("FK", 8), ("ZJ", 1)), ("寒凝血瘀证", "气滞血瘀证", "气血虚弱证"),
             ("经行腹痛{d}", "经期小腹冷痛{d}"), "chronic", (0.3, 6, 1, 0), sex="female", age_range=(12, 52), chronic=True,
             formulas=("少腹逐瘀汤", "温经汤"), patents=("元胡止痛片", "益母草颗粒", "桂枝茯苓丸", "少腹逐瘀颗粒"),
             western=("布洛芬缓释胶囊",), techniques=("艾灸", "穴位贴敷", "针刺"), site="关元、气海、三阴交"),
    Scenario(("N92.6", "月经不调"), ("BFY030", "月经先后无定期"), (("FK", 7),), ("肝郁气滞证", "肾气虚证", "脾气虚证"),
             ("月经周期紊乱{d}", "月经推迟{d}", "月经量少{d}"), "chronic", (0.1, 6, 2, 0), sex="female", age_range=(12, 52),
             formulas=("逍遥散", "定经汤", "归脾汤"), patents=("逍遥丸", "乌鸡白凤丸", "定坤丹"), labs=("CBC",),
             lab_bias=(("HGB", "L", 0.2),)),
    Scenario(("N95.1", "绝经期综合征"), ("BFY130", "绝经前后诸证"), (("FK", 6), ("ZWB", 1)), ("肝肾阴虚证", "肾阳虚证", "心肾不交证"),
             ("潮热汗出{d}", "烘热汗出伴失眠{d}", "月经紊乱伴烦躁{d}"), "chronic", (0, 0, 6, 1), sex="female",
             age_range=(44, 60), formulas=("二仙汤", "甘麦大枣汤"), patents=("坤宝丸", "知柏地黄丸", "更年安片"), labs=("LIPIDS",)),
    Scenario(("N97.9", "女性不孕症"), ("BFB010", "不孕症"), (("FK", 4),), ("肾阳虚证", "肝郁气滞证", "痰湿阻滞证"),
             ("未避孕未孕{d}",), "infertility", (0, 4, 0.3, 0), sex="female", age_range=(22, 45), chronic=True,
             formulas=("毓麟珠", "开郁种玉汤"), patents=("定坤丹", "滋肾育胎丸")),
    Scenario(("O21.0", "轻度妊娠剧吐"), ("BFR010", "妊娠恶阻"), (("FK", 3),), ("脾胃虚弱证", "肝胃不和证"),
             ("停经{d}，恶心呕吐1周",), "pregnancy", (0, 3, 0.1, 0), sex="female", age_range=(20, 42),
             formulas=("香砂六君子汤", "苏叶黄连汤"), western=("维生素B6片",), labs=("CBC",), tag="孕产妇"),
    Scenario(("O92.4", "产后缺乳"), ("BFC040", "缺乳"), (("FK", 2),), ("气血虚弱证", "肝郁气滞证"), ("产后乳汁量少{d}",),
             "postpartum", (0, 3, 0.1, 0), sex="female", age_range=(20, 42), formulas=("下乳涌泉散",),
             patents=("通乳颗粒",), techniques=("针刺",), site="膻中、乳根、少泽", tag="孕产妇"),
    Scenario(("L20.9", "特应性皮炎"), ("BWP020", "四弯风"), (("PF", 6), ("EK", 2)), ("脾虚湿蕴证", "血虚风燥证", "湿热蕴肤证"),
             ("皮肤瘙痒、皮疹反复发作{d}", "四肢屈侧皮疹伴瘙痒{d}"), "chronic", (4, 2, 0.5, 0.3), chronic=True,
             formulas=("消风散", "参苓白术散", "当归饮子"), patents=("润燥止痒胶囊", "湿毒清胶囊"),
             western=("氯雷他定片", "丁酸氢化可的松乳膏", "地奈德乳膏"), techniques=("中药熏蒸",), site="皮损局部"),
    Scenario(("L30.9", "湿疹"), ("BWP010", "湿疮"), (("PF", 7),), ("湿热浸淫证", "脾虚湿蕴证", "血虚风燥证"),
             ("皮疹伴瘙痒{d}", "手部皮疹、渗出{d}"), "subacute", (1, 2, 2, 1.5), formulas=("龙胆泻肝汤", "消风散", "除湿胃苓汤"),
             patents=("湿毒清胶囊", "皮肤病血毒丸"), western=("氯雷他定片", "糠酸莫米松乳膏", "炉甘石洗剂")),
    Scenario(("L50.9", "荨麻疹"), ("BWP030", "瘾疹"), (("PF", 6),), ("风热犯表证", "风寒束表证", "血虚风燥证"),
             ("全身风团伴瘙痒{d}", "反复起风团{d}"), "subacute", (2, 3, 2, 1), _OUT_EM, formulas=("消风散", "桂枝汤", "玉屏风散"),
             patents=("防风通圣丸", "玉屏风颗粒"), western=("氯雷他定片", "西替利嗪片"), labs=("CBC",)),
    Scenario(("B02.9", "带状疱疹"), ("BWP060", "蛇串疮"), (("PF", 6), ("ZJ", 3)), ("肝经郁热证", "脾虚湿蕴证", "气滞血瘀证"),
             ("右侧胸胁部簇集水疱伴疼痛{d}", "腰部带状红斑、水疱、刺痛{d}"), "acute", (0, 0.5, 1.5, 2.5),
             formulas=("龙胆泻肝汤", "除湿胃苓汤", "柴胡疏肝散"), patents=("龙胆泻肝丸",),
             western=("伐昔洛韦片", "甲钴胺片", "普瑞巴林胶囊"), techniques=("针刺", "拔罐"), site="皮损局部、夹脊穴"),
    Scenario(("L70.0", "寻常痤疮"), ("BWP090", "粉刺"), (("PF", 6),), ("肺经风热证", "湿热蕴结证", "痰湿阻滞证"),
             ("面部丘疹、粉刺{d}", "面部反复起脓疱{d}"), "chronic", (0.3, 5, 0.5, 0), age_range=(12, 45),
             formulas=("枇杷清肺饮", "茵陈蒿汤"), patents=("当归苦参丸", "金花消痤丸"), western=("多西环素片", "阿达帕林凝胶"),
             techniques=("拔罐", "耳穴压豆"), site="大椎、肺俞"),
    Scenario(("K30", "功能性消化不良"), ("BEP040", "积滞"), (("EK", 6), ("TN", 3)), ("乳食内积证", "脾虚夹积证"),
             ("纳差、腹胀{d}", "食欲不振伴口臭{d}"), "subacute", (6, 0, 0, 0), formulas=("保和汤",),
             patents=("保和丸", "健胃消食片"), techniques=("小儿推拿", "捏脊"), site="捏脊、摩腹、补脾经"),
    Scenario(("R63.0", "厌食"), ("BEP030", "厌食"), (("EK", 4), ("TN", 2)), ("脾失健运证", "脾胃气虚证"),
             ("食欲不振{d}", "挑食、食量减少{d}"), "chronic", (5, 0, 0, 0), formulas=("参苓白术散", "异功散"),
             patents=("健儿消食口服液", "参苓白术颗粒"), techniques=("小儿推拿", "捏脊"), site="捏脊、补脾经、揉板门"),
    Scenario(("R53", "乏力"), ("BNV010", "虚劳病"), (("ZWB", 6),), ("肺脾气虚证", "脾肾阳虚证", "肝郁脾虚证"),
             ("乏力{d}", "易疲劳、畏寒{d}", "神疲乏力、易感冒{d}"), "chronic", (0.2, 2, 2, 1.5),
             formulas=("补中益气汤", "玉屏风散", "归脾汤"), patents=("补中益气丸", "玉屏风颗粒", "金匮肾气丸"),
             techniques=("艾灸", "穴位贴敷", "耳穴压豆"), site="足三里、关元、气海", labs=("CBC",)),
)  # fmt: skip

PHYSICAL_EXAM = Scenario(
    ("Z00.0", "一般性医学检查"),
    None,
    (("ZWB", 1),),
    (),
    ("健康体检", "年度体检", "入职体检", "体质辨识"),
    "acute",
    (0.2, 1, 1, 1),
    ("physical_exam",),
    labs=EXAM_PANELS,
)
