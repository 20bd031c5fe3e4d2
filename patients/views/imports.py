"""Console pages of the spreadsheet import: upload and dry run, the row report, import, history, template."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patients.imports.files import CSV_TYPE, report_csv, template_file
from patients.models import ImportMode, ImportStatus, Patient, PatientImport
from patients.services import imports as services

IMPORT_PERMISSIONS = ("patients.import_patients", "patients.add_patient", "patients.change_patient")
REPORT_ROWS_SHOWN = 200
HISTORY_ROWS = 50

# Labels of the fields a row report can name (the file's own header is shown where it has one).
_OTHER_LABELS = {
    "mrn": gettext_lazy("MRN"),
    "visit_card": gettext_lazy("Visit card number"),
    "insurance": gettext_lazy("Medical insurance number"),
    "passport": gettext_lazy("Passport or travel permit"),
    "tags": gettext_lazy("Tags"),
    "departments": gettext_lazy("Departments"),
}


def field_label(field: str, columns: dict[str, str]) -> str:
    if field in columns:
        return columns[field]
    if field in _OTHER_LABELS:
        return str(_OTHER_LABELS[field])
    try:
        return str(Patient._meta.get_field(field).verbose_name)
    except FieldDoesNotExist:  # a service error may name something that is not a field
        return field or "—"


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Spreadsheet"),
        help_text=gettext_lazy("CSV (UTF-8 or GB18030) or Excel .xlsx; the first row holds the column headers."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )
    assigner = forms.CharField(
        label=gettext_lazy("Assigning authority"),
        required=False,
        max_length=64,
        help_text=gettext_lazy(
            "Who issued the visit card, insurance and passport numbers in the file; leave empty for this hospital."
        ),
    )


class ModeForm(forms.Form):
    mode = forms.ChoiceField(
        label=gettext_lazy("Import"), choices=ImportMode.choices, widget=forms.RadioSelect(attrs={"class": "choices"})
    )


def _imports_of(user):
    imports = PatientImport.objects.select_related("uploaded_by", "imported_by")
    if user.has_perm("patients.view_all_patients"):
        return imports
    return imports.filter(uploaded_by=user)


def _too_large(request: HttpRequest) -> bool:
    """Refuse an oversized upload by its announced length, before Django spools it to disk."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    return length > services.import_max_bytes() + 64 * 1024


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_list(request: HttpRequest) -> HttpResponse:
    """Upload a file (which runs the dry run) and see earlier imports."""
    form = UploadForm()
    status = 200
    if request.method == "POST":
        if _too_large(request):
            # The body is left unread; the form shows the limit instead of Django's "field is required".
            form = UploadForm(data={}, files={})
            form.full_clean()
            form.errors["file"] = form.error_class(
                [
                    _("Files up to %(limit)s MB can be imported. Split the file into smaller files.")
                    % {"limit": settings.PATIENT_IMPORT_MAX_MB}
                ]
            )
            status = 413
        else:
            form = UploadForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    patient_import = services.patient_import_create(
                        actor=request.user,
                        upload=form.cleaned_data["file"],
                        original_name=form.cleaned_data["file"].name,
                        assigner=form.cleaned_data["assigner"],
                    )
                except ValidationError as error:
                    for message in error.message_dict.get("file", error.messages):
                        form.add_error("file", message)
                else:
                    return redirect("patients:import-detail", uuid=patient_import.uuid)
            status = 400
    history = _imports_of(request.user)[:HISTORY_ROWS]
    return render(request, "patients/imports/list.html", {"form": form, "imports": history}, status=status)


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_detail(request: HttpRequest, uuid) -> HttpResponse:
    patient_import = get_object_or_404(_imports_of(request.user), uuid=uuid)
    return _detail(request, patient_import, ModeForm(initial={"mode": _default_mode(patient_import)}))


def _default_mode(patient_import: PatientImport) -> str:
    return ImportMode.GOOD_ROWS_ONLY if patient_import.bad_rows else ImportMode.ALL_OR_NOTHING


def _detail(request: HttpRequest, patient_import: PatientImport, form: ModeForm, status: int = 200) -> HttpResponse:
    columns = patient_import.columns
    report = [
        {**entry, "label": field_label(entry["field"], columns)} for entry in patient_import.report[:REPORT_ROWS_SHOWN]
    ]
    earlier = (
        _imports_of(request.user)
        .filter(sha256=patient_import.sha256, status=ImportStatus.IMPORTED)
        .exclude(pk=patient_import.pk)
        .order_by("-finished_at")
        .first()
    )
    stale = patient_import.is_running and patient_import.started_at < services.import_stale_before()
    context = {
        "patient_import": patient_import,
        "can_start": patient_import.can_import or stale,
        "done": services.import_progress(patient_import) if patient_import.is_running else 0,
        "form": form,
        "report": report,
        "report_total": len(patient_import.report),
        "recognised": [(header, field_label(field, {})) for field, header in columns.items()],
        "earlier": earlier,
    }
    return render(request, "patients/imports/detail.html", context, status=status)


@login_required
@require_POST
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_run(request: HttpRequest, uuid) -> HttpResponse:
    patient_import = get_object_or_404(_imports_of(request.user), uuid=uuid)
    form = ModeForm(request.POST)
    if not form.is_valid():
        return _detail(request, patient_import, form, status=400)
    try:
        patient_import = services.patient_import_start(
            patient_import=patient_import,
            actor=request.user,
            mode=form.cleaned_data["mode"],
            default_departments=request.user.departments.all(),
        )
    except ValidationError as error:
        field = "mode" if hasattr(error, "error_dict") else None
        for message in error.message_dict.get("mode", []) if field else error.messages:
            form.add_error(field, message)
        return _detail(request, patient_import, form, status=400)
    patient_import.refresh_from_db()  # a worker may have finished it already
    if patient_import.is_running:
        messages.info(request, _("The import has started; this page shows its result when it is done."))
    return redirect("patients:import-detail", uuid=patient_import.uuid)


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_progress(request: HttpRequest, uuid) -> HttpResponse:
    """How far a running import is; once it has finished, the page reloads to show the result."""
    patient_import = get_object_or_404(_imports_of(request.user), uuid=uuid)
    if not patient_import.is_running:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(
        request,
        "patients/imports/_progress.html",
        {"patient_import": patient_import, "done": services.import_progress(patient_import)},
    )


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_report(request: HttpRequest, uuid) -> HttpResponse:
    """The whole row report as CSV: row, field, code, reason (no patient values)."""
    patient_import = get_object_or_404(_imports_of(request.user), uuid=uuid)
    columns = patient_import.columns
    rows = [{**entry, "field": field_label(entry["field"], columns)} for entry in patient_import.report]
    response = HttpResponse(report_csv(rows), content_type=CSV_TYPE)
    response["Content-Disposition"] = f'attachment; filename="import-report-{patient_import.uuid}.csv"'
    return response


@login_required
@permission_required(IMPORT_PERMISSIONS, raise_exception=True)
def import_template(request: HttpRequest, file_format: str) -> HttpResponse:
    if file_format not in ("csv", "xlsx"):
        raise Http404
    content, content_type = template_file(file_format)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="patients-template.{file_format}"'
    return response


urlpatterns = [
    path("", import_list, name="import-list"),
    path("template.<str:file_format>", import_template, name="import-template"),
    path("<uuid:uuid>/", import_detail, name="import-detail"),
    path("<uuid:uuid>/import/", import_run, name="import-run"),
    path("<uuid:uuid>/progress/", import_progress, name="import-progress"),
    path("<uuid:uuid>/report.csv", import_report, name="import-report"),
]
