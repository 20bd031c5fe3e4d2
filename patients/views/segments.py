"""Console pages of segments: list with counts and RFM overview, builder with a live count, members, export."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST
from rest_framework import serializers

from hcrm.audit import Event, audit_read
from hcrm.models import Department
from patients import exports
from patients.models import (
    Channel,
    CodeSystem,
    ConsentPurpose,
    PatientSource,
    PatientStats,
    RfmGroup,
    Segment,
    Sex,
    Tag,
)
from patients.selectors import patient_view, patients_visible_to
from patients.selectors.segments import DIAGNOSIS_ANY, segment_filters_clean, segment_patients, split_names
from patients.services import segments as services
from patients.views.archive import PAGE_SIZE, _Page

SCORE_CHOICES = [(str(score), str(score)) for score in range(1, 6)]
YES_NO = [("", "—"), ("yes", gettext_lazy("granted")), ("no", gettext_lazy("refused"))]


def _checkboxes() -> forms.CheckboxSelectMultiple:
    return forms.CheckboxSelectMultiple(attrs={"class": "choices"})


def _number(**attrs) -> forms.NumberInput:
    return forms.NumberInput(attrs={"inputmode": "numeric", **attrs})


class DepartmentChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class SegmentFilterForm(forms.Form):
    """Every filter of the spec as a form field; `spec()` turns the answers into the spec the selector reads."""

    visit_from = forms.DateField(
        label=gettext_lazy("Visited from"), required=False, widget=forms.DateInput({"type": "date"})
    )
    visit_to = forms.DateField(
        label=gettext_lazy("Visited until"), required=False, widget=forms.DateInput({"type": "date"})
    )
    last_visit_within_days = forms.IntegerField(
        label=gettext_lazy("Last visit within (days)"), required=False, min_value=0, widget=_number()
    )
    no_visit_for_days = forms.IntegerField(
        label=gettext_lazy("No visit for (days)"), required=False, min_value=1, widget=_number()
    )
    provinces = forms.CharField(
        label=gettext_lazy("Provinces"), required=False, help_text=gettext_lazy("Separate several with commas.")
    )
    cities = forms.CharField(
        label=gettext_lazy("Cities"), required=False, help_text=gettext_lazy("Separate several with commas.")
    )
    districts = forms.CharField(
        label=gettext_lazy("Districts"), required=False, help_text=gettext_lazy("Separate several with commas.")
    )
    sources = forms.MultipleChoiceField(
        label=gettext_lazy("Source"), choices=PatientSource.choices, required=False, widget=_checkboxes()
    )
    departments = DepartmentChoices(
        label=gettext_lazy("Departments"),
        queryset=Department.objects.filter(is_active=True),
        to_field_name="code",
        required=False,
        widget=_checkboxes(),
    )
    diagnosis_prefixes = forms.CharField(
        label=gettext_lazy("Diagnosis codes"),
        required=False,
        help_text=gettext_lazy("Code prefixes, e.g. I10, E11 or BNG; a diagnosis starting with any of them matches."),
    )
    diagnosis_system = forms.ChoiceField(
        label=gettext_lazy("Code system"),
        choices=[(DIAGNOSIS_ANY, gettext_lazy("Any code system")), *CodeSystem.choices],
        required=False,
    )
    spending_min = forms.DecimalField(
        label=gettext_lazy("Spending from (yuan)"), required=False, min_value=0, decimal_places=2
    )
    spending_max = forms.DecimalField(
        label=gettext_lazy("Spending up to (yuan)"), required=False, min_value=0, decimal_places=2
    )
    age_min = forms.IntegerField(
        label=gettext_lazy("Age from"), required=False, min_value=0, max_value=150, widget=_number()
    )
    age_max = forms.IntegerField(
        label=gettext_lazy("Age up to"), required=False, min_value=0, max_value=150, widget=_number()
    )
    sexes = forms.MultipleChoiceField(
        label=gettext_lazy("Sex"), choices=Sex.choices, required=False, widget=_checkboxes()
    )
    tags = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Tags"),
        queryset=Tag.objects.all(),
        to_field_name="name",
        required=False,
        widget=_checkboxes(),
    )
    consent_purpose = forms.ChoiceField(
        label=gettext_lazy("Consent for"), choices=[("", "—"), *ConsentPurpose.choices], required=False
    )
    consent_channel = forms.ChoiceField(
        label=pgettext_lazy("consent filter", "by"), choices=[("", "—"), *Channel.choices], required=False
    )
    consent_granted = forms.ChoiceField(label=pgettext_lazy("consent filter", "is"), choices=YES_NO, required=False)
    rfm_groups = forms.MultipleChoiceField(
        label=gettext_lazy("RFM group"), choices=RfmGroup.choices, required=False, widget=_checkboxes()
    )
    recency_scores = forms.MultipleChoiceField(
        label=gettext_lazy("Recency score"), choices=SCORE_CHOICES, required=False, widget=_checkboxes()
    )
    frequency_scores = forms.MultipleChoiceField(
        label=gettext_lazy("Frequency score"), choices=SCORE_CHOICES, required=False, widget=_checkboxes()
    )
    monetary_scores = forms.MultipleChoiceField(
        label=gettext_lazy("Monetary score"), choices=SCORE_CHOICES, required=False, widget=_checkboxes()
    )
    include_deceased = forms.BooleanField(label=gettext_lazy("Include deceased patients"), required=False)

    SECTIONS = (
        (gettext_lazy("Visits"), ("visit_from", "visit_to", "last_visit_within_days", "no_visit_for_days", "departments")),
        (gettext_lazy("Who"), ("age_min", "age_max", "sexes", "provinces", "cities", "districts", "sources", "tags")),
        (gettext_lazy("Diagnoses"), ("diagnosis_prefixes", "diagnosis_system")),
        (gettext_lazy("Spending and RFM"), ("spending_min", "spending_max", "rfm_groups", "recency_scores", "frequency_scores", "monetary_scores")),
        (gettext_lazy("Consent and status"), ("consent_purpose", "consent_channel", "consent_granted", "include_deceased")),
    )  # fmt: skip

    @classmethod
    def initial_from(cls, spec: dict) -> dict:
        initial = {key: value for key, value in spec.items() if key in cls.base_fields}
        for key in ("provinces", "cities", "districts", "diagnosis_prefixes"):
            if key in spec:
                initial[key] = ", ".join(spec[key])
        for key in ("recency_scores", "frequency_scores", "monetary_scores"):
            if key in spec:
                initial[key] = [str(score) for score in spec[key]]
        if "consent" in spec:
            initial["consent_purpose"] = spec["consent"]["purpose"]
            initial["consent_channel"] = spec["consent"]["channel"]
            initial["consent_granted"] = "yes" if spec["consent"]["granted"] else "no"
        return initial

    @property
    def sections(self):
        return [(title, [self[name] for name in names]) for title, names in self.SECTIONS]

    def spec(self) -> dict | None:
        """The validated spec, or None with the errors added to the form's fields."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        raw: dict = {}
        for key in ("visit_from", "visit_to"):
            if data.get(key):
                raw[key] = data[key].isoformat()
        for key in ("provinces", "cities", "districts", "diagnosis_prefixes"):
            raw[key] = split_names(data.get(key, ""))
        for key in ("sources", "sexes", "rfm_groups", "recency_scores", "frequency_scores", "monetary_scores"):
            raw[key] = list(data.get(key) or [])
        raw["departments"] = [department.code for department in data.get("departments") or []]
        raw["tags"] = [tag.name for tag in data.get("tags") or []]
        for key in ("spending_min", "spending_max"):
            if data.get(key) is not None:
                raw[key] = str(data[key])
        for key in ("age_min", "age_max", "last_visit_within_days", "no_visit_for_days"):
            if data.get(key) is not None:
                raw[key] = data[key]
        raw["diagnosis_system"] = data.get("diagnosis_system") or DIAGNOSIS_ANY
        raw["include_deceased"] = bool(data.get("include_deceased"))
        consent = [data.get("consent_purpose"), data.get("consent_channel"), data.get("consent_granted")]
        if any(consent) and not all(consent):
            self.add_error("consent_granted", _("Choose the purpose, the channel and the answer."))
            return None
        if all(consent):
            raw["consent"] = {"purpose": consent[0], "channel": consent[1], "granted": consent[2] == "yes"}
        try:
            return segment_filters_clean(raw)
        except serializers.ValidationError as error:
            for key, details in error.detail.items():
                field = "consent_granted" if key == "consent" else key if key in self.fields else None
                # List and nested fields report per item or per key: {0: [...]}, {"channel": [...]}.
                found = [item for items in details.values() for item in items] if isinstance(details, dict) else details
                for message in found:
                    self.add_error(field, str(message))
            return None


