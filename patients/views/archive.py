"""Staff console pages for the patient archive: load, call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from hcrm.audit import Event, audit_read
from hcrm.models import AuditEntry
from patients import exports, services
from patients.forms import ETHNIC_GROUPS, ConsentForm, PatientForm, PatientSearchForm, RevealForm
from patients.models import Allergy, Patient, PatientDepartment, PatientStats
from patients.selectors import (
    can_view_sensitive,
    consent_matrix,
    patient_view,
    patient_visible,
    patients_matching,
    patients_visible_to,
    search_kind,
)
from patients.timeline import patient_timeline

PAGE_SIZE = 25


class _Page:
    """A page that knows whether another follows, without counting a million rows."""

    def __init__(self, rows: list, number: int) -> None:
        self.object_list = rows[:PAGE_SIZE]
        self.number = number
        self.has_next = len(rows) > PAGE_SIZE
        self.has_previous = number > 1


def _searched_patients(request: HttpRequest, form: PatientSearchForm):
    patients = patients_visible_to(request.user)
    data = form.cleaned_data
    if data.get("q"):
        patients = patients_matching(patients, data["q"])
    if data.get("department"):
        patients = patients.filter(
            Exists(PatientDepartment.objects.filter(patient=OuterRef("pk"), department=data["department"]))
        )
    if data.get("sex"):
        patients = patients.filter(sex=data["sex"])
    if data.get("tag"):
        patients = patients.filter(tags=data["tag"])
    return patients


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_search(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET or None)
    page = None
    if form.is_valid() and any(form.cleaned_data.values()):
        try:
            number = max(int(request.GET.get("page", 1)), 1)
        except ValueError:
            number = 1
        patients = _searched_patients(request, form)
        rows = list(patients[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1])
        page = _Page([patient_view(request.user, patient) for patient in rows], number)
        audit_read(
            event=Event.SEARCH,
            details={
                "query": form.cleaned_data["q"],
                "kind": search_kind(form.cleaned_data["q"] or ""),
                "patients": [str(view.patient.uuid) for view in page.object_list],
            },
        )
    template = "patients/_results.html" if request.htmx else "patients/search.html"
    return render(request, template, {"form": form, "page": page, "query_string": _query_without_page(request)})


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_export(request: HttpRequest, file_format: str) -> HttpResponse:
    if file_format not in ("csv", "xlsx"):
        raise Http404
    form = PatientSearchForm(request.GET or None)
    if not form.is_valid():
        return redirect("patients:search")
    return exports.export_response(
        _searched_patients(request, form).order_by("mrn"),
        request.user,
        file_format=file_format,
        filename="patients",
        details={"query": form.cleaned_data["q"]},
    )


def _patient_or_outside(request: HttpRequest, uuid) -> tuple[Patient | None, HttpResponse | None]:
    patient = get_object_or_404(Patient.objects.filter(merged_into__isnull=True), uuid=uuid)
    if not patient_visible(request.user, patient):
        # Outside the user's departments: offer to break the glass, show nothing else.
        return None, render(
            request, "patients/outside.html", {"patient_uuid": patient.uuid, "form": RevealForm()}, status=403
        )
    return patient, None


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_detail(request: HttpRequest, uuid) -> HttpResponse:
    patient, refusal = _patient_or_outside(request, uuid)
    if refusal:
        return refusal
    patient = Patient.objects.prefetch_related("identifiers", "contact_persons", "consents", "tags", "departments").get(
        pk=patient.pk
    )
    audit_read(event=Event.VIEW, instance=patient)
    view = patient_view(request.user, patient)
    context = {
        "patient": view,
        "timeline": patient_timeline(patient, request.user),
        "consents": consent_matrix(patient),
        "active_allergies": [a.substance for a in Allergy.objects.filter(patient=patient, is_active=True)]
        if request.user.has_perm("patients.view_allergy")
        else [],
        "reveal_form": RevealForm(),
        "stats": PatientStats.objects.filter(patient=patient).first(),
        "can_audit": request.user.has_perm("hcrm.view_auditentry"),
    }
    return render(request, "patients/detail.html", context)


@login_required
@permission_required("patients.add_patient", raise_exception=True)
def patient_create(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None, initial={"departments": request.user.departments.all()})
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_create(
                actor=request.user,
                data=form.service_data(),
                departments=form.cleaned_data["departments"] or request.user.departments.all(),
                tags=form.cleaned_data["tags"],
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(
                request, _("Patient %(name)s registered as %(mrn)s.") % {"name": patient.name, "mrn": patient.mrn}
            )
            return redirect("patients:detail", uuid=patient.uuid)
    return render(request, "patients/form.html", {"form": form, "ethnic_groups": ETHNIC_GROUPS, "is_new": True})


@login_required
@permission_required("patients.change_patient", raise_exception=True)
def patient_edit(request: HttpRequest, uuid) -> HttpResponse:
    patient, refusal = _patient_or_outside(request, uuid)
    if refusal:
        return refusal
    sensitive = can_view_sensitive(request.user, patient)
    form = PatientForm(request.POST or None, instance=patient, can_edit_sensitive=sensitive, is_new=False)
    if request.method == "POST" and form.is_valid():
        try:
            services.patient_update(actor=request.user, patient=patient, data=form.service_data())
            services.patient_tags_set(actor=request.user, patient=patient, tags=form.cleaned_data["tags"])
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, _("Changes saved."))
            return redirect("patients:detail", uuid=patient.uuid)
    else:
        audit_read(event=Event.VIEW, instance=patient, details={"part": "edit form"})
    return render(
        request,
        "patients/form.html",
        {
            "form": form,
            "patient": patient_view(request.user, patient),
            "ethnic_groups": ETHNIC_GROUPS,
            "is_new": False,
            "sensitive_hidden": not sensitive,
        },
    )


@login_required
@permission_required("patients.view_patient", raise_exception=True)
def patient_reveal(request: HttpRequest, uuid) -> HttpResponse:
    """Break the glass for one patient: a reason, then the full record for a limited time."""
    patient = get_object_or_404(Patient.objects.filter(merged_into__isnull=True), uuid=uuid)
    form = RevealForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.patient_reveal(actor=request.user, patient=patient, reason=form.cleaned_data["reason"])
        messages.warning(request, _("Access granted and recorded with your reason."))
        return redirect("patients:detail", uuid=patient.uuid)
    return render(
        request,
        "patients/reveal.html",
        {"form": form, "patient_uuid": patient.uuid},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
@permission_required("patients.change_patient", raise_exception=True)
def patient_consent(request: HttpRequest, uuid) -> HttpResponse:
    patient, refusal = _patient_or_outside(request, uuid)
    if refusal:
        return refusal
    form = ConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("That consent choice is not valid."))
    else:
        services.consent_set(actor=request.user, patient=patient, **form.cleaned_data, note=_("Changed in the console"))
        messages.success(request, _("Consent updated."))
    return redirect(f"{patient_detail_url(patient)}#consents")


def patient_detail_url(patient: Patient) -> str:
    from django.urls import reverse

    return reverse("patients:detail", kwargs={"uuid": patient.uuid})


@login_required
def patient_access_history(request: HttpRequest, uuid) -> HttpResponse:
    """Every recorded read and write of this patient's data, for administrators."""
    if not request.user.has_perm("hcrm.view_auditentry"):
        raise PermissionDenied
    patient = get_object_or_404(Patient, uuid=uuid)
    audit_read(event=Event.VIEW, instance=patient, details={"part": "access history"})
    entries = AuditEntry.objects.filter(patient_uuid=patient.uuid).select_related("actor", "content_type")
    page = Paginator(entries.order_by("-timestamp", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request, "patients/access_history.html", {"patient": patient_view(request.user, patient), "page": page}
    )
