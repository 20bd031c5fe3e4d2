"""REST API of the contact log: list and log contacts, read one, play its recording, review it."""

from __future__ import annotations

import django_filters
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from hcrm.audit import Event, audit_read
from patients.models import (
    ContactChannel,
    ContactDirection,
    ContactEntry,
    ContactOutcome,
    ContactPurpose,
    ContactReview,
    Patient,
)
from patients.selectors import patients_visible_to
from patients.selectors.contacts import (
    contact_reviews_visible,
    contacts_accessible_to,
    contacts_of_patient,
    contacts_visible_to,
    contacts_with_details,
    recording_playable,
)
from patients.services.contacts import contact_record, contact_review_record
from patients.views.recordings import recording_response

VIEW = "patients.view_contactentry"

# --- Serializers -------------------------------------------------------------------------------------------


class StaffReferenceSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    name = serializers.CharField(source="__str__", read_only=True)


class ContactReviewSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    reviewer = StaffReferenceSerializer(read_only=True)

    class Meta:
        model = ContactReview
        fields = ["id", "reviewer", "score", "comment", "created_at", "updated_at"]


class ContactReviewWriteSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5, help_text=_("1 (poor) to 5 (excellent)"))
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class ContactSerializer(serializers.ModelSerializer):
    """A contact as the caller may see it: the recording's address and the reviews only for those allowed."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    patient = serializers.UUIDField(source="patient.uuid", read_only=True)
    patient_name = serializers.CharField(source="patient.name", read_only=True)
    patient_mrn = serializers.CharField(source="patient.mrn", read_only=True)
    staff = StaffReferenceSerializer(read_only=True, allow_null=True)
    department = serializers.CharField(source="department.code", read_only=True, allow_null=True)
    message = serializers.UUIDField(source="message.uuid", read_only=True, allow_null=True)
    has_recording = serializers.SerializerMethodField()
    recording_url = serializers.SerializerMethodField()
    reviews = serializers.SerializerMethodField()

    class Meta:
        model = ContactEntry
        fields = [
            "id",
            "patient",
            "patient_name",
            "patient_mrn",
            "staff",
            "department",
            "channel",
            "direction",
            "purpose",
            "outcome",
            "occurred_at",
            "duration_seconds",
            "summary",
            "has_recording",
            "recording_url",
            "message",
            "reviews",
            "created_at",
        ]
        read_only_fields = fields

    def _user(self):
        return self.context["request"].user

    def get_has_recording(self, contact: ContactEntry) -> bool:
        return bool(contact.recording)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_recording_url(self, contact: ContactEntry) -> str | None:
        if not recording_playable(self._user(), contact):
            return None
        return self.context["request"].build_absolute_uri(reverse("contact-recording", kwargs={"id": contact.uuid}))

    @extend_schema_field(ContactReviewSerializer(many=True, allow_null=True))
    def get_reviews(self, contact: ContactEntry) -> list | None:
        if not contact_reviews_visible(self._user(), contact):
            return None
        return ContactReviewSerializer(contact.reviews.all(), many=True).data


class ContactWriteSerializer(serializers.Serializer):
    """A contact to log: JSON, or multipart form data to attach a recording."""

    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.none())
    channel = serializers.ChoiceField(choices=ContactChannel.choices)
    direction = serializers.ChoiceField(choices=ContactDirection.choices)
    purpose = serializers.ChoiceField(choices=ContactPurpose.choices)
    outcome = serializers.ChoiceField(choices=ContactOutcome.choices)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, help_text=_("Defaults to now."))
    duration_seconds = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=24 * 3600)
    summary = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    recording = serializers.FileField(
        required=False, allow_null=True, help_text=_("MP3, WAV, M4A, OGG, AMR or WebM audio, up to 50 MB.")
    )


# --- Filters -----------------------------------------------------------------------------------------------


class ContactFilter(django_filters.FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient__uuid", label=_("Patient id"))
    staff = django_filters.UUIDFilter(field_name="staff__uuid", label=_("Staff member id"))
    department = django_filters.CharFilter(field_name="department__code", label=_("Department code"))
    channel = django_filters.ChoiceFilter(choices=ContactChannel.choices)
    direction = django_filters.ChoiceFilter(choices=ContactDirection.choices)
    purpose = django_filters.ChoiceFilter(choices=ContactPurpose.choices)
    outcome = django_filters.ChoiceFilter(choices=ContactOutcome.choices)
    reviewed = django_filters.BooleanFilter(method="filter_reviewed", label=_("Reviewed at least once"))

    class Meta:
        model = ContactEntry
        fields = {"occurred_at": ["gte", "lte"]}

    def filter_reviewed(self, queryset, name, value):
        reviewed = Exists(ContactReview.objects.filter(contact=OuterRef("pk")))
        return queryset.filter(reviewed if value else ~reviewed)


class AnyAcceptNegotiation(DefaultContentNegotiation):
    """A recording is audio whatever a player's `Accept` says; DRF would answer 406 to `audio/*`."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


