"""REST API for questionnaires, their versions and responses (DRF; thin: the services decide).

Questionnaires are the hospital's (no patient data): whoever may read them reads all. Responses are
scoped to the patients the caller may see, and every read of them is audited.
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from followups.models import (
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireStatus,
    QuestionnaireVersion,
    ResponseStatus,
)
from followups.selectors import questionnaires_for_department, responses_visible_to
from followups.services import response_save
from followups.services.responses import SOURCES
from hcrm.audit import Event, audit_read
from patients.api.contacts import StaffReferenceSerializer
from patients.models import Patient
from patients.selectors import patients_visible_to

# --- Serializers ----------------------------------------------------------------------------------------


class VersionReferenceSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    number = serializers.IntegerField(read_only=True)


class QuestionnaireSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    departments = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)
    current_version = VersionReferenceSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Questionnaire
        fields = [
            "id",
            "code",
            "title",
            "title_en",
            "description",
            "purpose",
            "status",
            "departments",
            "disease_codes",
            "is_builtin",
            "current_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class QuestionnaireVersionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    questionnaire = serializers.UUIDField(source="questionnaire.uuid", read_only=True)
    code = serializers.CharField(source="questionnaire.code", read_only=True)
    is_current = serializers.SerializerMethodField()
    items = serializers.JSONField(read_only=True)
    scoring = serializers.JSONField(read_only=True)

    class Meta:
        model = QuestionnaireVersion
        fields = ["id", "questionnaire", "code", "number", "is_current", "items", "scoring", "created_at"]
        read_only_fields = fields

    def get_is_current(self, version: QuestionnaireVersion) -> bool:
        return version.questionnaire.current_version_id == version.pk


class QuestionnaireResponseSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    questionnaire = serializers.CharField(source="version.questionnaire.code", read_only=True)
    version = serializers.UUIDField(source="version.uuid", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    patient = serializers.UUIDField(source="patient.uuid", read_only=True)
    answered_by = StaffReferenceSerializer(read_only=True, allow_null=True)
    answers = serializers.JSONField(read_only=True)
    scores = serializers.JSONField(read_only=True)

    class Meta:
        model = QuestionnaireResponse
        fields = [
            "id",
            "questionnaire",
            "version",
            "version_number",
            "patient",
            "status",
            "answers",
            "scores",
            "source",
            "answered_by",
            "completed_at",
            "created_at",
        ]
        read_only_fields = fields


class QuestionnaireResponseCreateSerializer(serializers.Serializer):
    version = serializers.SlugRelatedField(slug_field="uuid", queryset=QuestionnaireVersion.objects.all())
    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.none())
    answers = serializers.DictField(help_text=_("Answers by linkId; a list for multiple choice."))
    # Checked by the service; a plain string keeps the schema free of a second "source" enum.
    source = serializers.CharField(default="staff", max_length=20, help_text=" | ".join(SOURCES))
    complete = serializers.BooleanField(default=True)


# --- Filters --------------------------------------------------------------------------------------------


class QuestionnaireFilter(django_filters.FilterSet):
    purpose = django_filters.ChoiceFilter(choices=QuestionnairePurpose.choices)
    status = django_filters.ChoiceFilter(choices=QuestionnaireStatus.choices)
    department = django_filters.CharFilter(
        method="for_department", label=_("Department code (also those meant for every department)")
    )

    class Meta:
        model = Questionnaire
        fields: list[str] = []

    def for_department(self, queryset, name, value):
        return questionnaires_for_department(queryset, value)


class VersionFilter(django_filters.FilterSet):
    questionnaire = django_filters.UUIDFilter(field_name="questionnaire__uuid", label=_("Questionnaire id"))

    class Meta:
        model = QuestionnaireVersion
        fields: list[str] = []


class ResponseFilter(django_filters.FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient__uuid", label=_("Patient id"))
    questionnaire = django_filters.CharFilter(field_name="version__questionnaire__code", label=_("Questionnaire code"))
    version = django_filters.UUIDFilter(field_name="version__uuid", label=_("Version id"))
    status = django_filters.ChoiceFilter(choices=ResponseStatus.choices)

    class Meta:
        model = QuestionnaireResponse
        fields: list[str] = []


# --- Views ----------------------------------------------------------------------------------------------


class QuestionnaireViewSet(viewsets.ReadOnlyModelViewSet):
    """Questionnaires staff pick from, filtered by purpose, department and status."""

    queryset = Questionnaire.objects.none()
    serializer_class = QuestionnaireSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = QuestionnaireFilter
    ordering_fields = ["title", "code", "updated_at"]
    required_permissions = {"list": ["followups.view_questionnaire"], "retrieve": ["followups.view_questionnaire"]}

    def get_queryset(self):
        return (
            Questionnaire.objects.select_related("current_version")
            .prefetch_related("departments")
            .order_by("title", "pk")
        )


class QuestionnaireVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every version of the questionnaires, with its items and scoring rules; filter by questionnaire."""

    queryset = QuestionnaireVersion.objects.none()
    serializer_class = QuestionnaireVersionSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = VersionFilter
    ordering_fields = ["number", "created_at"]
    required_permissions = {
        "list": ["followups.view_questionnaireversion"],
        "retrieve": ["followups.view_questionnaireversion"],
    }

    def get_queryset(self):
        return QuestionnaireVersion.objects.select_related("questionnaire").order_by("questionnaire_id", "-number")


