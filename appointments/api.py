"""REST API for schedules, slots, bookings and the waitlist (DRF; thin: the services decide).

A refused booking is an HTTP 400 in the project's error shape: the field it concerns and the rule
that refused it as the code (`{"field": "slot", "code": "full", ...}`).
"""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from appointments.models import (
    Appointment,
    AppointmentStatus,
    BookingChannel,
    CancelledBy,
    Schedule,
    ScheduleStatus,
    Slot,
    WaitlistEntry,
    WaitlistStatus,
)
from appointments.selectors import (
    appointments_visible_to,
    booking_department_ids,
    booking_policy,
    patients_bookable_by,
    schedules_visible_to,
    slot_free_places,
    waitlist_visible_to,
)
from appointments.services import (
    BookingDoor,
    appointment_book,
    appointment_cancel,
    appointment_check_in,
    appointment_confirm,
    appointment_hold,
    appointment_reschedule,
    waitlist_join,
    waitlist_leave,
)
from hcrm.audit import Event, audit_read
from patients.api.contacts import StaffReferenceSerializer
from patients.models import Patient

CHANNELS = tuple(BookingChannel.values)

# --- Serializers: output ------------------------------------------------------------------------------------


class PlacesSerializer(serializers.Serializer):
    online = serializers.IntegerField()
    phone = serializers.IntegerField()
    window = serializers.IntegerField()


