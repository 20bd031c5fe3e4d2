"""Tables as CSV or XLSX downloads: one header row and the rows under it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpResponse
from openpyxl import Workbook

EXPORT_FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"


def table_file(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, file_format: str, title: str
) -> tuple[bytes, str, int]:
    """The table as a file: (content, content type, row count); `title` names the XLSX sheet."""
    count = 0
    if file_format == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title[:31])
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
            count += 1
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue(), XLSX_TYPE, count
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
        count += 1
    # A byte-order mark so spreadsheet programs open the Chinese text as UTF-8.
    return ("\ufeff" + text.getvalue()).encode("utf-8"), CSV_TYPE, count


def file_response(content: bytes, content_type: str, filename: str) -> HttpResponse:
    """A download of `content` named `filename`."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
