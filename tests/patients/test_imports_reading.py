"""Reading patient spreadsheets: encodings, XLSX cells, header aliases and every row rule, as pure functions."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook

from patients.imports import ImportFileError, Lookups, columns_map, row_parse, rows_parse, sheet_open
from patients.imports.columns import TEMPLATE_HEADERS, header_key
from patients.imports.files import report_csv, template_file
from patients.imports.rows import date_parse
from patients.services.identity import IdentifierInput
from tests.patients.imports_files import HEADER, LI_ID, WANG_ID, csv_bytes, good_rows, xlsx_bytes

LOOKUPS = Lookups(
    tags={"高血压": "高血压"},
    departments={"nk": "NK", "内科": "NK", "internal medicine": "NK"},
    sources={"referral": "referral", "转诊": "referral", "spreadsheet": "spreadsheet"},
)


def _read(content: bytes, name: str = "patients.csv") -> tuple[str, list, list]:
    with sheet_open(io.BytesIO(content), name=name) as sheet:
        return sheet.file_format, sheet.header, list(sheet.rows)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_reads_the_same_in_utf8_with_or_without_bom_and_gb18030(encoding):
    file_format, header, rows = _read(csv_bytes(good_rows(), encoding=encoding))

    assert file_format == "csv"
    assert header == HEADER
    assert rows[0] == (2, ["王建国", "男", "1980-01-02", WANG_ID, "13812345678", "C0001", "", ""])
    assert [number for number, _values in rows] == [2, 3, 4]


def test_csv_detects_the_encoding_from_the_whole_file_not_its_start():
    ascii_rows = [[f"name{index}", "", "", "", "", f"A{index}", "", ""] for index in range(5000)]
    content = csv_bytes([*ascii_rows, ["张三", "男", "", "", "", "Z1", "", ""]], header=["name", *HEADER[1:]])
    gb = content.decode("utf-8").encode("gb18030")

    _format, _header, rows = _read(gb)

    assert rows[-1][1][0] == "张三"


def test_csv_with_tabs_or_semicolons_is_split_on_them():
    content = "姓名\t手机\n王建国\t13812345678\n".encode()

    _format, header, rows = _read(content)

    assert header == ["姓名", "手机"]
    assert rows == [(2, ["王建国", "13812345678"])]


def test_csv_row_numbers_count_quoted_line_breaks_as_one_row():
    content = '姓名,地址\n"王建国","北京市\n朝阳区"\n李秀英,上海\n'.encode()

    _format, _header, rows = _read(content)

    assert rows == [(2, ["王建国", "北京市\n朝阳区"]), (3, ["李秀英", "上海"])]


def test_text_that_is_neither_utf8_nor_gb18030_is_refused():
    with pytest.raises(ImportFileError) as error:
        _read("姓名\n".encode() + b"\x80\x80\xff\xfe\x81\n")

    assert str(error.value) == "The file's text is neither UTF-8 nor GB18030; save it again as CSV (UTF-8)."


def test_old_excel_and_disguised_files_are_refused_with_a_reason():
    with pytest.raises(ImportFileError) as old:
        _read(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "patients.xls")
    with pytest.raises(ImportFileError) as fake:
        _read(b"name,sex\n", "patients.xlsx")
    with pytest.raises(ImportFileError) as broken:
        _read(b"PK\x03\x04 not really a zip", "patients.xlsx")

    assert str(old.value) == "Old Excel files (.xls) cannot be read; save the sheet as .xlsx or CSV."
    assert str(fake.value) == "The file is named .xlsx but is not an Excel workbook."
    assert str(broken.value) == "The file could not be read as an Excel workbook (.xlsx)."


def test_xlsx_gives_typed_cells_and_spreadsheet_row_numbers_with_gaps():
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["姓名", "出生日期", "手机"])
    sheet.append(["王建国", dt.datetime(1980, 1, 2), 13812345678])
    sheet.append([])
    sheet["A4"] = "李秀英"
    buffer = io.BytesIO()
    workbook.save(buffer)

    file_format, header, rows = _read(buffer.getvalue(), "people.xlsx")

    assert file_format == "xlsx"
    assert header == ["姓名", "出生日期", "手机"]
    assert rows == [
        (2, ["王建国", dt.datetime(1980, 1, 2), 13812345678]),
        (3, []),
        (4, ["李秀英"]),
    ]


def test_headers_in_chinese_or_english_with_hints_map_to_fields():
    mapping = columns_map(["姓名*", "Sex", "出生日期（YYYY-MM-DD）", "National ID", "手机号码", "备注", "", "Name"])

    assert mapping.index == {"name": 0, "sex": 1, "birth_date": 2, "national_id": 3, "mobile": 4}
    assert mapping.headers["birth_date"] == "出生日期（YYYY-MM-DD）"
    assert mapping.ignored == ["备注"]
    assert mapping.duplicated == ["Name"]
    assert header_key(" Date_of-Birth ") == "date of birth"


def test_every_template_header_is_recognised():
    assert len(columns_map(list(TEMPLATE_HEADERS)).index) == len(TEMPLATE_HEADERS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1980-01-02", dt.date(1980, 1, 2)),
        ("1980/1/2", dt.date(1980, 1, 2)),
        ("19800102", dt.date(1980, 1, 2)),
        (19800102, dt.date(1980, 1, 2)),
        ("1980.1.2", dt.date(1980, 1, 2)),
        ("1980年1月2日", dt.date(1980, 1, 2)),
        ("1980-01-02 00:00:00", dt.date(1980, 1, 2)),
        (dt.datetime(1980, 1, 2), dt.date(1980, 1, 2)),
        (dt.date(1980, 1, 2), dt.date(1980, 1, 2)),
    ],
)
def test_birth_dates_are_read_in_the_formats_people_type(value, expected):
    assert date_parse(value) == expected


@pytest.mark.parametrize("value", ["1980-13-01", "02/01/1980", "yesterday", "1980-02-30"])
def test_impossible_or_ambiguous_dates_are_not_dates(value):
    with pytest.raises(ValueError):
        date_parse(value)


def _errors(cells: dict, lookups: Lookups = LOOKUPS) -> list[tuple[int, str, str]]:
    return [(error.row, error.field, error.code) for error in row_parse(7, cells, lookups).errors]


def test_a_good_row_becomes_demographics_with_identifiers():
    parsed = row_parse(
        2,
        {
            "name": " 王  建国 ",
            "sex": "男",
            "birth_date": "1980/1/2",
            "national_id": WANG_ID.lower(),
            "mobile": "138 1234 5678",
            "phone": "010-65529988",
            "visit_card": "C 0001",
            "insurance": "YB123",
            "mrn": "M0001",
            "tags": "高血压，高血压",
            "departments": "内科",
            "source": "转诊",
            "marital_status": "已婚",
            "province": "北京市",
        },
        LOOKUPS,
        assigner="HIS",
    )

    assert parsed.errors == []
    demographics = parsed.demographics
    assert (demographics.name, demographics.sex, demographics.birth_date) == ("王 建国", "male", dt.date(1980, 1, 2))
    assert (demographics.national_id, demographics.mobile, demographics.phone) == (
        WANG_ID,
        "+8613812345678",
        "+861065529988",
    )
    assert demographics.identifiers == [
        IdentifierInput(kind="visit_card", value="C0001", assigner="HIS"),
        IdentifierInput(kind="insurance", value="YB123", assigner="HIS"),
    ]
    assert (demographics.mrn, demographics.marital_status, demographics.province) == ("M0001", "20", "北京市")
    assert (parsed.tags, parsed.departments, parsed.source) == (["高血压"], ["NK"], "referral")


def test_missing_name_is_reported():
    assert _errors({"name": "  ", "sex": "男"}) == [(7, "name", "required")]


def test_national_id_with_a_wrong_check_digit_is_reported():
    wrong = WANG_ID[:17] + ("0" if WANG_ID[17] != "0" else "1")

    assert _errors({"name": "王建国", "national_id": wrong}) == [(7, "national_id", "check_digit")]


def test_national_id_in_a_wrong_format_is_reported():
    assert _errors({"name": "王建国", "national_id": "12345"}) == [(7, "national_id", "format")]


def test_national_id_that_excel_turned_into_a_number_is_reported():
    assert _errors({"name": "王建国", "national_id": 1.10105198001020e17}) == [(7, "national_id", "number")]


def test_future_birth_date_is_reported():
    assert _errors({"name": "王建国", "birth_date": "2999-01-01"}) == [(7, "birth_date", "future")]


def test_unparseable_birth_date_is_reported_with_the_value():
    parsed = row_parse(7, {"name": "王建国", "birth_date": "1980-13-45"}, LOOKUPS)

    assert [error.as_dict() for error in parsed.errors] == [
        {
            "row": 7,
            "field": "birth_date",
            "code": "invalid",
            "message": "The birth date “1980-13-45” is not a date; write it as 1980-01-02, 1980/1/2 or 19800102.",
        }
    ]


def test_national_id_disagreeing_with_birth_date_and_sex_is_reported_on_each():
    assert _errors({"name": "王建国", "sex": "女", "birth_date": "1981-01-02", "national_id": WANG_ID}) == [
        (7, "birth_date", "mismatch"),
        (7, "sex", "mismatch"),
    ]


@pytest.mark.parametrize(("value", "code"), [("12345", "phone"), ("010-65529988", "mobile")])
def test_invalid_mobile_is_reported(value, code):
    assert _errors({"name": "王建国", "mobile": value}) == [(7, "mobile", code)]


@pytest.mark.parametrize(
    ("value", "sex"),
    [("男", "male"), ("女", "female"), ("1", "male"), ("2", "female"), ("0", "unknown"), ("9", "unknown"),
     ("M", "male"), ("F", "female"), ("U", "unknown"), ("O", "other"), ("未说明的性别", "unknown")],
)  # fmt: skip
def test_sex_codes_of_hl7_table_0001_and_gb_t_2261_1_are_understood(value, sex):
    assert row_parse(2, {"name": "王建国", "sex": value}, LOOKUPS).demographics.sex == sex


def test_unknown_sex_code_is_reported():
    parsed = row_parse(7, {"name": "王建国", "sex": "X"}, LOOKUPS)

    assert [error.as_dict() for error in parsed.errors] == [
        {"row": 7, "field": "sex", "code": "unknown_code", "message": "Unknown sex code “X”."}
    ]


def test_unknown_tag_department_and_source_are_reported():
    assert _errors({"name": "王建国", "tags": "高血压、糖尿病", "departments": "NK, 骨科", "source": "路过"}) == [
        (7, "source", "unknown_code"),
        (7, "tags", "unknown_tag"),
        (7, "departments", "unknown_department"),
    ]


def test_too_long_values_and_bad_postal_code_or_email_are_reported():
    assert _errors({"name": "王" * 101, "postal_code": "1000", "email": "not-an-email", "city": "市" * 31}) == [
        (7, "name", "max_length"),
        (7, "email", "invalid"),
        (7, "postal_code", "invalid"),
        (7, "city", "max_length"),
    ]


def test_rows_repeating_a_national_id_or_identifier_are_reported_on_the_later_row():
    rows = [
        (2, ["王建国", WANG_ID, "C0001"]),
        (3, [None, None, None]),
        (4, ["王建国", WANG_ID, "C0009"]),
        (5, ["李秀英", LI_ID, "C0001"]),
    ]

    parsed = list(rows_parse(rows, {"name": 0, "national_id": 1, "visit_card": 2}, LOOKUPS))

    assert [row.row for row in parsed] == [2, 4, 5]
    assert [error.as_dict() for row in parsed for error in row.errors] == [
        {"row": 4, "field": "national_id", "code": "duplicate", "message": "Row 2 of this file has the same value."},
        {"row": 5, "field": "visit_card", "code": "duplicate", "message": "Row 2 of this file has the same value."},
    ]


def test_xlsx_cells_are_checked_like_text():
    rows = [["王建国", "男", dt.datetime(1980, 1, 2), WANG_ID, 13812345678, 10001, None, None]]
    with sheet_open(io.BytesIO(xlsx_bytes(rows)), name="p.xlsx") as sheet:
        mapping = columns_map(sheet.header)
        parsed = list(rows_parse(sheet.rows, mapping.index, LOOKUPS))

    assert parsed[0].errors == []
    assert parsed[0].demographics.birth_date == dt.date(1980, 1, 2)
    assert parsed[0].demographics.mobile == "+8613812345678"
    assert parsed[0].demographics.identifiers == [IdentifierInput(kind="visit_card", value="10001")]


def test_templates_hold_the_headers_in_both_formats():
    csv_content, csv_type = template_file("csv")
    xlsx_content, xlsx_type = template_file("xlsx")

    assert csv_type == "text/csv; charset=utf-8"
    assert csv_content.decode("utf-8-sig").strip() == ",".join(TEMPLATE_HEADERS)
    assert xlsx_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    with sheet_open(io.BytesIO(xlsx_content), name="t.xlsx") as sheet:
        assert tuple(sheet.header) == TEMPLATE_HEADERS
        assert list(sheet.rows) == []


def test_report_csv_lists_row_field_code_and_reason():
    content = report_csv([{"row": 3, "field": "身份证号", "code": "check_digit", "message": "wrong"}])

    assert content.decode("utf-8-sig").splitlines() == ["Row,Field,Code,Reason", "3,身份证号,check_digit,wrong"]
