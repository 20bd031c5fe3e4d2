"""API of segments, outreach settings and patient statistics: thin viewsets over services and selectors."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from hcrm.audit import Event, audit_read
from hcrm.rest import Pagination
from patients import exports
from patients.api.archive import FileFormatNegotiation
from patients.models import OutreachSettings, Patient, Segment
from patients.selectors import patients_visible_to
from patients.selectors.outreach import outreach_settings
from patients.selectors.segments import SegmentFiltersSerializer, segment_filters_clean, segment_patients
from patients.serializers import PatientListSerializer
from patients.services import outreach, stats
from patients.services import segments as services
from patients.tasks.segments import patient_stats_recompute_start


class SegmentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    filters = SegmentFiltersSerializer(read_only=True)

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "filters",
            "owner",
            "last_count",
            "last_counted_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["filters"] = instance.filters  # stored in canonical form already
        return data


class SegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True)
    filters = SegmentFiltersSerializer(required=False)

    def service_data(self) -> dict:
        data = dict(self.validated_data)
        if "filters" in data:
            data["filters"] = self.initial_data["filters"]  # the service validates and stores it canonically
        return data


class SegmentCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    counted_at = serializers.DateTimeField(required=False)


class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Saved patient filters: counted by anyone who may see segments, listed and exported by those who may see members."""

    queryset = Segment.objects.none()
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["name", "created_at", "last_count"]
    required_permissions = {
        "list": ["patients.view_segment"],
        "retrieve": ["patients.view_segment"],
        "count": ["patients.view_segment"],
        "preview": ["patients.view_segment"],
        "members": ["patients.view_segment", "patients.view_segment_members"],
        "export": ["patients.view_segment", "patients.view_segment_members"],
        "create": ["patients.add_segment"],
        "update": ["patients.change_segment"],
        "partial_update": ["patients.change_segment"],
        "destroy": ["patients.delete_segment"],
    }

    def get_queryset(self):
        return Segment.objects.select_related("owner").order_by("name")

    def get_serializer_class(self):
        if self.action in ("create", "partial_update", "update"):
            return SegmentWriteSerializer
        return SegmentSerializer

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "check_references": True}

    @extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = services.segment_create(actor=request.user, **serializer.service_data())
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentWriteSerializer, responses=SegmentSerializer)
    def update(self, request, *args, **kwargs):
        segment = self.get_object()
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.segment_update(actor=request.user, segment=segment, data=serializer.service_data())
        return Response(SegmentSerializer(segment).data)

    def destroy(self, request, *args, **kwargs):
        services.segment_delete(actor=request.user, segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=SegmentCountSerializer)
    @action(detail=True, methods=["get"])
    def count(self, request, id=None):
        """How many patients the segment holds now (all departments); the figure is kept for the list."""
        segment = self.get_object()
        count = services.segment_count(segment=segment)
        return Response({"count": count, "counted_at": segment.last_counted_at})

    @extend_schema(request=SegmentFiltersSerializer, responses=SegmentCountSerializer)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """Count the patients an unsaved filter spec would hold."""
        spec = segment_filters_clean(request.data)
        return Response({"count": segment_patients(spec).count()})

    def _members(self, segment: Segment):
        return segment_patients(segment.filters, patients=patients_visible_to(self.request.user))

    @extend_schema(responses=PatientListSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=Pagination)
    def members(self, request, id=None):
        """The segment's patients the caller may see (their departments, or all), masked as their role requires."""
        segment = self.get_object()
        patients = self._members(segment).prefetch_related("tags").order_by("mrn")
        page = self.paginate_queryset(patients)
        data = PatientListSerializer(page, many=True, context=self.get_serializer_context()).data
        audit_read(
            event=Event.LIST,
            instance=segment,
            details={"segment": str(segment.uuid), "patients": [row["id"] for row in data]},
        )
        return self.get_paginated_response(data)

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["csv", "xlsx"])],
        responses={(200, "text/csv"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileFormatNegotiation)
    def export(self, request, id=None):
        """The segment's patients the caller may see, as CSV or XLSX, masked as their role requires."""
        file_format = request.query_params.get("format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise ValidationError({"format": [_("Choose csv or xlsx.")]})
        segment = self.get_object()
        return exports.export_response(
            self._members(segment).order_by("mrn"),
            request.user,
            file_format=file_format,
            filename=f"segment-{segment.uuid}",
            details={"segment": str(segment.uuid)},
            instance=segment,
        )


# --- Outreach settings ---------------------------------------------------------------------------------


class OutreachSettingsSerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    rfm_recency_days = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4)
    rfm_frequency_visits = serializers.ListField(child=serializers.IntegerField(), min_length=4, max_length=4)
    rfm_monetary_yuan = serializers.ListField(
        child=serializers.DecimalField(max_digits=12, decimal_places=2, coerce_to_string=False),
        min_length=4,
        max_length=4,
    )

    class Meta:
        model = OutreachSettings
        fields = [
            "quiet_hours_start",
            "quiet_hours_end",
            "daily_message_cap",
            "rfm_window_days",
            "rfm_recency_days",
            "rfm_frequency_visits",
            "rfm_monetary_yuan",
            "updated_at",
            "updated_by",
        ]
        read_only_fields = ["updated_at", "updated_by"]


class OutreachSettingsViewSet(viewsets.GenericViewSet):
    """The hospital's outreach settings, one resource: quiet hours, daily message cap, RFM window and boundaries."""

    queryset = OutreachSettings.objects.none()
    serializer_class = OutreachSettingsSerializer
    pagination_class = None
    required_permissions = {
        "GET": ["patients.view_outreachsettings"],
        "HEAD": ["patients.view_outreachsettings"],
        "OPTIONS": ["patients.view_outreachsettings"],
        "PATCH": ["patients.change_outreachsettings"],
    }

    # A router routes a collection URL only to a viewset with `list`, and only GET to it. This resource
    # is one row, so its collection URL is the resource: `as_view` answers GET with `read`, PATCH with
    # `change` (names that also keep the router from adding a detail URL).
    list = None

    @classmethod
    def as_view(cls, actions=None, **initkwargs):
        if actions == {"get": "list"}:
            actions = {"get": "read", "patch": "change"}
        return super().as_view(actions, **initkwargs)

    @extend_schema(responses=OutreachSettingsSerializer)
    def read(self, request):
        return Response(OutreachSettingsSerializer(outreach_settings()).data)

    @extend_schema(request=OutreachSettingsSerializer, responses=OutreachSettingsSerializer)
    def change(self, request):
        serializer = OutreachSettingsSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        row = outreach.outreach_settings_update(actor=request.user, data=dict(serializer.validated_data))
        return Response(OutreachSettingsSerializer(row).data)


class PatientStatsRecomputeSerializer(serializers.Serializer):
    patients = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        max_length=1000,
        help_text=_("Public ids of patients to recompute now; leave out to queue a run over every patient."),
    )