class SlotSerializer(serializers.ModelSerializer):
    """A time slice of a session with its places per channel: what it holds, what is taken, what a booking
    through each channel could take now (0 when the session is stopped or not yet released online)."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    capacity = serializers.SerializerMethodField()
    taken = serializers.SerializerMethodField()
    free = serializers.SerializerMethodField()

    class Meta:
        model = Slot
        fields = ["id", "starts_at", "ends_at", "capacity", "taken", "free"]
        read_only_fields = fields

    @extend_schema_field(PlacesSerializer)
    def get_capacity(self, slot: Slot) -> dict[str, int]:
        return {channel: getattr(slot, f"capacity_{channel}") for channel in CHANNELS}

    @extend_schema_field(PlacesSerializer)
    def get_taken(self, slot: Slot) -> dict[str, int]:
        return {channel: getattr(slot, f"taken_{channel}") for channel in CHANNELS}

    @extend_schema_field(PlacesSerializer)
    def get_free(self, slot: Slot) -> dict[str, int]:
        policy, now = self.context["policy"], self.context["now"]
        return {channel: slot_free_places(slot, channel, policy, now) for channel in CHANNELS}


class ScheduleSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    doctor = StaffReferenceSerializer(read_only=True)
    department = serializers.CharField(source="department.code", read_only=True)
    department_name = serializers.CharField(source="department.name", read_only=True)
    slots = SlotSerializer(many=True, read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "doctor",
            "department",
            "department_name",
            "date",
            "session",
            "clinic_level",
            "location",
            "fee",
            "starts_at",
            "ends_at",
            "releases_at",
            "status",
            "stopped_reason",
            "slots",
        ]
        read_only_fields = fields


class AppointmentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    patient = serializers.UUIDField(source="patient.uuid", read_only=True)
    patient_name = serializers.CharField(source="patient.name", read_only=True)
    patient_mrn = serializers.CharField(source="patient.mrn", read_only=True)
    schedule = serializers.UUIDField(source="schedule.uuid", read_only=True)
    slot = serializers.UUIDField(source="slot.uuid", read_only=True)
    starts_at = serializers.DateTimeField(source="slot.starts_at", read_only=True)
    doctor = StaffReferenceSerializer(read_only=True)
    department = serializers.CharField(source="schedule.department.code", read_only=True)
    location = serializers.CharField(source="schedule.location", read_only=True)
    rescheduled_to = serializers.UUIDField(source="rescheduled_to.uuid", read_only=True, allow_null=True)

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "patient_name",
            "patient_mrn",
            "schedule",
            "slot",
            "starts_at",
            "doctor",
            "department",
            "location",
            "date",
            "channel",
            "pool",
            "status",
            "visit_number",
            "hold_expires_at",
            "booked_at",
            "checked_in_at",
            "cancelled_at",
            "cancelled_by",
            "cancel_reason",
            "rescheduled_to",
            "created_at",
        ]
        read_only_fields = fields


class WaitlistEntrySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    schedule = serializers.UUIDField(source="schedule.uuid", read_only=True)
    patient = serializers.UUIDField(source="patient.uuid", read_only=True)
    patient_name = serializers.CharField(source="patient.name", read_only=True)
    appointment = serializers.UUIDField(source="appointment.uuid", read_only=True, allow_null=True)

    class Meta:
        model = WaitlistEntry
        fields = [
            "id",
            "schedule",
            "patient",
            "patient_name",
            "channel",
            "status",
            "offered_at",
            "offer_expires_at",
            "appointment",
            "created_at",
        ]
        read_only_fields = fields


# --- Serializers: input -------------------------------------------------------------------------------------


class _ChannelField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(
            choices=BookingChannel.choices,
            help_text=_("Staff book by phone or at the window; other systems may also book online."),
            **kwargs,
        )


class AppointmentCreateSerializer(serializers.Serializer):
    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.none())
    slot = serializers.SlugRelatedField(slug_field="uuid", queryset=Slot.objects.none())
    channel = _ChannelField()
    hold = serializers.BooleanField(
        default=False, help_text=_("Only hold the place for a few minutes; `confirm` turns the hold into a booking.")
    )


class AppointmentCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


class AppointmentRescheduleSerializer(serializers.Serializer):
    slot = serializers.SlugRelatedField(slug_field="uuid", queryset=Slot.objects.none())


class WaitlistJoinSerializer(serializers.Serializer):
    schedule = serializers.SlugRelatedField(slug_field="uuid", queryset=Schedule.objects.none())
    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.none())
    channel = _ChannelField()


# --- Filters -----------------------------------------------------------------------------------------------


class ScheduleFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(field_name="department__code", label=_("Department code"))
    doctor = django_filters.UUIDFilter(field_name="doctor__uuid", label=_("Doctor id"))
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte", label=_("From date"))
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte", label=_("To date"))
    status = django_filters.ChoiceFilter(choices=ScheduleStatus.choices)

    class Meta:
        model = Schedule
        fields: list[str] = []


class AppointmentFilter(django_filters.FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient__uuid", label=_("Patient id"))
    doctor = django_filters.UUIDFilter(field_name="doctor__uuid", label=_("Doctor id"))
    department = django_filters.CharFilter(field_name="schedule__department__code", label=_("Department code"))
    date = django_filters.DateFilter(field_name="date")
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte", label=_("From date"))
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte", label=_("To date"))
    status = django_filters.ChoiceFilter(choices=AppointmentStatus.choices)

    class Meta:
        model = Appointment
        fields: list[str] = []


class WaitlistFilter(django_filters.FilterSet):
    schedule = django_filters.UUIDFilter(field_name="schedule__uuid", label=_("Clinic session id"))
    patient = django_filters.UUIDFilter(field_name="patient__uuid", label=_("Patient id"))
    status = django_filters.ChoiceFilter(choices=WaitlistStatus.choices)

    class Meta:
        model = WaitlistEntry
        fields: list[str] = []


# --- Helpers -----------------------------------------------------------------------------------------------


def _is_staff(user) -> bool:
    return isinstance(user, get_user_model())


def _door(request, channel: str) -> BookingDoor:
    """Staff book as themselves by phone or at the window; another system books for the patient."""
    if _is_staff(request.user):
        if channel == BookingChannel.ONLINE:
            raise ValidationError(
                {"channel": [serializers.ErrorDetail(_("Staff book by phone or at the window."), code="staff_channel")]}
            )
        return BookingDoor(channel=channel, actor=request.user)
    return BookingDoor(channel=channel)


def _bookable_slots(user):
    slots = Slot.objects.all()
    department_ids = booking_department_ids(user)
    if department_ids is not None:
        slots = slots.filter(schedule__department_id__in=sorted(department_ids))
    return slots


def _audit_listed(response, record: str, patient_uuid=None) -> None:
    audit_read(
        event=Event.LIST,
        patient_uuid=patient_uuid,
        details={"record": record, "patients": sorted({row["patient"] for row in response.data.get("results", [])})},
    )


# --- Views -------------------------------------------------------------------------------------------------


class ScheduleViewSet(viewsets.ReadOnlyModelViewSet):
    """Clinic sessions of every department with their slots and the places free per channel.

    Sessions hold no patient data: anyone who may read schedules reads every department's.
    """

    queryset = Schedule.objects.none()
    serializer_class = ScheduleSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = ScheduleFilter
    ordering_fields = ["date", "starts_at"]
    required_permissions = {"list": ["appointments.view_schedule"], "retrieve": ["appointments.view_schedule"]}

    def get_queryset(self):
        return (
            Schedule.objects.select_related("doctor", "department")
            .prefetch_related("slots")
            .order_by("date", "starts_at", "doctor_id")
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "policy": booking_policy(), "now": timezone.now()}


class AppointmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Bookings of the sessions of the caller's departments (agents, administrators and other systems: all).

    Bookings are never deleted: they are cancelled, moved or checked in through their actions.
    """

    queryset = Appointment.objects.none()
    serializer_class = AppointmentSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = AppointmentFilter
    ordering_fields = ["date", "visit_number", "created_at"]
    http_method_names = ["get", "post", "head", "options"]
    required_permissions = {
        "list": ["appointments.view_appointment"],
        "retrieve": ["appointments.view_appointment"],
        "create": ["appointments.view_appointment", "appointments.add_appointment"],
        "confirm": ["appointments.view_appointment", "appointments.add_appointment"],
        "cancel": ["appointments.view_appointment", "appointments.change_appointment"],
        "reschedule": ["appointments.view_appointment", "appointments.change_appointment"],
        "check_in": ["appointments.view_appointment", "appointments.check_in_appointment"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Appointment.objects.none()
        return (
            appointments_visible_to(self.request.user)
            .select_related("patient", "slot", "schedule__department", "doctor", "rescheduled_to")
            .order_by("-date", "slot__starts_at", "visit_number", "pk")
        )

    def _output(self, appointment: Appointment, code: int = status.HTTP_200_OK) -> Response:
        appointment = self.get_queryset().get(pk=appointment.pk)
        return Response(AppointmentSerializer(appointment).data, status=code)

    def list(self, request, *args, **kwargs):
        """Bookings, latest day first; filtering by `patient` is an audited read of that patient's bookings."""
        response = super().list(request, *args, **kwargs)
        _audit_listed(response, "appointment", patient_uuid=request.query_params.get("patient") or None)
        return response

    def retrieve(self, request, *args, **kwargs):
        appointment = self.get_object()
        audit_read(event=Event.VIEW, instance=appointment)
        return Response(self.get_serializer(appointment).data)

    @extend_schema(request=AppointmentCreateSerializer, responses={201: AppointmentSerializer})
    def create(self, request, *args, **kwargs):
        """Book a patient into a slot (or only hold it with `hold`); refused bookings name the rule."""
        serializer = AppointmentCreateSerializer(data=request.data)
        serializer.fields["patient"].queryset = patients_bookable_by(request.user)
        serializer.fields["slot"].queryset = _bookable_slots(request.user)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        door = _door(request, data["channel"])
        book = appointment_hold if data["hold"] else appointment_book
        appointment = book(patient=data["patient"], slot=data["slot"], door=door)
        return self._output(appointment, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: AppointmentSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request, id=None):
        """Turn a hold into a booking with the session's next visit number."""
        appointment = self.get_object()
        door = BookingDoor(channel=appointment.channel, actor=request.user if _is_staff(request.user) else None)
        return self._output(appointment_confirm(appointment=appointment, door=door))

    @extend_schema(request=AppointmentCancelSerializer, responses={200: AppointmentSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, id=None):
        """Cancel on the patient's behalf: staff may cancel after the patient's deadline, other systems may not."""
        appointment = self.get_object()
        serializer = AppointmentCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        staff = _is_staff(request.user)
        cancelled = appointment_cancel(
            appointment=appointment,
            by=CancelledBy.STAFF if staff else CancelledBy.PATIENT,
            actor=request.user if staff else None,
            reason=serializer.validated_data["reason"],
        )
        return self._output(cancelled)

    @extend_schema(request=AppointmentRescheduleSerializer, responses={200: AppointmentSerializer})
    @action(detail=True, methods=["post"])
    def reschedule(self, request, id=None):
        """Move a booking to another slot; if the new place cannot be had, the booking stays as it was.
        The answer is the new booking."""
        appointment = self.get_object()
        serializer = AppointmentRescheduleSerializer(data=request.data)
        serializer.fields["slot"].queryset = _bookable_slots(request.user)
        serializer.is_valid(raise_exception=True)
        if _is_staff(request.user):
            # A booking made online and moved by staff takes its new place from the phone share.
            channel = BookingChannel.PHONE if appointment.channel == BookingChannel.ONLINE else appointment.channel
            door = BookingDoor(channel=channel, actor=request.user)
        else:
            door = BookingDoor(channel=appointment.channel)
        moved = appointment_reschedule(appointment=appointment, slot=serializer.validated_data["slot"], door=door)
        return self._output(moved)

    @extend_schema(request=None, responses={200: AppointmentSerializer})
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request, id=None):
        """Record the patient's arrival on the day of the appointment."""
        appointment = self.get_object()
        actor = request.user if _is_staff(request.user) else None
        return self._output(appointment_check_in(appointment=appointment, actor=actor))


class WaitlistViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """The waitlist (候补) of full sessions: join, list, leave."""

    queryset = WaitlistEntry.objects.none()
    serializer_class = WaitlistEntrySerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = WaitlistFilter
    ordering_fields = ["created_at"]
    http_method_names = ["get", "post", "head", "options"]
    required_permissions = {
        "list": ["appointments.view_waitlistentry"],
        "create": ["appointments.view_waitlistentry", "appointments.add_waitlistentry"],
        "leave": ["appointments.view_waitlistentry", "appointments.change_waitlistentry"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WaitlistEntry.objects.none()
        return (
            waitlist_visible_to(self.request.user)
            .select_related("schedule", "patient", "appointment")
            .order_by("schedule_id", "created_at", "pk")
        )

    def _output(self, entry: WaitlistEntry, code: int = status.HTTP_200_OK) -> Response:
        return Response(WaitlistEntrySerializer(self.get_queryset().get(pk=entry.pk)).data, status=code)

    def list(self, request, *args, **kwargs):
        """Waitlist entries of the sessions the caller may see, in the order they joined."""
        response = super().list(request, *args, **kwargs)
        _audit_listed(response, "waitlistentry", patient_uuid=request.query_params.get("patient") or None)
        return response

    @extend_schema(request=WaitlistJoinSerializer, responses={201: WaitlistEntrySerializer})
    def create(self, request, *args, **kwargs):
        """Put a patient in a session's queue; joining again answers the place already held in the queue."""
        serializer = WaitlistJoinSerializer(data=request.data)
        serializer.fields["patient"].queryset = patients_bookable_by(request.user)
        serializer.fields["schedule"].queryset = schedules_visible_to(request.user)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        entry = waitlist_join(schedule=data["schedule"], patient=data["patient"], door=_door(request, data["channel"]))
        return self._output(entry, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: WaitlistEntrySerializer})
    @action(detail=True, methods=["post"])
    def leave(self, request, id=None):
        """Leave the queue; a place on offer goes to the next patient."""
        entry = self.get_object()
        actor = request.user if _is_staff(request.user) else None
        return self._output(waitlist_leave(entry=entry, actor=actor))


def register(router) -> None:
    """Add this app's viewsets to the API router."""
    router.register("schedules", ScheduleViewSet, basename="schedule")
    router.register("appointments", AppointmentViewSet, basename="appointment")
    router.register("waitlist", WaitlistViewSet, basename="waitlist-entry")


def urls() -> list:
    """API paths that are not viewsets."""
    return []