# --- Views -------------------------------------------------------------------------------------------------


class ContactViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The contact log. Listed without `patient`: the caller's own contacts and, for reviewers, their
    departments' staff's. With `patient`: every contact of a patient the caller may see.

    Contacts are a log: they are not changed or deleted through the API.
    """

    queryset = ContactEntry.objects.none()
    serializer_class = ContactSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = ContactFilter
    ordering_fields = ["occurred_at"]
    http_method_names = ["get", "post", "head", "options"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    required_permissions = {
        "list": [VIEW],
        "retrieve": [VIEW],
        "recording": [VIEW],
        "create": ["patients.add_contactentry"],
        "reviews": [VIEW, "patients.review_contactentry"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ContactEntry.objects.none()
        user = self.request.user
        if self.action == "list":
            patient_uuid = self._patient_filter()
            if patient_uuid is not None:
                contacts = contacts_of_patient(user, patient_uuid)[1]
            else:
                contacts = contacts_visible_to(user)
        else:
            contacts = contacts_accessible_to(user)
        return contacts_with_details(contacts).order_by("-occurred_at", "-id")

    def _patient_filter(self):
        value = self.request.query_params.get("patient")
        if not value:
            return None
        try:
            return serializers.UUIDField().to_internal_value(value)
        except serializers.ValidationError:
            raise ValidationError({"patient": [_("Not a valid patient id.")]}) from None

    def list(self, request, *args, **kwargs):
        """Contacts, newest first; with `patient`, every contact of that patient (an audited read of the patient)."""
        response = super().list(request, *args, **kwargs)
        patient_uuid = self._patient_filter()
        audit_read(
            event=Event.LIST,
            patient_uuid=patient_uuid,
            details={
                "record": "contactentry",
                "patients": sorted({row["patient"] for row in response.data.get("results", [])}),
            },
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        """One contact: your own, your departments' staff's, or one of a patient you may see."""
        contact = self.get_object()
        audit_read(event=Event.VIEW, instance=contact)
        return Response(self.get_serializer(contact).data)

    @extend_schema(
        request={"application/json": ContactWriteSerializer, "multipart/form-data": ContactWriteSerializer},
        responses={201: ContactSerializer},
    )
    def create(self, request, *args, **kwargs):
        """Log a contact with a patient you may see, as yourself; multipart form data attaches a recording."""
        serializer = ContactWriteSerializer(data=request.data)
        serializer.fields["patient"].queryset = patients_visible_to(request.user)
        serializer.is_valid(raise_exception=True)
        contact = contact_record(actor=request.user, **serializer.validated_data)
        contact = contacts_with_details(ContactEntry.objects.filter(pk=contact.pk)).get()
        return Response(self.get_serializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            (200, "audio/*"): OpenApiTypes.BINARY,
            (206, "audio/*"): OpenApiTypes.BINARY,
            416: OpenApiResponse(description=_("The requested range starts past the end of the recording.")),
        },
    )
    @action(detail=True, methods=["get"], content_negotiation_class=AnyAcceptNegotiation)
    def recording(self, request, id=None):
        """The call's recording, with `Range` support for seeking; each answer with audio is audited.

        Only the staff member who logged the contact, the reviewers of its
        department and administrators may play it.
        """
        contact = self.get_object()
        if not contact.recording:
            raise NotFound(_("This contact has no recording."))
        if not recording_playable(request.user, contact):
            raise PermissionDenied(_("Only the staff member and the department's reviewers may play this recording."))
        return recording_response(request, contact)

    @extend_schema(
        request=ContactReviewWriteSerializer, responses={200: ContactReviewSerializer, 201: ContactReviewSerializer}
    )
    @action(detail=True, methods=["post"])
    def reviews(self, request, id=None):
        """Score a contact of your departments' staff (1–5) with a comment; a second review replaces your first."""
        contact = self.get_object()
        serializer = ContactReviewWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        existed = ContactReview.objects.filter(contact=contact, reviewer=request.user).exists()
        review = contact_review_record(actor=request.user, contact=contact, **serializer.validated_data)
        return Response(
            ContactReviewSerializer(review).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )


def register(router) -> None:
    router.register("contacts", ContactViewSet, basename="contact")
