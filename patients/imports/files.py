"""Files the import hands out: the empty template and the full row report."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.utils.translation import gettext as _
from openpyxl import Workbook

from patients.imports.columns import TEMPLATE_HEADERS

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"


def _csv_bytes(rows: Iterable[Iterable[object]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerows(rows)
    # A byte-order mark so spreadsheet programs open the Chinese text as UTF-8.
    return ("\ufeff" + text.getvalue()).encode("utf-8")


def template_file(file_format: str) -> tuple[bytes, str]:
    """An empty sheet with the recognised headers: (content, content type)."""
    if file_format == "xlsx":
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = _("Patients")
        sheet.append(list(TEMPLATE_HEADERS))
        # Text cells, so Excel keeps national ID numbers, phones and leading zeros as typed.
        for column in sheet.iter_cols(min_row=1, max_row=1):
            letter = column[0].column_letter
            sheet.column_dimensions[letter].number_format = "@"
            sheet.column_dimensions[letter].width = 14
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue(), XLSX_TYPE
    return _csv_bytes([TEMPLATE_HEADERS]), CSV_TYPE


def report_csv(report: Iterable[dict]) -> bytes:
    """The dry-run or import report as CSV: row, field, code, reason."""
    header = [_("Row"), _("Field"), _("Code"), _("Reason")]
    return _csv_bytes([header, *([entry["row"], entry["field"], entry["code"], entry["message"]] for entry in report)])
