"""Alerts on answers: the rules that watch completed responses, the alerts they raise, and the staff messages.

A rule fires on an item's answer (a comparison), on a score's band or range, or on a red flag (a score
landing in a band flagged "alert", as the built-in questionnaires mark their danger signs). An alert is
unique per (rule, response), so evaluating a response twice raises nothing new. Each alert must be
acknowledged; an unacknowledged one is escalated when its deadline passes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from followups.models.plans import FollowUpTask, _valid
from followups.models.questionnaires import Questionnaire, QuestionnaireResponse
from hcrm.models import BaseModel, Department
from hcrm.roles import Role
from patients.models import Patient, PatientRecord


class ConditionKind(models.TextChoices):
    ANSWER = "answer", _("An item's answer")
    SCORE_BAND = "score_band", _("A score's band or range")
    RED_FLAG = "red_flag", _("A red-flag answer")


class Operator(models.TextChoices):
    LE = "<=", "≤"
    LT = "<", "<"
    GE = ">=", "≥"
    GT = ">", ">"
    EQ = "=", "="
    NE = "!=", "≠"


class Severity(models.TextChoices):
    INFO = "info", pgettext_lazy("severity", "Information")
    WARNING = "warning", pgettext_lazy("severity", "Warning")
    CRITICAL = "critical", pgettext_lazy("severity", "Critical")


class RecipientKind(models.TextChoices):
    RESPONSIBLE_DOCTOR = "doctor", _("The responsible doctor")
    DEPARTMENT_HEAD = "department_head", _("The department head")
    ROLE = "role", _("A role in the department")


class EscalationTarget(models.TextChoices):
    DEPARTMENT_HEAD = "department_head", _("The department head")
    ADMINISTRATORS = "administrators", _("Administrators")


class AlertRule(BaseModel):
    """When a completed response needs someone: the condition, how serious it is, who hears, who is told next."""

    name = models.CharField(pgettext_lazy("rule", "name"), max_length=120, unique=True)
    active = models.BooleanField(_("active"), default=True)
    questionnaire = models.ForeignKey(
        Questionnaire,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="alert_rules",
        verbose_name=_("questionnaire"),
        help_text=_("Empty: responses to any questionnaire."),
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="alert_rules",
        verbose_name=_("department"),
        help_text=_("Only responses of this department's follow-ups; empty: every department."),
    )
    condition = models.CharField(_("condition"), max_length=12, choices=ConditionKind.choices)
    link_id = models.CharField(
        _("item (linkId)"), max_length=64, blank=True, help_text=_("* compares the answer of every scored item.")
    )
    operator = models.CharField(_("operator"), max_length=2, choices=Operator.choices, blank=True)
    value = models.CharField(
        pgettext_lazy("comparison", "value"),
        max_length=64,
        blank=True,
        help_text=_("Compared with the answer's score when it has one, else with the answer (an option's code)."),
    )
    score_code = models.CharField(pgettext_lazy("questionnaire", "score"), max_length=64, blank=True)
    band = models.CharField(
        _("band"), max_length=100, blank=True, help_text=_("The band's label, Chinese or English; or give a range.")
    )
    score_min = models.DecimalField(
        pgettext_lazy("range", "from"), max_digits=9, decimal_places=2, null=True, blank=True
    )
    score_max = models.DecimalField(pgettext_lazy("range", "to"), max_digits=9, decimal_places=2, null=True, blank=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices, default=Severity.WARNING)
    recipient = models.CharField(
        _("alert goes to"), max_length=16, choices=RecipientKind.choices, default=RecipientKind.RESPONSIBLE_DOCTOR
    )
    recipient_role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    escalate_after_minutes = models.PositiveIntegerField(
        _("escalate after (minutes)"), help_text=_("Unacknowledged this long, the alert is escalated.")
    )
    escalate_to = models.CharField(
        _("escalate to"), max_length=16, choices=EscalationTarget.choices, default=EscalationTarget.DEPARTMENT_HEAD
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")
        ordering = ["name"]
        constraints = [
            _valid("condition", ConditionKind, "alert_rule_condition_valid"),
            _valid("severity", Severity, "alert_rule_severity_valid"),
            _valid("recipient", RecipientKind, "alert_rule_recipient_valid"),
            _valid("escalate_to", EscalationTarget, "alert_rule_escalate_to_valid"),
            models.CheckConstraint(
                condition=Q(operator="") | Q(operator__in=Operator.values), name="alert_rule_operator_valid"
            ),
            models.CheckConstraint(condition=Q(escalate_after_minutes__gte=1), name="alert_rule_escalation_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class AlertStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("alert", "Open")
    ESCALATED = "escalated", _("Escalated")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")


UNACKNOWLEDGED = (AlertStatus.OPEN, AlertStatus.ESCALATED)


class Alert(PatientRecord):
    """One rule fired by one response: for a person (or a role of a department) to acknowledge, with a deadline."""

    Status = AlertStatus

    rule = models.ForeignKey(AlertRule, on_delete=models.PROTECT, related_name="alerts", verbose_name=_("rule"))
    response = models.ForeignKey(
        QuestionnaireResponse, on_delete=models.CASCADE, related_name="alerts", verbose_name=_("response")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="followup_alerts", verbose_name=_("patient"), db_index=False
    )
    task = models.ForeignKey(
        FollowUpTask,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        verbose_name=_("follow-up task"),
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followup_alerts",
        verbose_name=_("department"),
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followup_alerts",
        verbose_name=_("recipient"),
    )
    recipient_role = models.CharField(
        _("recipient role"), max_length=20, choices=Role.choices, blank=True, help_text=_("When nobody is named.")
    )
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    summary = models.TextField(_("summary"))
    # What fired the rule: [{"link_id", "question", "question_en", "answer", "answer_en"}] or a score's value.
    findings = models.JSONField(_("findings"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledgement_note = models.TextField(_("what was done"), blank=True)
    escalation_due_at = models.DateTimeField(_("escalated if not acknowledged by"), null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(_("escalation level"), default=0)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("escalated to"),
    )
    escalated_to_role = models.CharField(_("escalated to role"), max_length=20, choices=Role.choices, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("acknowledge_alert", _("Can acknowledge follow-up alerts")),
            ("view_department_alert", _("Can see the follow-up alerts of own departments")),
        ]
        indexes = [
            models.Index(fields=["recipient", "status", "-created_at"], name="alert_recipient_status"),
            models.Index(fields=["department", "status", "-created_at"], name="alert_department_status"),
            models.Index(fields=["patient", "-created_at"], name="alert_patient_created"),
            models.Index(
                fields=["escalation_due_at"], name="alert_escalation_due", condition=Q(status__in=["open", "escalated"])
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["rule", "response"], name="alert_once_per_rule_response"),
            _valid("status", AlertStatus, "alert_status_valid"),
            _valid("severity", Severity, "alert_severity_valid"),
            models.CheckConstraint(
                condition=~Q(status=AlertStatus.ACKNOWLEDGED)
                | Q(acknowledged_at__isnull=False, acknowledged_by__isnull=False),
                name="alert_acknowledged_has_who_and_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.patient_id} {self.status}"

    @property
    def is_acknowledged(self) -> bool:
        return self.status == AlertStatus.ACKNOWLEDGED


class AlertMessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    NO_ADDRESS = "no_address", _("No phone or email; shown in the console only")


class AlertMessage(BaseModel):
    """A message to a member of staff about an alert (SMS to their phone, else email), at most once per key.

    The patients' outbox applies patients' consent, quiet hours and contact logging; a message to
    staff about their work needs none of those, so it has this small outbox of its own, on the same
    channel backends.
    """

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="messages", verbose_name=_("alert"))
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("recipient")
    )
    channel = models.CharField(_("channel"), max_length=10, blank=True)
    to_address = models.CharField(pgettext_lazy("recipient", "to"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    status = models.CharField(
        _("status"), max_length=12, choices=AlertMessageStatus.choices, default=AlertMessageStatus.QUEUED
    )
    status_reason = models.CharField(_("reason"), max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    provider_id = models.CharField(_("provider's id"), max_length=120, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert message")
        verbose_name_plural = _("alert messages")
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["created_at"], name="alert_message_queued", condition=Q(status="queued"))]
        constraints = [_valid("status", AlertMessageStatus, "alert_message_status_valid")]

    def __str__(self) -> str:
        return f"{self.idempotency_key} [{self.status}]"
