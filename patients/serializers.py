"""Shapes of patient data over the API: input serializers validate shape, output ones mask."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from hcrm.masking import mask_text
from hcrm.models import Department, User
from patients.models import (
    Allergy,
    ClinicalHistory,
    Consent,
    ContactPerson,
    Diagnosis,
    Encounter,
    LabResult,
    MedicationOrder,
    Patient,
    PatientIdentifier,
    Procedure,
    Tag,
)
from patients.selectors import MASKERS, active_grant_patient_ids, contact_phone_masked
from patients.services import PATIENT_FIELDS


class MaskingMixin:
    """Masks sensitive fields of patients the requesting user may not see in full."""

    def _revealed(self, patient_id: int) -> bool:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None:
            return False
        if user.has_perm("patients.view_sensitive"):
            return True
        return patient_id in active_grant_patient_ids(user)


class IdentifierSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = PatientIdentifier
        fields = ["id", "kind", "assigner", "value"]


class ContactPersonSerializer(MaskingMixin, serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = ContactPerson
        fields = ["id", "name", "relationship", "phone", "is_emergency_contact"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self._revealed(instance.patient_id):
            data["name"] = mask_text(data["name"])
            data["phone"] = contact_phone_masked(data["phone"], False)
        return data


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ["purpose", "channel", "granted", "note", "updated_at"]


class PatientListSerializer(MaskingMixin, serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    age = serializers.IntegerField(read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = Patient
        fields = [
            "id",
            "mrn",
            "name",
            "name_pinyin",
            "sex",
            "birth_date",
            "age",
            "mobile",
            "national_id",
            "province",
            "city",
            "district",
            "source",
            "is_deceased",
            "tags",
            "updated_at",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self._revealed(instance.pk):
            for field, mask in MASKERS.items():
                if field in data:
                    data[field] = mask(data[field] or "")
        data["sensitive_revealed"] = self._revealed(instance.pk)
        return data


class PatientDetailSerializer(PatientListSerializer):
    identifiers = IdentifierSerializer(many=True, read_only=True)
    contact_persons = ContactPersonSerializer(many=True, read_only=True)
    consents = ConsentSerializer(many=True, read_only=True)
    departments = serializers.SlugRelatedField(slug_field="code", many=True, read_only=True)

    class Meta(PatientListSerializer.Meta):
        fields = [
            *PatientListSerializer.Meta.fields,
            "name_pinyin_initials",
            "phone",
            "email",
            "region_code",
            "address_detail",
            "postal_code",
            "employer",
            "occupation",
            "income_band",
            "marital_status",
            "ethnicity",
            "family_notes",
            "preferred_language",
            "deceased_date",
            "identifiers",
            "contact_persons",
            "consents",
            "departments",
            "created_at",
        ]


class PatientWriteSerializer(serializers.Serializer):
    """Input shape for creating or changing a patient; the service validates meaning."""

    mrn = serializers.CharField(max_length=32, required=False, allow_blank=True)
    name = serializers.CharField(max_length=100)
    sex = serializers.ChoiceField(choices=Patient._meta.get_field("sex").choices, required=False)
    birth_date = serializers.DateField(required=False, allow_null=True)
    national_id = serializers.CharField(max_length=18, required=False, allow_blank=True)
    mobile = serializers.CharField(max_length=20, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    province = serializers.CharField(max_length=30, required=False, allow_blank=True)
    city = serializers.CharField(max_length=30, required=False, allow_blank=True)
    district = serializers.CharField(max_length=30, required=False, allow_blank=True)
    region_code = serializers.RegexField(r"^\d{6}$", required=False, allow_blank=True)
    address_detail = serializers.CharField(max_length=200, required=False, allow_blank=True)
    postal_code = serializers.RegexField(r"^\d{6}$", required=False, allow_blank=True)
    employer = serializers.CharField(max_length=100, required=False, allow_blank=True)
    occupation = serializers.CharField(max_length=50, required=False, allow_blank=True)
    income_band = serializers.ChoiceField(choices=Patient._meta.get_field("income_band").choices, required=False)
    marital_status = serializers.ChoiceField(choices=Patient._meta.get_field("marital_status").choices, required=False)
    ethnicity = serializers.CharField(max_length=20, required=False, allow_blank=True)
    family_notes = serializers.CharField(required=False, allow_blank=True)
    source = serializers.ChoiceField(choices=Patient._meta.get_field("source").choices, required=False)
    preferred_language = serializers.ChoiceField(
        choices=Patient._meta.get_field("preferred_language").choices, required=False
    )
    is_deceased = serializers.BooleanField(required=False)
    deceased_date = serializers.DateField(required=False, allow_null=True)
    tags = serializers.SlugRelatedField(slug_field="name", queryset=Tag.objects.all(), many=True, required=False)
    departments = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Department.objects.filter(is_active=True),
        many=True,
        required=False,
        help_text=_("Departments caring for the patient; defaults to the creator's departments."),
    )

    def patient_data(self) -> dict:
        return {key: value for key, value in self.validated_data.items() if key in PATIENT_FIELDS}


class RevealSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=4, max_length=500)


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.CharField()
    flag = serializers.CharField()


# --- Records that belong to a patient ------------------------------------------------------------


class RecordSerializer(serializers.ModelSerializer):
    """Common shape: public ids for the record, its patient and its encounter."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.all())

    record_fields = ["id", "patient", "created_at", "updated_at"]


