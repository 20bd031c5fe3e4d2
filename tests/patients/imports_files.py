"""Spreadsheets built in tests: CSV in any encoding and XLSX, with the headers hospitals use."""

from __future__ import annotations

import csv
import datetime as dt
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from tests.factories import national_id

HEADER = ["姓名", "性别", "出生日期", "身份证号", "手机", "就诊卡号", "标签", "科室"]

# Valid GB 11643 numbers: an odd sequence is a man, an even one a woman.
WANG_ID = national_id("110105", dt.date(1980, 1, 2), 11)
LI_ID = national_id("310104", dt.date(1975, 6, 30), 22)
ZHAO_ID = national_id("440106", dt.date(1990, 12, 5), 34)


def csv_bytes(rows: list[list[object]], header: list[str] = HEADER, *, encoding: str = "utf-8") -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]], header: list[str] = HEADER) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(content: bytes, name: str = "patients.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


def good_rows() -> list[list[object]]:
    return [
        ["王建国", "男", "1980-01-02", WANG_ID, "13812345678", "C0001", "", ""],
        ["李秀英", "女", "1975/6/30", LI_ID, "13900001111", "C0002", "", ""],
        ["赵敏", "2", "19901205", ZHAO_ID, "", "C0003", "", ""],
    ]
