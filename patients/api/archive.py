"""REST API for patients and their records: thin viewsets over services and selectors."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response

from hcrm.audit import Event, audit_read
from patients import exports, services
from patients.models import (
    Allergy,
    ClinicalHistory,
    Diagnosis,
    Encounter,
    LabResult,
    MedicationOrder,
    Patient,
    PatientDepartment,
    Procedure,
)
from patients.selectors import SearchKind, patients_matching, patients_visible_to
from patients.serializers import (
    AllergySerializer,
    ClinicalHistorySerializer,
    DiagnosisSerializer,
    EncounterSerializer,
    LabResultSerializer,
    MedicationOrderSerializer,
    PatientDetailSerializer,
    PatientListSerializer,
    PatientWriteSerializer,
    ProcedureSerializer,
    RevealSerializer,
    TimelineEntrySerializer,
)
from patients.timeline import patient_timeline


class PatientFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_search", label=_("Search: name, pinyin, phone, MRN, card or ID"))
    name = django_filters.CharFilter(method="filter_name", label=_("Name, full pinyin or pinyin initials"))
    phone = django_filters.CharFilter(method="filter_phone")
    identifier = django_filters.CharFilter(method="filter_identifier", label=_("MRN or any identifier value"))
    national_id = django_filters.CharFilter(method="filter_national_id")
    department = django_filters.CharFilter(method="filter_department", label=_("Department code"))
    diagnosis = django_filters.CharFilter(method="filter_diagnosis", label=_("Diagnosis code prefix"))
    diagnosis_system = django_filters.ChoiceFilter(
        method="filter_noop", choices=Diagnosis._meta.get_field("system").choices
    )
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    sex = django_filters.ChoiceFilter(choices=Patient._meta.get_field("sex").choices)
    source = django_filters.ChoiceFilter(choices=Patient._meta.get_field("source").choices)
    tag = django_filters.CharFilter(field_name="tags__name")
    is_deceased = django_filters.BooleanFilter()

    class Meta:
        model = Patient
        fields: list[str] = []

    def filter_noop(self, queryset, name, value):
        return queryset

    def filter_search(self, queryset, name, value):
        return patients_matching(queryset, value)

    def filter_name(self, queryset, name, value):
        kind = SearchKind.NAME if any("\u3400" <= char <= "\u9fff" for char in value) else SearchKind.PINYIN
        return patients_matching(queryset, value, kind)

    def filter_phone(self, queryset, name, value):
        return patients_matching(queryset, value, SearchKind.PHONE)

    def filter_identifier(self, queryset, name, value):
        return patients_matching(queryset, value, SearchKind.IDENTIFIER)

    def filter_national_id(self, queryset, name, value):
        return patients_matching(queryset, value, SearchKind.NATIONAL_ID)

    def filter_department(self, queryset, name, value):
        return queryset.filter(Exists(PatientDepartment.objects.filter(patient=OuterRef("pk"), department__code=value)))

    def filter_diagnosis(self, queryset, name, value):
        diagnoses = Diagnosis.objects.filter(patient=OuterRef("pk"), code__startswith=value.strip().upper())
        system = self.data.get("diagnosis_system")
        if system:
            diagnoses = diagnoses.filter(system=system)
        return queryset.filter(Exists(diagnoses))


class FileFormatNegotiation(DefaultContentNegotiation):
    """On the export `?format=` names the file (csv or xlsx); DRF would look for a renderer of that name and 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class PatientViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Patients visible to the caller: all of them, or their departments' patients."""

    queryset = Patient.objects.none()
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = PatientFilter
    # PATCH only: a PUT that left out a field would have to erase it, which nobody wants of a patient.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["updated_at", "name", "mrn", "birth_date"]
    required_permissions = {
        "list": ["patients.view_patient"],
        "retrieve": ["patients.view_patient"],
        "timeline": ["patients.view_patient"],
        "export": ["patients.view_patient"],
        "reveal": ["patients.view_patient"],
        "create": ["patients.add_patient"],
        "update": ["patients.change_patient"],
        "partial_update": ["patients.change_patient"],
        "destroy": ["patients.delete_patient"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Patient.objects.none()
        patients = patients_visible_to(self.request.user).prefetch_related("tags")
        if self.action == "retrieve":
            patients = patients.prefetch_related("identifiers", "contact_persons", "consents", "departments")
        return patients

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return PatientWriteSerializer
        if self.action == "retrieve":
            return PatientDetailSerializer
        return PatientListSerializer

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        audit_read(
            event=Event.SEARCH if request.query_params else Event.LIST,
            details={
                "query": {key: request.query_params.getlist(key) for key in request.query_params},
                "patients": [row["id"] for row in response.data.get("results", [])],
            },
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        patient = self.get_object()
        audit_read(event=Event.VIEW, instance=patient)
        return Response(PatientDetailSerializer(patient, context=self.get_serializer_context()).data)

    @extend_schema(request=PatientWriteSerializer, responses={201: PatientDetailSerializer})
    def create(self, request, *args, **kwargs):
        serializer = PatientWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        departments = serializer.validated_data.get("departments")
        if departments is None:
            departments = list(request.user.departments.all()) if getattr(request.user, "pk", None) else []
        patient = services.patient_create(
            actor=request.user,
            data=serializer.patient_data(),
            departments=departments,
            tags=serializer.validated_data.get("tags", []),
        )
        return Response(self._detail(patient), status=status.HTTP_201_CREATED)

    @extend_schema(request=PatientWriteSerializer, responses=PatientDetailSerializer)
    def update(self, request, *args, **kwargs):
        patient = self.get_object()
        serializer = PatientWriteSerializer(data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        services.patient_update(actor=request.user, patient=patient, data=serializer.patient_data())
        if "tags" in serializer.validated_data:
            services.patient_tags_set(actor=request.user, patient=patient, tags=serializer.validated_data["tags"])
        return Response(self._detail(patient))

    def destroy(self, request, *args, **kwargs):
        services.patient_delete(actor=request.user, patient=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _detail(self, patient: Patient) -> dict:
        # Not the visible queryset: a patient just registered for another department is outside it.
        patient = Patient.objects.prefetch_related(
            "tags", "identifiers", "contact_persons", "consents", "departments"
        ).get(pk=patient.pk)
        return PatientDetailSerializer(patient, context=self.get_serializer_context()).data

    @extend_schema(request=RevealSerializer, responses=PatientDetailSerializer)
    @action(detail=True, methods=["post"])
    def reveal(self, request, id=None):
        """Break the glass: see this patient's sensitive fields for a limited time; the reason is audited."""
        patient = self._patient_for_reveal(id)
        serializer = RevealSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.patient_reveal(actor=request.user, patient=patient, reason=serializer.validated_data["reason"])
        request.user._grant_patient_ids = None
        return Response(self._detail(patient))

    def _patient_for_reveal(self, uuid) -> Patient:
        # Breaking the glass also opens a patient outside the caller's departments.
        patient = get_object_or_404(Patient.objects.filter(merged_into__isnull=True), uuid=uuid)
        if not getattr(self.request.user, "pk", None):
            raise NotFound()
        return patient

    @extend_schema(responses=TimelineEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def timeline(self, request, id=None):
        patient = self.get_object()
        audit_read(event=Event.VIEW, instance=patient, details={"part": "timeline"})
        return Response(TimelineEntrySerializer(patient_timeline(patient, request.user), many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "xlsx"])],
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    @action(detail=False, methods=["get"], url_path="export", content_negotiation_class=FileFormatNegotiation)
    def export(self, request):
        """The filtered list as CSV or XLSX, masked as the caller's role requires."""
        file_format = request.query_params.get("format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise ValidationError({"format": [_("Choose csv or xlsx.")]})
        return exports.export_response(
            self.filter_queryset(self.get_queryset()),
            request.user,
            file_format=file_format,
            filename="patients",
            details={"query": {key: request.query_params.getlist(key) for key in request.query_params}},
        )


# --- Records that belong to a patient ----------------------------------------------------------


class RecordViewSet(viewsets.ModelViewSet):
    """Records of patients visible to the caller; writes go through the record services."""

    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    related: tuple[str, ...] = ()

    def get_queryset(self):
        model = self.queryset.model
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return model.objects.none()
        visible = patients_visible_to(self.request.user).filter(pk=OuterRef("patient_id"))
        records = model.objects.filter(Exists(visible)).select_related("patient", *self.related)
        patient = self.request.query_params.get("patient")
        if patient:
            try:
                records = records.filter(patient__uuid=serializers.UUIDField().to_internal_value(patient))
            except serializers.ValidationError:
                raise ValidationError({"patient": [_("Not a valid patient id.")]}) from None
        return records.order_by(*model._meta.ordering, "pk")

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        patient_ids = sorted({row["patient"] for row in response.data.get("results", [])}, key=str)
        audit_read(
            event=Event.LIST,
            details={"record": self.queryset.model._meta.model_name, "patients": [str(p) for p in patient_ids]},
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        record = self.get_object()
        audit_read(event=Event.VIEW, instance=record)
        return Response(self.get_serializer(record).data)

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if self.action in ("create", "update", "partial_update") and not getattr(self, "swagger_fake_view", False):
            # A patient the caller may not see gets the same answer as one that does not exist.
            serializer.fields["patient"].queryset = patients_visible_to(self.request.user)
        return serializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        patient = data.pop("patient")
        serializer.instance = services.record_create(
            actor=self.request.user, model=self.queryset.model, patient=patient, data=data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        patient = data.pop("patient", serializer.instance.patient)
        if patient.pk != serializer.instance.patient_id:
            raise ValidationError({"patient": [_("A record cannot move to another patient.")]})
        services.record_update(actor=self.request.user, record=serializer.instance, data=data)

    def perform_destroy(self, instance):
        services.record_delete(actor=self.request.user, record=instance)


class EncounterViewSet(RecordViewSet):
    queryset = Encounter.objects.none()
    serializer_class = EncounterSerializer
    related = ("department", "doctor")
    filterset_fields = {
        "kind": ["exact"],
        "status": ["exact"],
        "started_at": ["gte", "lte"],
        "department__code": ["exact"],
    }


class DiagnosisViewSet(RecordViewSet):
    queryset = Diagnosis.objects.none()
    serializer_class = DiagnosisSerializer
    related = ("encounter", "doctor")
    filterset_fields = {"system": ["exact"], "code": ["exact", "startswith"], "is_primary": ["exact"]}


class ProcedureViewSet(RecordViewSet):
    queryset = Procedure.objects.none()
    serializer_class = ProcedureSerializer
    related = ("encounter", "performer")
    filterset_fields = {"system": ["exact"], "code": ["exact", "startswith"], "is_surgery": ["exact"]}


class LabResultViewSet(RecordViewSet):
    queryset = LabResult.objects.none()
    serializer_class = LabResultSerializer
    related = ("encounter",)
    filterset_fields = {"code": ["exact"], "abnormal_flag": ["exact"], "observed_at": ["gte", "lte"]}


class MedicationOrderViewSet(RecordViewSet):
    queryset = MedicationOrder.objects.none()
    serializer_class = MedicationOrderSerializer
    related = ("encounter", "prescriber")
    filterset_fields = {"kind": ["exact"], "status": ["exact"]}


class AllergyViewSet(RecordViewSet):
    queryset = Allergy.objects.none()
    serializer_class = AllergySerializer
    filterset_fields = {"is_active": ["exact"]}


class ClinicalHistoryViewSet(RecordViewSet):
    queryset = ClinicalHistory.objects.none()
    serializer_class = ClinicalHistorySerializer
    filterset_fields = {"kind": ["exact"]}


def register(router) -> None:
    router.register("patients", PatientViewSet, basename="patient")
    router.register("encounters", EncounterViewSet, basename="encounter")
    router.register("diagnoses", DiagnosisViewSet, basename="diagnosis")
    router.register("procedures", ProcedureViewSet, basename="procedure")
    router.register("lab-results", LabResultViewSet, basename="labresult")
    router.register("medication-orders", MedicationOrderViewSet, basename="medicationorder")
    router.register("allergies", AllergyViewSet, basename="allergy")
    router.register("histories", ClinicalHistoryViewSet, basename="clinicalhistory")
