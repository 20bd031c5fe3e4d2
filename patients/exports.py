"""Patient lists as CSV or XLSX, masked for the person exporting them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.translation import gettext as _
from openpyxl import Workbook

from hcrm.audit import Event, audit_read
from patients.models import Patient
from patients.selectors import patient_view
from patients.validators import format_phone

EXPORT_LIMIT = 100_000

COLUMNS = (
    ("mrn", lambda: _("MRN")),
    ("name", lambda: _("Name")),
    ("sex", lambda: _("Sex")),
    ("birth_date", lambda: _("Birth date")),
    ("mobile", lambda: _("Mobile")),
    ("national_id", lambda: _("National ID number")),
    ("province", lambda: _("Province")),
    ("city", lambda: _("City")),
    ("district", lambda: _("District")),
    ("address_detail", lambda: _("Street address")),
    ("employer", lambda: _("Employer")),
    ("source", lambda: _("Source")),
)


CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
        sheet = workbook.create_sheet(title)
        sheet.append(list(header))
        for row in rows:
            sheet.append(list(row))
    workbook.save(target)


def _rows(patients: QuerySet[Patient], user):
    for patient in patients[:EXPORT_LIMIT].iterator(chunk_size=2000):
        view = patient_view(user, patient)
        yield [format_phone(patient.mobile) if field == "mobile" else view.display(field) for field, _label in COLUMNS]


def patients_export(patients: QuerySet[Patient], user, *, file_format: str) -> tuple[bytes, str, int]:
    """Returns (content, content type, row count)."""
    header = [str(label()) for _field, label in COLUMNS]
    rows = Counted(_rows(patients, user))
    if file_format == "xlsx":
        buffer = io.BytesIO()
        xlsx_write(buffer, [(_("Patients"), header, rows)])
        return buffer.getvalue(), XLSX_CONTENT_TYPE, rows.count
    return b"".join(csv_chunks(header, rows)), CSV_CONTENT_TYPE, rows.count


EXPORT_FORMATS = ("csv", "xlsx")


def export_response(
    patients: QuerySet[Patient], user, *, file_format: str, filename: str, details: dict, instance=None
) -> HttpResponse:
    """The masked file as a download, with its audit entry: every export of patients goes through here."""
    content, content_type, count = patients_export(patients, user, file_format=file_format)
    audit_read(event=Event.EXPORT, instance=instance, details={**details, "format": file_format, "rows": count})
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}.{file_format}"'
    return response
