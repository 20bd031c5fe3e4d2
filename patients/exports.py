"""Patient lists as CSV or XLSX, masked for the person exporting them."""

from __future__ import annotations

import csv
import io

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


def _rows(patients: QuerySet[Patient], user):
    for patient in patients[:EXPORT_LIMIT].iterator(chunk_size=2000):
        view = patient_view(user, patient)
        yield [format_phone(patient.mobile) if field == "mobile" else view.display(field) for field, _label in COLUMNS]


def patients_export(patients: QuerySet[Patient], user, *, file_format: str) -> tuple[bytes, str, int]:
    """Returns (content, content type, row count)."""
    header = [str(label()) for _field, label in COLUMNS]
    count = 0
    if file_format == "xlsx":
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(_("Patients"))
        sheet.append(header)
        for row in _rows(patients, user):
            sheet.append(row)
            count += 1
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", count
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for row in _rows(patients, user):
        writer.writerow(row)
        count += 1
    # A byte-order mark so spreadsheet programs open the Chinese text as UTF-8.
    return ("\ufeff" + text.getvalue()).encode("utf-8"), "text/csv; charset=utf-8", count


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