class SegmentForm(SegmentFilterForm):
    name = forms.CharField(label=pgettext_lazy("thing", "Name"), max_length=100)
    description = forms.CharField(label=gettext_lazy("Description"), required=False, widget=forms.Textarea({"rows": 2}))


def _department_names(specs: list[dict]) -> dict[str, str]:
    codes = {code for spec in specs for code in spec.get("departments", [])}
    if not codes:
        return {}
    return {department.code: department.display_name for department in Department.objects.filter(code__in=codes)}


def _describe(spec: dict, departments: dict[str, str]) -> list[tuple[str, str]]:
    """The spec as a person reads it: (filter, value) pairs in the spec's order."""
    fields = SegmentFilterForm.base_fields
    labels = {
        "sources": dict(PatientSource.choices),
        "sexes": dict(Sex.choices),
        "rfm_groups": dict(RfmGroup.choices),
        "diagnosis_system": dict(CodeSystem.choices),
    }
    rows = []
    for key, value in spec.items():
        if key == "consent":
            purpose = dict(ConsentPurpose.choices)[value["purpose"]]
            channel = dict(Channel.choices)[value["channel"]]
            answer = _("granted") if value["granted"] else _("refused")
            rows.append((_("Consent"), f"{purpose} · {channel}: {answer}"))
            continue
        label = str(fields[key].label) if key in fields else key
        if key == "include_deceased":
            rows.append((label, _("yes")))
        elif key == "departments":
            rows.append((label, ", ".join(departments.get(code, code) for code in value)))
        elif key in labels:
            mapping = labels[key]
            shown = [mapping.get(item, item) for item in (value if isinstance(value, list) else [value])]
            rows.append((label, ", ".join(str(item) for item in shown)))
        elif isinstance(value, list):
            rows.append((label, ", ".join(str(item) for item in value)))
        else:
            rows.append((label, str(value)))
    return rows


