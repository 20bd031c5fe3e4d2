"""Tables as CSV or XLSX downloads: one header row and the rows under it, whole or streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from django.http import HttpResponse
from openpyxl import Workbook

EXPORT_FORMATS = ("csv", "xlsx")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


class Counted:
    """An iterable that counts the rows it has given."""

    def __init__(self, rows: Iterable[Sequence]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[Sequence]:
        for row in self.rows:
            self.count += 1
            yield row


class _Line:
    """A file that hands back what is written to it: `csv.writer` then returns each line."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(header: Sequence, rows: Iterable[Sequence]) -> Iterator[bytes]:
    """A CSV file line by line, as UTF-8 (for a streaming response as well as a whole file)."""
    writer = csv.writer(_Line())
    # A byte-order mark so spreadsheet programs open the Chinese text as UTF-8.
    yield ("\ufeff" + writer.writerow(header)).encode("utf-8")
    for row in rows:
        yield writer.writerow(row).encode("utf-8")


def xlsx_write(target: IO[bytes], sheets: Iterable[tuple[str, Sequence, Iterable[Sequence]]]) -> None:
    """A workbook of (title, header, rows) sheets, written row by row (openpyxl's write-only mode)."""
    workbook = Workbook(write_only=True)
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(str(title)[:31])
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
    workbook.save(target)


def table_file(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, file_format: str, title: str
) -> tuple[bytes, str, int]:
    """The table as a file: (content, content type, row count); `title` names the XLSX sheet."""
    counted = Counted(rows)
    if file_format == "xlsx":
        buffer = io.BytesIO()
        xlsx_write(buffer, [(title, header, counted)])
        return buffer.getvalue(), XLSX_CONTENT_TYPE, counted.count
    return b"".join(csv_chunks(header, counted)), CSV_CONTENT_TYPE, counted.count


def file_response(content: bytes, content_type: str, filename: str) -> HttpResponse:
    """A download of `content` named `filename`."""
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
