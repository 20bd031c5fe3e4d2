"""REST API for alerts on answers (list, detail, acknowledge) and their rules (CRUD); thin: the services decide.

Alerts are scoped as in the console (`alerts_visible_to`) and every read of them is audited.
"""

from __future__ import annotations

import django_filters
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from followups.api import AuditedPatientReadsMixin
from followups.models import (
    Alert,
    AlertRule,
    AlertStatus,
    ConditionKind,
    EscalationTarget,
    Operator,
    Questionnaire,
    RecipientKind,
    Severity,
)
from followups.selectors import alert_rule_editable, alert_rules_visible_to, alerts_visible_to
from followups.services import alert_acknowledge, alert_rule_delete, alert_rule_save
from followups.services.alerts import RULE_FIELDS
from hcrm.models import Department
from hcrm.roles import Role
from patients.api.contacts import StaffReferenceSerializer

# --- Serializers ----------------------------------------------------------------------------------------


class AlertRuleSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    questionnaire = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    department = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)

    class Meta:
        model = AlertRule
        fields = ["id", *RULE_FIELDS, "created_at", "updated_at"]
        read_only_fields = fields


class AlertRuleWriteSerializer(serializers.Serializer):
    """The shape of a rule; whether it makes sense as a whole is the service's to say (errors name fields)."""

    name = serializers.CharField(max_length=120)
    active = serializers.BooleanField(default=True)
    questionnaire = serializers.SlugRelatedField(
        slug_field="code", queryset=Questionnaire.objects.all(), allow_null=True, required=False
    )
    department = serializers.SlugRelatedField(
        slug_field="code", queryset=Department.objects.all(), allow_null=True, required=False
    )
    condition = serializers.ChoiceField(choices=ConditionKind.choices)
    link_id = serializers.CharField(max_length=64, allow_blank=True, required=False)
    operator = serializers.ChoiceField(choices=Operator.choices, allow_blank=True, required=False)
    value = serializers.CharField(max_length=64, allow_blank=True, required=False)
    score_code = serializers.CharField(max_length=64, allow_blank=True, required=False)
    band = serializers.CharField(max_length=100, allow_blank=True, required=False)
    score_min = serializers.DecimalField(max_digits=9, decimal_places=2, allow_null=True, required=False)
    score_max = serializers.DecimalField(max_digits=9, decimal_places=2, allow_null=True, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.WARNING)
    recipient = serializers.ChoiceField(choices=RecipientKind.choices, default=RecipientKind.RESPONSIBLE_DOCTOR)
    recipient_role = serializers.ChoiceField(choices=Role.choices, allow_blank=True, required=False)
    escalate_after_minutes = serializers.IntegerField(min_value=1, required=False)
    escalate_to = serializers.ChoiceField(choices=EscalationTarget.choices, default=EscalationTarget.DEPARTMENT_HEAD)


class FindingSerializer(serializers.Serializer):
    link_id = serializers.CharField(required=False)
    score = serializers.CharField(required=False)
    question = serializers.CharField()
    question_en = serializers.CharField()
    answer = serializers.CharField()
    answer_en = serializers.CharField()


class AlertSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    rule = serializers.UUIDField(source="rule.uuid", read_only=True)
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    response = serializers.UUIDField(source="response.uuid", read_only=True)
    patient = serializers.UUIDField(source="patient.uuid", read_only=True)
    task = serializers.UUIDField(source="task.uuid", read_only=True, allow_null=True)
    department = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    recipient = StaffReferenceSerializer(read_only=True, allow_null=True)
    findings = FindingSerializer(many=True, read_only=True)
    acknowledged_by = StaffReferenceSerializer(read_only=True, allow_null=True)
    escalated_to = StaffReferenceSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "rule_name",
            "response",
            "patient",
            "task",
            "department",
            "recipient",
            "recipient_role",
            "severity",
            "summary",
            "findings",
            "status",
            "acknowledged_by",
            "acknowledged_at",
            "acknowledgement_note",
            "escalation_due_at",
            "escalation_level",
            "escalated_at",
            "escalated_to",
            "escalated_to_role",
            "created_at",
        ]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, help_text=_("What was done."))


