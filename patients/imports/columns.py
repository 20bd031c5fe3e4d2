"""Which spreadsheet column holds which patient field, from Chinese or English headers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# Field → the headers hospitals use for it. Compared after `header_key()`, so case,
# width, spaces, a trailing `*` and a parenthesised hint like "(YYYY-MM-DD)" do not matter.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "患者姓名", "病人姓名", "名字", "name", "patient name", "full name"),
    "sex": ("性别", "sex", "gender"),
    "birth_date": ("出生日期", "出生年月日", "生日", "birth date", "date of birth", "dob", "birthdate", "birthday"),
    "national_id": (
        "身份证号",
        "身份证",
        "身份证号码",
        "公民身份号码",
        "national id",
        "national id number",
        "id number",
        "id card",
    ),
    "mobile": ("手机", "手机号", "手机号码", "移动电话", "mobile", "mobile phone", "cell phone"),
    "phone": ("电话", "联系电话", "固定电话", "座机", "phone", "telephone", "other phone", "landline"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "email", "e-mail"),
    "mrn": ("病历号", "病案号", "mrn", "medical record number"),
    "visit_card": ("就诊卡号", "就诊卡", "诊疗卡号", "visit card", "visit card number"),
    "insurance": ("医保号", "医保卡号", "社保卡号", "insurance", "insurance number", "medical insurance number"),
    "passport": ("护照号", "护照号码", "passport", "passport number"),
    "province": ("省", "省份", "province"),
    "city": ("市", "城市", "city"),
    "district": ("区", "区县", "县区", "district", "county"),
    "address_detail": ("地址", "详细地址", "住址", "家庭住址", "address", "street address"),
    "postal_code": ("邮编", "邮政编码", "postal code", "postcode", "zip"),
    "ethnicity": ("民族", "ethnicity"),
    "marital_status": ("婚姻状况", "婚姻", "marital status"),
    "occupation": ("职业", "occupation"),
    "employer": ("工作单位", "单位", "employer"),
    "source": ("来源", "患者来源", "source"),
    "tags": ("标签", "tags", "tag"),
    "departments": ("科室", "就诊科室", "department", "departments"),
}

# The header row of the downloadable template, in this order.
TEMPLATE_HEADERS = (
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "手机",
    "电话",
    "病历号",
    "就诊卡号",
    "医保号",
    "省",
    "市",
    "区",
    "地址",
    "邮编",
    "邮箱",
    "民族",
    "婚姻状况",
    "职业",
    "工作单位",
    "来源",
    "标签",
    "科室",
)

_HINT = re.compile(r"[(\[（【].*?[)\]）】]")
_SEPARATORS = re.compile(r"[\s_\-]+")


def header_key(header: object) -> str:
    """`" 出生日期（YYYY-MM-DD）* "` → `"出生日期"`; `"Birth_Date"` → `"birth date"`."""
    text = unicodedata.normalize("NFKC", "" if header is None else str(header))
    text = _HINT.sub("", text).replace("*", "").replace(":", "")
    return _SEPARATORS.sub(" ", text).strip().lower()


_FIELD_BY_KEY = {header_key(alias): name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}


@dataclass
class ColumnMap:
    """Column index of each recognised field, the headers left unused, and the header problems."""

    index: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


def columns_map(header: list[object]) -> ColumnMap:
    """Map a header row to fields; the first column of a field wins, later ones are reported."""
    mapping = ColumnMap()
    for position, cell in enumerate(header):
        text = "" if cell is None else str(cell).strip()
        if not text:
            continue
        name = _FIELD_BY_KEY.get(header_key(text))
        if name is None:
            mapping.ignored.append(text)
        elif name in mapping.index:
            mapping.duplicated.append(text)
        else:
            mapping.index[name] = position
            mapping.headers[name] = text
    return mapping
