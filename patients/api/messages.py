"""API of the outbox: messages, templates, and the SMS provider's receipts and inbound messages."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from hcrm.audit import Event, audit_read
from patients.models import (
    MessageChannel,
    MessagePriority,
    MessagePurpose,
    MessageStatus,
    MessageTemplate,
    OutboundMessage,
    Patient,
)
from patients.selectors.archive import patients_visible_to
from patients.selectors.messages import (
    MESSAGE_VARIABLES,
    messages_visible_to,
    template_preview_context,
    template_render,
)
from patients.services import messages as outbox


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    patient = serializers.UUIDField(source="patient.uuid", read_only=True)
    template = serializers.CharField(source="template.code", read_only=True, default=None)

    class Meta:
        model = OutboundMessage
        fields = [
            "id", "patient", "channel", "purpose", "priority", "template", "language", "to_address", "subject",
            "body", "idempotency_key", "source", "status", "status_reason", "not_before", "attempts", "provider_id",
            "sent_at", "delivered_at", "created_at", "updated_at",
        ]  # fmt: skip


class MessageSendSerializer(serializers.Serializer):
    """Input shape of `POST /api/v1/messages/`: the same call other modules make in Python."""

    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.all())
    channel = serializers.ChoiceField(choices=MessageChannel.choices)
    purpose = serializers.ChoiceField(choices=MessagePurpose.choices)
    template = serializers.SlugField(help_text=_("Template code; the patient's language is chosen."))
    context = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    idempotency_key = serializers.CharField(max_length=200)
    not_before = serializers.DateTimeField(required=False, allow_null=True)
    priority = serializers.ChoiceField(choices=MessagePriority.choices, required=False)


class WithdrawSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class MessageFilter(django_filters.FilterSet):
    patient = django_filters.UUIDFilter(field_name="patient__uuid")
    status = django_filters.MultipleChoiceFilter(choices=MessageStatus.choices)
    purpose = django_filters.ChoiceFilter(choices=MessagePurpose.choices)
    channel = django_filters.ChoiceFilter(choices=MessageChannel.choices)
    created_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    idempotency_key = django_filters.CharFilter()

    class Meta:
        model = OutboundMessage
        fields: list[str] = []


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Messages to patients the caller may see; queue one, withdraw a pending one, resend a failed one."""

    queryset = OutboundMessage.objects.none()
    serializer_class = MessageSerializer
    filterset_class = MessageFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    ordering_fields = ["created_at", "not_before", "sent_at"]
    required_permissions = {
        "list": ["patients.view_outboundmessage"],
        "retrieve": ["patients.view_outboundmessage"],
        "create": ["patients.add_outboundmessage"],
        "withdraw": ["patients.change_outboundmessage"],
        "resend": ["patients.change_outboundmessage"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OutboundMessage.objects.none()
        return messages_visible_to(self.request.user).order_by("-created_at", "-id")

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        audit_read(
            event=Event.LIST,
            details={
                "record": "message",
                "patients": sorted({row["patient"] for row in response.data["results"]}, key=str),
            },
        )
        return response

    def retrieve(self, request, *args, **kwargs):
        message = self.get_object()
        audit_read(event=Event.VIEW, instance=message)
        return Response(self.get_serializer(message).data)

    @extend_schema(request=MessageSendSerializer, responses={201: MessageSerializer, 200: MessageSerializer})
    def create(self, request, *args, **kwargs):
        """Queue a message. The same idempotency key returns the first message (200) instead of a new one (201)."""
        serializer = MessageSendSerializer(data=request.data)
        serializer.fields["patient"].queryset = patients_visible_to(request.user)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        existed = OutboundMessage.objects.filter(idempotency_key=data["idempotency_key"]).exists()
        message = outbox.message_send(
            patient=data["patient"],
            channel=data["channel"],
            purpose=data["purpose"],
            template=data["template"],
            context=data.get("context") or {},
            idempotency_key=data["idempotency_key"],
            not_before=data.get("not_before"),
            priority=data.get("priority", MessagePriority.NORMAL),
            actor=request.user,
            source="api",
        )
        if existed and message.patient_id != data["patient"].pk:
            raise ValidationError({"idempotency_key": [_("This key was used for another patient.")]})
        return Response(
            MessageSerializer(message).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    @extend_schema(request=WithdrawSerializer, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, id=None):
        """Stop a message that has not been sent; 409 when it already went."""
        message = self.get_object()
        serializer = WithdrawSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not outbox.message_withdraw(
            message=message, actor=request.user, reason=serializer.validated_data.get("reason", "")
        ):
            return Response(
                {"errors": [{"field": "status", "code": "too_late",
                             "message": str(_("This message is no longer pending: it is %(status)s.")
                                            % {"status": message.get_status_display()})}]},
                status=status.HTTP_409_CONFLICT,
            )  # fmt: skip
        return Response(MessageSerializer(message).data)

    @extend_schema(request=None, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request, id=None):
        """Queue a failed message again."""
        message = outbox.message_resend(actor=request.user, message=self.get_object())
        return Response(MessageSerializer(message).data)


class MessageTemplateSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)

    class Meta:
        model = MessageTemplate
        fields = ["id", "code", "name", "purpose", "channel", "language", "subject", "body", "is_active", "updated_at"]
        read_only_fields = ["updated_at"]
        validators: list = []  # uniqueness is the database's; the service reports it by field


class TemplatePreviewSerializer(serializers.Serializer):
    patient = serializers.SlugRelatedField(slug_field="uuid", queryset=Patient.objects.all(), required=False)
    context = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)


class MessageTemplateViewSet(viewsets.ModelViewSet):
    """Templates per code, channel and language; `{variables}` must be known ones (see `variables`)."""

    queryset = MessageTemplate.objects.order_by("code", "channel", "language")
    serializer_class = MessageTemplateSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_fields = ["code", "channel", "language", "purpose", "is_active"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_permissions = {
        "list": ["patients.view_messagetemplate"],
        "retrieve": ["patients.view_messagetemplate"],
        "variables": ["patients.view_messagetemplate"],
        "preview": ["patients.view_messagetemplate"],
        "create": ["patients.add_messagetemplate"],
        "partial_update": ["patients.change_messagetemplate"],
        "destroy": ["patients.delete_messagetemplate"],
    }

    def perform_create(self, serializer):
        serializer.instance = outbox.message_template_save(
            actor=self.request.user, data=dict(serializer.validated_data)
        )

    def perform_update(self, serializer):
        outbox.message_template_save(
            actor=self.request.user, template=serializer.instance, data=dict(serializer.validated_data)
        )

    def perform_destroy(self, instance):
        outbox.message_template_delete(actor=self.request.user, template=instance)

    @extend_schema(
        responses=inline_serializer(
            "TemplateVariable", {"name": serializers.CharField(), "description": serializers.CharField()}, many=True
        )
    )
    @action(detail=False, methods=["get"])
    def variables(self, request):
        """The variables templates may use."""
        return Response([{"name": name, "description": str(text)} for name, text in sorted(MESSAGE_VARIABLES.items())])

    @extend_schema(
        request=TemplatePreviewSerializer,
        responses=inline_serializer(
            "TemplatePreview", {"subject": serializers.CharField(), "body": serializers.CharField()}
        ),
    )
    @action(detail=True, methods=["post"])
    def preview(self, request, id=None):
        """The template filled in for a sample patient (or a made-up one)."""
        template = self.get_object()
        serializer = TemplatePreviewSerializer(data=request.data)
        serializer.fields["patient"].queryset = patients_visible_to(request.user)
        serializer.is_valid(raise_exception=True)
        variables = template_preview_context(
            serializer.validated_data.get("patient"), serializer.validated_data.get("context")
        )
        return Response(
            {"subject": template_render(template.subject, variables), "body": template_render(template.body, variables)}
        )


class ReceiptSerializer(serializers.Serializer):
    provider_id = serializers.CharField(max_length=120)
    status = serializers.ChoiceField(choices=[("delivered", _("Delivered")), ("failed", _("Failed"))])
    error = serializers.CharField(required=False, allow_blank=True, max_length=300)


class InboundSerializer(serializers.Serializer):
    sender = serializers.CharField(max_length=32)
    text = serializers.CharField(max_length=1000, allow_blank=True)
    received_at = serializers.DateTimeField(required=False)
    provider_id = serializers.CharField(max_length=120, required=False, allow_blank=True)


class ReceiptView(APIView):
    """Delivery receipts from the SMS provider (an integration key with the `messages.events` scope)."""

    required_permissions = {"POST": ["patients.report_message_events"]}

    @extend_schema(
        request=ReceiptSerializer(many=True),
        responses=inline_serializer("ReceiptResult", {"updated": serializers.IntegerField()}),
    )
    def post(self, request):
        serializer = ReceiptSerializer(data=_as_list(request.data), many=True)
        serializer.is_valid(raise_exception=True)
        updated = sum(
            outbox.message_receipt_record(
                provider_id=item["provider_id"], delivered=item["status"] == "delivered", error=item.get("error", "")
            )
            for item in serializer.validated_data
        )
        return Response({"updated": updated})


class InboundSmsView(APIView):
    """SMS from patients forwarded by the provider; 退订/TD/T/STOP withdraw consent to non-clinical SMS."""

    required_permissions = {"POST": ["patients.report_message_events"]}

    @extend_schema(
        request=InboundSerializer(many=True),
        responses=inline_serializer(
            "InboundResult", {"received": serializers.IntegerField(), "opt_outs": serializers.IntegerField()}
        ),
    )
    def post(self, request):
        serializer = InboundSerializer(data=_as_list(request.data), many=True)
        serializer.is_valid(raise_exception=True)
        received = [
            outbox.inbound_sms_receive(
                from_number=item["sender"],
                text=item["text"],
                received_at=item.get("received_at"),
                provider_id=item.get("provider_id", ""),
            )
            for item in serializer.validated_data
        ]
        return Response({"received": len(received), "opt_outs": sum(1 for sms in received if sms.is_opt_out)})


def _as_list(data):
    return data if isinstance(data, list) else [data]


def register(router) -> None:
    router.register("messages", MessageViewSet, basename="message")
    router.register("message-templates", MessageTemplateViewSet, basename="messagetemplate")


def urlpatterns():
    from django.urls import path

    return [
        path("message-events/receipts/", ReceiptView.as_view(), name="api-message-receipts"),
        path("message-events/inbound/", InboundSmsView.as_view(), name="api-message-inbound"),
    ]
