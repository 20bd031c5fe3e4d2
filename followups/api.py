"""REST API for questionnaires, their versions and responses, and research cohorts (DRF; thin: the services decide).

Questionnaires are the hospital's (no patient data): whoever may read them reads all. Responses are
scoped to the patients the caller may see, and every read of them is audited.
"""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from followups.models import (
    FollowUpChannel,
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireStatus,
    QuestionnaireVersion,
    ResearchCohort,
    ResponseStatus,
    ScheduleKind,
)
from followups.research_export import research_dictionary_response, research_export_response
from followups.selectors import cohorts_listed, lead_departments, questionnaires_for_department, responses_visible_to
from followups.services import cohort_save, response_save
from followups.services.responses import SOURCES
from hcrm.audit import Event, audit_read
from hcrm.models import Department, User
from hcrm.roles import Role
from patients.api.contacts import AnyAcceptNegotiation, StaffReferenceSerializer
from patients.models import Patient, Segment
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


# --- Research cohorts ------------------------------------------------------------------------------------


class ResearchCohortSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    principal_investigator = StaffReferenceSerializer(read_only=True)
    segment = serializers.UUIDField(source="segment.uuid", read_only=True)
    questionnaire = serializers.CharField(source="plan.questionnaire.code", read_only=True)
    channel = serializers.CharField(source="plan.channel", read_only=True)
    offsets = serializers.ListField(source="plan.offsets", child=serializers.IntegerField(), read_only=True)
    assignee_role = serializers.CharField(source="plan.assignee_role", read_only=True)
    assignee_department = serializers.CharField(source="plan.assignee_department.code", read_only=True, allow_null=True)
    retry_attempts = serializers.IntegerField(source="plan.retry_attempts", read_only=True)
    retry_spacing_hours = serializers.IntegerField(source="plan.retry_spacing_hours", read_only=True)
    member_count = serializers.IntegerField(read_only=True, help_text=_("Members still in the study."))
    withdrawn_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ResearchCohort
        fields = [
            "id",
            "name",
            "description",
            "principal_investigator",
            "ethics_approval",
            "segment",
            "questionnaire",
            "channel",
            "schedule_kind",
            "offsets",
            "interval_days",
            "start_date",
            "end_date",
            "assignee_role",
            "assignee_department",
            "retry_attempts",
            "retry_spacing_hours",
            "active",
            "member_count",
            "withdrawn_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ResearchCohortCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    principal_investigator = serializers.SlugRelatedField(
        slug_field="uuid", queryset=User.objects.filter(is_active=True), help_text=_("Staff id.")
    )
    ethics_approval = serializers.CharField(max_length=100)
    segment = serializers.SlugRelatedField(
        slug_field="uuid", queryset=Segment.objects.all(), help_text=_("Segment id.")
    )
    questionnaire = serializers.SlugRelatedField(
        slug_field="code", queryset=Questionnaire.objects.all(), help_text=_("Questionnaire code.")
    )
    channel = serializers.ChoiceField(choices=FollowUpChannel.choices)
    schedule_kind = serializers.ChoiceField(choices=ScheduleKind.choices, default=ScheduleKind.OFFSETS)
    offsets = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text=_("Days after enrolment (schedule `offsets`).")
    )
    interval_days = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    start_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True, default=None)
    # Checked by the service; a plain string keeps the schema free of a second staff-role enum.
    assignee_role = serializers.CharField(max_length=20, help_text=" | ".join(Role.values))
    assignee_department = serializers.SlugRelatedField(
        slug_field="code", queryset=Department.objects.filter(is_active=True), help_text=_("Department code.")
    )
    retry_attempts = serializers.IntegerField(min_value=1, max_value=20, default=3)
    retry_spacing_hours = serializers.IntegerField(min_value=1, default=24)
    active = serializers.BooleanField(default=True)


class ResearchExportQuerySerializer(serializers.Serializer):
    free_text = serializers.BooleanField(
        default=False, help_text=_("Include free-text answers (needs the permission to export free text).")
    )


class ResearchCohortViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Research cohorts: a segment followed up on a schedule; their answers exported under pseudonyms."""

    queryset = ResearchCohort.objects.none()
    serializer_class = ResearchCohortSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "head", "options"]
    required_permissions = {
        "list": ["followups.view_researchcohort"],
        "retrieve": ["followups.view_researchcohort"],
        "create": ["followups.view_researchcohort", "followups.add_researchcohort"],
        "export": ["followups.view_researchcohort", "followups.export_research"],
        "dictionary": ["followups.view_researchcohort", "followups.export_research"],
    }

    def get_queryset(self):
        return cohorts_listed().select_related("plan__assignee_department")

    @extend_schema(request=ResearchCohortCreateSerializer, responses={201: ResearchCohortSerializer})
    def create(self, request, *args, **kwargs):
        """Set a cohort up; errors name the fields. A department head names one of their departments."""
        serializer = ResearchCohortCreateSerializer(data=request.data)
        serializer.fields["assignee_department"].queryset = lead_departments(request.user)
        serializer.is_valid(raise_exception=True)
        cohort = cohort_save(actor=request.user, data=serializer.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=cohort.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[ResearchExportQuerySerializer],
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], content_negotiation_class=AnyAcceptNegotiation)
    def export(self, request, id=None):
        """The cohort's completed answers as CSV, one row per response, under pseudonyms (audited)."""
        return research_export_response(
            self.get_object(), request.user, file_format="csv", include_free_text=self._free_text(request)
        )

    @extend_schema(
        parameters=[ResearchExportQuerySerializer],
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], content_negotiation_class=AnyAcceptNegotiation)
    def dictionary(self, request, id=None):
        """The export's data dictionary as CSV: each column, and what its codes mean."""
        return research_dictionary_response(self.get_object(), request.user, include_free_text=self._free_text(request))

    @staticmethod
    def _free_text(request) -> bool:
        query = ResearchExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data["free_text"]


def register(router) -> None:
    """Add this app's viewsets to the API router."""
    router.register("questionnaires", QuestionnaireViewSet, basename="questionnaire")
    router.register("questionnaire-versions", QuestionnaireVersionViewSet, basename="questionnaire-version")
    router.register("questionnaire-responses", QuestionnaireResponseViewSet, basename="questionnaire-response")
    router.register("research-cohorts", ResearchCohortViewSet, basename="research-cohort")
    from followups import api_alerts

    api_alerts.register(router)


def urls() -> list:
    """API paths that are not viewsets."""
    return []