class PatientStatsViewSet(viewsets.GenericViewSet):
    """Visits, spending and RFM scores are recomputed nightly; administrators may start a run now."""

    queryset = Patient.objects.none()
    serializer_class = PatientStatsRecomputeSerializer
    pagination_class = None
    required_permissions = {"recompute": ["patients.change_outreachsettings"]}

    @extend_schema(
        request=PatientStatsRecomputeSerializer,
        responses={
            200: inline_serializer("PatientStatsRecomputed", {"recomputed": serializers.IntegerField()}),
            202: inline_serializer("PatientStatsQueued", {"queued": serializers.BooleanField()}),
        },
    )
    @action(detail=False, methods=["post"])
    def recompute(self, request):
        """With `patients`, recompute those patients now; without, queue a run over every patient."""
        serializer = PatientStatsRecomputeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        uuids = serializer.validated_data.get("patients")
        if uuids:
            ids = list(Patient.objects.filter(uuid__in=uuids).values_list("pk", flat=True))
            return Response({"recomputed": stats.patient_stats_recompute(patient_ids=ids)})
        return Response({"queued": patient_stats_recompute_start()}, status=status.HTTP_202_ACCEPTED)


def register(router) -> None:
    router.register("segments", SegmentViewSet, basename="segment")
    router.register("outreach-settings", OutreachSettingsViewSet, basename="outreachsettings")
    router.register("patient-stats", PatientStatsViewSet, basename="patientstats")