# --- Filters --------------------------------------------------------------------------------------------


class AlertFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    department = django_filters.CharFilter(field_name="department__code", label=_("Department code"))
    patient = django_filters.UUIDFilter(field_name="patient__uuid", label=_("Patient id"))

    class Meta:
        model = Alert
        fields: list[str] = []


# --- Views ----------------------------------------------------------------------------------------------


class AlertViewSet(AuditedPatientReadsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Alerts the caller may see and acknowledge: their own, their departments' (heads), all (administrators)."""

    audit_record = "alert"

    queryset = Alert.objects.none()
    serializer_class = AlertSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_class = AlertFilter
    ordering_fields = ["created_at", "escalation_due_at"]
    http_method_names = ["get", "post", "head", "options"]
    required_permissions = {
        "list": ["followups.view_alert"],
        "retrieve": ["followups.view_alert"],
        "acknowledge": ["followups.view_alert", "followups.acknowledge_alert"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Alert.objects.none()
        return (
            alerts_visible_to(self.request.user)
            .select_related("rule", "response", "patient", "task", "department", "recipient")
            .select_related("acknowledged_by", "escalated_to")
            .order_by("-created_at", "-pk")
        )

    @extend_schema(request=AcknowledgeSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, id=None):
        """Acknowledge the alert, saying what was done; an acknowledged alert answers 400 (`status`)."""
        alert = self.get_object()
        serializer = AcknowledgeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alert = alert_acknowledge(alert=alert, actor=request.user, note=serializer.validated_data["note"])
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


class AlertRuleViewSet(viewsets.ModelViewSet):
    """Alert rules: department heads write those of their departments, administrators any."""

    queryset = AlertRule.objects.none()
    serializer_class = AlertRuleSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    filterset_fields = {"active": ["exact"], "condition": ["exact"], "severity": ["exact"]}
    ordering_fields = ["name", "updated_at"]
    required_permissions = {
        "list": ["followups.view_alertrule"],
        "retrieve": ["followups.view_alertrule"],
        "create": ["followups.add_alertrule"],
        "update": ["followups.change_alertrule"],
        "partial_update": ["followups.change_alertrule"],
        "destroy": ["followups.delete_alertrule"],
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertRule.objects.none()
        return alert_rules_visible_to(self.request.user).select_related("questionnaire", "department").order_by("name")

    def _editable(self) -> AlertRule:
        rule = self.get_object()
        if not alert_rule_editable(self.request.user, rule):
            raise Http404  # another department's rule is answered like one that does not exist
        return rule

    def _department_checked(self, data: dict) -> dict:
        user = self.request.user
        department = data.get("department")
        if alert_rule_editable(user, AlertRule(department=department)):
            return data
        raise serializers.ValidationError({"department": [_("Choose one of the departments you lead.")]})

    @extend_schema(request=AlertRuleWriteSerializer, responses={201: AlertRuleSerializer})
    def create(self, request, *args, **kwargs):
        serializer = AlertRuleWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = self._department_checked(dict(serializer.validated_data))
        rule = alert_rule_save(actor=request.user, data=data)
        return Response(AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AlertRuleWriteSerializer, responses=AlertRuleSerializer)
    def update(self, request, *args, **kwargs):
        rule = self._editable()
        serializer = AlertRuleWriteSerializer(data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "department" in data:
            self._department_checked(data)
        rule = alert_rule_save(actor=request.user, data=data, rule=rule)
        return Response(AlertRuleSerializer(rule).data)

    def destroy(self, request, *args, **kwargs):
        alert_rule_delete(actor=request.user, rule=self._editable())
        return Response(status=status.HTTP_204_NO_CONTENT)


def register(router) -> None:
    router.register("alerts", AlertViewSet, basename="alert")
    router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