class ExternalRecordSerializer(RecordSerializer):
    record_fields = [*RecordSerializer.record_fields, "source_system", "external_id"]


def _encounter_field():
    return serializers.SlugRelatedField(
        slug_field="uuid", queryset=Encounter.objects.all(), required=False, allow_null=True
    )


def _staff_field():
    return serializers.SlugRelatedField(
        slug_field="uuid", queryset=User.objects.filter(is_active=True), required=False, allow_null=True
    )


class EncounterSerializer(ExternalRecordSerializer):
    department = serializers.SlugRelatedField(
        slug_field="code", queryset=Department.objects.all(), required=False, allow_null=True
    )
    doctor = _staff_field()

    class Meta:
        model = Encounter
        fields = [
            *ExternalRecordSerializer.record_fields,
            "kind",
            "status",
            "encounter_number",
            "department",
            "doctor",
            "doctor_name",
            "ward",
            "bed",
            "started_at",
            "ended_at",
            "chief_complaint",
        ]


class DiagnosisSerializer(ExternalRecordSerializer):
    encounter = _encounter_field()
    doctor = _staff_field()

    class Meta:
        model = Diagnosis
        fields = [
            *ExternalRecordSerializer.record_fields,
            "encounter",
            "system",
            "code",
            "name",
            "is_primary",
            "diagnosed_at",
            "doctor",
        ]


class ProcedureSerializer(ExternalRecordSerializer):
    encounter = _encounter_field()
    performer = _staff_field()

    class Meta:
        model = Procedure
        fields = [
            *ExternalRecordSerializer.record_fields,
            "encounter",
            "system",
            "code",
            "name",
            "is_surgery",
            "body_site",
            "performed_at",
            "performer",
            "performer_name",
            "note",
        ]


class LabResultSerializer(ExternalRecordSerializer):
    encounter = _encounter_field()

    class Meta:
        model = LabResult
        fields = [
            *ExternalRecordSerializer.record_fields,
            "encounter",
            "panel_code",
            "panel_name",
            "code_system",
            "code",
            "name",
            "value",
            "value_numeric",
            "unit",
            "reference_range",
            "abnormal_flag",
            "observed_at",
            "note",
        ]


class MedicationOrderSerializer(ExternalRecordSerializer):
    encounter = _encounter_field()
    prescriber = _staff_field()

    class Meta:
        model = MedicationOrder
        fields = [
            *ExternalRecordSerializer.record_fields,
            "encounter",
            "kind",
            "status",
            "name",
            "code",
            "dose",
            "route",
            "frequency",
            "days",
            "herbs",
            "decoction_instructions",
            "ordered_at",
            "prescriber",
        ]

    def validate_herbs(self, herbs):
        if not isinstance(herbs, list) or not all(isinstance(h, dict) and h.get("name") for h in herbs):
            raise serializers.ValidationError(_("Each herb needs at least a name."))
        return herbs


class AllergySerializer(ExternalRecordSerializer):
    class Meta:
        model = Allergy
        fields = [
            *ExternalRecordSerializer.record_fields,
            "substance",
            "code",
            "reaction",
            "severity",
            "is_active",
            "recorded_at",
        ]


class ClinicalHistorySerializer(ExternalRecordSerializer):
    class Meta:
        model = ClinicalHistory
        fields = [*ExternalRecordSerializer.record_fields, "kind", "content", "recorded_at"]