class AuditedPatientReadsMixin:
    """List and retrieve of patients' records, each read audited: a list names the patients on its page (and
    the patient filtered by), a detail the record. Rows serialize their patient's public id as `patient`."""

    audit_record = ""

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        audit_read(
            event=Event.LIST,
            patient_uuid=request.query_params.get("patient") or None,
            details={
                "record": self.audit_record,
                "patients": sorted({row["patient"] for row in response.data.get("results", [])}),
            },
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        record = self.get_object()
        audit_read(event=Event.VIEW, instance=record)
        return Response(self.get_serializer(record).data)


class QuestionnaireResponseViewSet(
    AuditedPatientReadsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Responses of the patients the caller may see; recording one checks and scores the answers."""

    audit_record = "questionnaireresponse"

    queryset = QuestionnaireResponse.objects.none()
    serializer_class = QuestionnaireResponseSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = ResponseFilter
    ordering_fields = ["created_at", "completed_at"]
    http_method_names = ["get", "post", "head", "options"]
    required_permissions = {
        "list": ["followups.view_questionnaireresponse"],
        "retrieve": ["followups.view_questionnaireresponse"],
        "create": ["followups.view_questionnaireresponse", "followups.add_questionnaireresponse"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return QuestionnaireResponse.objects.none()
        return (
            responses_visible_to(self.request.user)
            .select_related("patient", "version__questionnaire", "answered_by")
            .order_by("-created_at", "-pk")
        )

    def list(self, request, *args, **kwargs):
        """Responses, latest first; filtering by `patient` is an audited read of that patient's answers."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=QuestionnaireResponseCreateSerializer, responses={201: QuestionnaireResponseSerializer})
    def create(self, request, *args, **kwargs):
        """Record a patient's answers to a version; refused answers are named by linkId."""
        serializer = QuestionnaireResponseCreateSerializer(data=request.data)
        serializer.fields["patient"].queryset = patients_visible_to(request.user)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        answered = response_save(
            version=data["version"],
            patient=data["patient"],
            answers=data["answers"],
            source=data["source"],
            actor=request.user,
            complete=data["complete"],
        )
        answered = self.get_queryset().get(pk=answered.pk)
        return Response(QuestionnaireResponseSerializer(answered).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    """Add this app's viewsets to the API router."""
    router.register("questionnaires", QuestionnaireViewSet, basename="questionnaire")
    router.register("questionnaire-versions", QuestionnaireVersionViewSet, basename="questionnaire-version")
    router.register("questionnaire-responses", QuestionnaireResponseViewSet, basename="questionnaire-response")
    from followups import api_alerts

    api_alerts.register(router)


def urls() -> list:
    """API paths that are not viewsets."""
    return []