# --- Pages -------------------------------------------------------------------------------------------


@login_required
@permission_required("patients.view_segment", raise_exception=True)
def segment_list(request: HttpRequest) -> HttpResponse:
    segments = list(Segment.objects.select_related("owner").order_by("name"))
    departments = _department_names([segment.filters for segment in segments])
    rows = [(segment, _describe(segment.filters, departments)) for segment in segments]
    return render(request, "patients/segments/list.html", {"rows": rows})


@login_required
@permission_required("patients.view_segment", raise_exception=True)
def rfm_overview(request: HttpRequest) -> HttpResponse:
    """Patients per RFM group and per R, F and M score, from the nightly statistics (one grouped query)."""
    groups = dict.fromkeys(RfmGroup.values, 0)
    scores = {score: {"recency": 0, "frequency": 0, "monetary": 0} for score in range(5, -1, -1)}
    combinations = PatientStats.objects.values_list("rfm_group", "recency_score", "frequency_score", "monetary_score")
    for group, recency, frequency, monetary, count in combinations.annotate(count=Count("pk")).order_by():
        groups[group] = groups.get(group, 0) + count
        scores[recency]["recency"] += count
        scores[frequency]["frequency"] += count
        scores[monetary]["monetary"] += count
    total = sum(groups.values())
    context = {
        "groups": [(value, label, groups[value]) for value, label in RfmGroup.choices],
        "scores": [(score, row) for score, row in scores.items() if score > 0],
        "total": total,
    }
    return render(request, "patients/segments/_rfm_overview.html", context)


