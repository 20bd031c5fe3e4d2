"""API of the spreadsheet import: upload (runs the dry run), read the report, import."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from patients.models import ImportMode, PatientImport
from patients.services import imports as services

IMPORT_PERMISSIONS = ["patients.import_patients", "patients.add_patient", "patients.change_patient"]


class PatientImportSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    imported_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    good_rows = serializers.IntegerField(read_only=True)

    class Meta:
        model = PatientImport
        fields = [
            "id",
            "original_name",
            "file_format",
            "size",
            "sha256",
            "assigner",
            "status",
            "mode",
            "columns",
            "ignored_columns",
            "total_rows",
            "good_rows",
            "bad_rows",
            "created_count",
            "updated_count",
            "unchanged_count",
            "skipped_count",
            "review_count",
            "error",
            "uploaded_by",
            "imported_by",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class PatientImportDetailSerializer(PatientImportSerializer):
    report = serializers.JSONField(read_only=True, help_text=_("Every problem: row, field, code and message."))

    class Meta(PatientImportSerializer.Meta):
        fields = [*PatientImportSerializer.Meta.fields, "report"]
        read_only_fields = fields


class PatientImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=_("CSV (UTF-8 or GB18030) or XLSX, with a header row."))
    assigner = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class PatientImportRunSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=ImportMode.choices)


class PatientImportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Spreadsheets of patients: uploading one checks every row; `import` writes them through identity matching."""

    queryset = PatientImport.objects.none()
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    required_permissions = {"*": IMPORT_PERMISSIONS}
    filterset_fields: list[str] = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PatientImport.objects.none()
        imports = PatientImport.objects.select_related("uploaded_by", "imported_by")
        user = self.request.user
        if user.has_perm("patients.view_all_patients"):
            return imports
        return imports.filter(uploaded_by=user) if user.pk else imports.none()

    def get_serializer_class(self):
        return PatientImportSerializer if self.action == "list" else PatientImportDetailSerializer

    @extend_schema(request=PatientImportUploadSerializer, responses={201: PatientImportDetailSerializer})
    def create(self, request, *args, **kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > services.import_max_bytes() + 64 * 1024:
            raise ValidationError(
                {
                    "file": [
                        serializers.ErrorDetail(
                            _("Files up to %(limit)s MB can be imported.") % {"limit": settings.PATIENT_IMPORT_MAX_MB},
                            code="too_large",
                        )
                    ]
                }
            )
        serializer = PatientImportUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        patient_import = services.patient_import_create(
            actor=request.user, upload=upload, original_name=upload.name, assigner=serializer.validated_data["assigner"]
        )
        return Response(PatientImportDetailSerializer(patient_import).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=PatientImportRunSerializer,
        responses={202: PatientImportDetailSerializer},
        description=_("Starts the import in the background; read the import until its status is imported or failed."),
    )
    @action(detail=True, methods=["post"], url_path="import")
    def run(self, request, *args, **kwargs):
        patient_import = self.get_object()
        serializer = PatientImportRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        departments = list(request.user.departments.all()) if getattr(request.user, "pk", None) else []
        patient_import = services.patient_import_start(
            patient_import=patient_import,
            actor=request.user,
            mode=serializer.validated_data["mode"],
            default_departments=departments,
        )
        return Response(PatientImportDetailSerializer(patient_import).data, status=status.HTTP_202_ACCEPTED)


def register(router) -> None:
    router.register("patient-imports", PatientImportViewSet, basename="patientimport")
