"""API of the duplicate review queue and patient merges: thin viewsets over the identity services."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from hcrm.audit import Event, audit_read
from patients.models import MatchCandidate, MatchStatus, Patient, PatientMerge
from patients.selectors import MASKERS
from patients.selectors.identity import match_candidates_visible_to, patient_merges_visible_to
from patients.serializers import MaskingMixin
from patients.services.identity import Decision, match_candidate_resolve, patient_merge_undo


class PatientSummarySerializer(MaskingMixin, serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = Patient
        fields = ["id", "mrn", "name", "name_pinyin", "sex", "birth_date", "mobile", "phone", "national_id"]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self._revealed(instance.pk):
            for field, mask in MASKERS.items():
                if field in data:
                    data[field] = mask(data[field] or "")
        return data


class MatchCandidateSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    patient_a = PatientSummarySerializer(read_only=True)
    patient_b = PatientSummarySerializer(read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    merge = serializers.SlugRelatedField(slug_field="uuid", read_only=True)

    class Meta:
        model = MatchCandidate
        fields = [
            "id",
            "patient_a",
            "patient_b",
            "reason",
            "score",
            "details",
            "source",
            "status",
            "decided_by",
            "decided_at",
            "merge",
            "created_at",
        ]
        read_only_fields = fields


class ResolveSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[Decision.MERGE, Decision.DIFFERENT])
    survivor = serializers.UUIDField(required=False, help_text=_("For a merge: which of the two records survives."))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    def validate(self, data):
        if data["decision"] == Decision.MERGE and not data.get("survivor"):
            raise ValidationError({"survivor": [_("Choose which of the two records survives.")]})
        return data


class PatientMergeSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    survivor = PatientSummarySerializer(read_only=True)
    prior = PatientSummarySerializer(read_only=True)
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)
    undone_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    moved = serializers.SerializerMethodField()

    class Meta:
        model = PatientMerge
        fields = [
            "id",
            "survivor",
            "prior",
            "actor",
            "reason",
            "source",
            "moved",
            "created_at",
            "undone_at",
            "undone_by",
        ]
        read_only_fields = fields

    def get_moved(self, merge: PatientMerge) -> dict[str, int]:
        """How many rows of each kind moved to the survivor."""
        return {
            label: sum(len(pks) for pks in fields.values()) for label, fields in merge.moved.get("rows", {}).items()
        }


def _patient_uuids(rows: list[dict], *keys: str) -> list[str]:
    return [str(row[key]["id"]) for row in rows for key in keys]


class MatchCandidateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Likely duplicates waiting for review (`?status=merged|different|all` for decided ones)."""

    queryset = MatchCandidate.objects.none()
    serializer_class = MatchCandidateSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filter_backends: list = []
    required_permissions = {
        "list": ["patients.view_matchcandidate"],
        "retrieve": ["patients.view_matchcandidate"],
        "resolve": ["patients.view_matchcandidate", "patients.resolve_matchcandidate"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return MatchCandidate.objects.none()
        status = self.request.query_params.get("status", MatchStatus.OPEN)
        if self.action != "list" or status == "all":
            status = None
        elif status not in MatchStatus.values:
            raise ValidationError({"status": [_("Choose open, merged, different or all.")]})
        return match_candidates_visible_to(self.request.user, status=status)

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        rows = response.data.get("results", [])
        audit_read(
            event=Event.LIST,
            details={"match_candidates": len(rows), "patients": _patient_uuids(rows, "patient_a", "patient_b")},
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        candidate = self.get_object()
        for patient in (candidate.patient_a, candidate.patient_b):
            audit_read(event=Event.VIEW, instance=patient, details={"match_candidate": str(candidate.uuid)})
        return Response(self.get_serializer(candidate).data)

    @extend_schema(request=ResolveSerializer, responses=MatchCandidateSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, id=None):
        """Merge the pair into the chosen survivor, or record that they are different people."""
        candidate = self.get_object()
        serializer = ResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        survivor = None
        if data["decision"] == Decision.MERGE:
            by_uuid = {candidate.patient_a.uuid: candidate.patient_a, candidate.patient_b.uuid: candidate.patient_b}
            survivor = by_uuid.get(data["survivor"])
            if survivor is None:
                raise ValidationError({"survivor": [_("The survivor must be one of the two patients of this pair.")]})
        match_candidate_resolve(
            candidate=candidate, decision=data["decision"], actor=request.user, survivor=survivor, reason=data["reason"]
        )
        candidate = MatchCandidate.objects.select_related("patient_a", "patient_b", "decided_by", "merge").get(
            pk=candidate.pk
        )
        return Response(self.get_serializer(candidate).data)


class PatientMergeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Merges of patients in the caller's departments, newest first; each one can be undone."""

    queryset = PatientMerge.objects.none()
    serializer_class = PatientMergeSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filter_backends: list = []
    required_permissions = {
        "list": ["patients.view_patientmerge"],
        "retrieve": ["patients.view_patientmerge"],
        "undo": ["patients.view_patientmerge", "patients.resolve_matchcandidate"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return PatientMerge.objects.none()
        return patient_merges_visible_to(self.request.user)

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        rows = response.data.get("results", [])
        audit_read(
            event=Event.LIST,
            details={"patient_merges": len(rows), "patients": _patient_uuids(rows, "survivor", "prior")},
        )
        return response

    @extend_schema(request=None, responses=PatientMergeSerializer)
    @action(detail=True, methods=["post"])
    def undo(self, request, id=None):
        """Give back to the merged patient everything the merge moved."""
        merge = self.get_object()
        patient_merge_undo(merge=merge, actor=request.user)
        merge = get_object_or_404(self.get_queryset(), pk=merge.pk)
        return Response(self.get_serializer(merge).data)


def register(router) -> None:
    router.register("match-candidates", MatchCandidateViewSet, basename="matchcandidate")
    router.register("patient-merges", PatientMergeViewSet, basename="patientmerge")