def _builder(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    initial = {}
    if segment is not None:
        initial = {
            "name": segment.name,
            "description": segment.description,
            **SegmentForm.initial_from(segment.filters),
        }
    form = SegmentForm(request.POST or None, initial=initial)
    if request.method == "POST":
        spec = form.spec()
        if spec is not None:
            try:
                if segment is None:
                    segment = services.segment_create(
                        actor=request.user,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        filters=spec,
                    )
                else:
                    data = {
                        "name": form.cleaned_data["name"],
                        "description": form.cleaned_data["description"],
                        "filters": spec,
                    }
                    services.segment_update(actor=request.user, segment=segment, data=data)
            except ValidationError as error:
                for field, errors in error.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("Segment %(name)s saved.") % {"name": segment.name})
                return redirect("patients:segment-detail", uuid=segment.uuid)
    return render(
        request,
        "patients/segments/builder.html",
        {"form": form, "segment": segment},
        status=400 if form.errors else 200,
    )


@login_required
@permission_required("patients.add_segment", raise_exception=True)
def segment_create(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@login_required
@permission_required("patients.change_segment", raise_exception=True)
def segment_edit(request: HttpRequest, uuid) -> HttpResponse:
    return _builder(request, get_object_or_404(Segment, uuid=uuid))


@login_required
@permission_required("patients.view_segment", raise_exception=True)
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count of the builder: the form's filters, counted over every patient."""
    form = SegmentFilterForm(request.GET)
    spec = form.spec()
    count = None if spec is None else segment_patients(spec).count()
    return render(request, "patients/segments/_count.html", {"form": form, "count": count})


@login_required
@require_POST
@permission_required("patients.view_segment", raise_exception=True)
def segment_count(request: HttpRequest, uuid) -> HttpResponse:
    segment = get_object_or_404(Segment, uuid=uuid)
    services.segment_count(segment=segment)
    if not request.htmx:
        return redirect("patients:segment-detail", uuid=segment.uuid)
    return render(request, "patients/segments/_segment_count.html", {"segment": segment})


@login_required
@permission_required("patients.view_segment", raise_exception=True)
def segment_detail(request: HttpRequest, uuid) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.select_related("owner"), uuid=uuid)
    context = {
        "segment": segment,
        "filters": _describe(segment.filters, _department_names([segment.filters])),
        "page": None,
    }
    if request.user.has_perm("patients.view_segment_members"):
        try:
            number = max(int(request.GET.get("page", 1)), 1)
        except ValueError:
            number = 1
        members = segment_patients(segment.filters, patients=patients_visible_to(request.user)).order_by("mrn")
        rows = list(members[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1])
        context["page"] = _Page([patient_view(request.user, patient) for patient in rows], number)
        audit_read(
            event=Event.LIST,
            instance=segment,
            details={
                "segment": str(segment.uuid),
                "patients": [str(view.patient.uuid) for view in context["page"].object_list],
            },
        )
    return render(request, "patients/segments/detail.html", context)


@login_required
@permission_required("patients.view_segment_members", raise_exception=True)
def segment_export(request: HttpRequest, uuid, file_format: str) -> HttpResponse:
    if file_format not in ("csv", "xlsx"):
        raise Http404
    segment = get_object_or_404(Segment, uuid=uuid)
    return exports.export_response(
        segment_patients(segment.filters, patients=patients_visible_to(request.user)).order_by("mrn"),
        request.user,
        file_format=file_format,
        filename=f"segment-{segment.uuid}",
        details={"segment": str(segment.uuid)},
        instance=segment,
    )


@login_required
@require_POST
@permission_required("patients.delete_segment", raise_exception=True)
def segment_delete(request: HttpRequest, uuid) -> HttpResponse:
    segment = get_object_or_404(Segment, uuid=uuid)
    try:
        services.segment_delete(actor=request.user, segment=segment)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("patients:segment-detail", uuid=segment.uuid)
    messages.success(request, _("Segment %(name)s deleted.") % {"name": segment.name})
    return redirect("patients:segment-list")


urlpatterns = [
    path("", segment_list, name="segment-list"),
    path("rfm/", rfm_overview, name="segment-rfm"),
    path("new/", segment_create, name="segment-create"),
    path("preview/", segment_preview, name="segment-preview"),
    path("<uuid:uuid>/", segment_detail, name="segment-detail"),
    path("<uuid:uuid>/edit/", segment_edit, name="segment-edit"),
    path("<uuid:uuid>/delete/", segment_delete, name="segment-delete"),
    path("<uuid:uuid>/count/", segment_count, name="segment-count"),
    path("<uuid:uuid>/export.<str:file_format>", segment_export, name="segment-export"),
]
