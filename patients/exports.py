"""Patient lists as CSV or XLSX, masked for the person exporting them."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.translation import gettext as _

from hcrm.audit import Event, audit_read
from hcrm.exports import file_response, table_file
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
    return table_file(header, _rows(patients, user), file_format=file_format, title=_("Patients"))


def export_response(
    patients: QuerySet[Patient], user, *, file_format: str, filename: str, details: dict, instance=None
) -> HttpResponse:
    """The masked file as a download, with its audit entry: every export of patients goes through here."""
    content, content_type, count = patients_export(patients, user, file_format=file_format)
    audit_read(event=Event.EXPORT, instance=instance, details={**details, "format": file_format, "rows": count})
    return file_response(content, content_type, f"{filename}.{file_format}")
