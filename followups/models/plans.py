"""Follow-up plans (rules: when, how, by whom) and the tasks they make for each patient.

A task is unique per (patient, plan, offset, source record): a trigger that fires twice, an HL7
discharge delivered twice and the periodic sweep all insert against that constraint and create
nothing new. One-off tasks have no plan, and so never collide.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from followups.models.questionnaires import Questionnaire, QuestionnaireResponse
from hcrm.models import BaseModel, Department
from hcrm.roles import Role
from patients.models import Patient, PatientRecord, Segment


class TriggerKind(models.TextChoices):
    DISCHARGE = "discharge", _("Inpatient discharge")
    OUTPATIENT_VISIT = "outpatient_visit", _("Outpatient visit")
    DIAGNOSIS = "diagnosis", _("Diagnosis")
    PROCEDURE = "procedure", _("Procedure")
    SEGMENT = "segment", _("Membership of a segment")
    MANUAL = "manual", _("Manual")
    RESEARCH = "research", _("Research cohort")


class DiagnosisSystem(models.TextChoices):
    WESTERN = "western", _("Western (ICD-10)")
    TCM = "tcm", _("TCM disease or syndrome")


class FollowUpChannel(models.TextChoices):
    PHONE = "phone", _("Phone")
    SMS = "sms", _("SMS link")
    EMAIL = "email", _("Email link")
    LETTER = "letter", _("Letter")


class AssigneeKind(models.TextChoices):
    ROLE = "role", _("A role in a department")
    ATTENDING = "attending", _("The attending doctor")


def _valid(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


class FollowUpPlan(BaseModel):
    """A rule: on a trigger, follow the patient up at each offset, over a channel, with a questionnaire."""

    name = models.CharField(pgettext_lazy("plan", "name"), max_length=120, unique=True)
    active = models.BooleanField(_("active"), default=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=TriggerKind.choices)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followup_plans",
        verbose_name=_("department"),
        help_text=_("Only encounters of this department trigger the plan; empty: every department."),
    )
    diagnosis_code_prefix = models.CharField(_("diagnosis code prefix"), max_length=32, blank=True)
    diagnosis_system = models.CharField(
        _("diagnosis code system"), max_length=10, choices=DiagnosisSystem.choices, blank=True
    )
    procedure_code_prefix = models.CharField(_("procedure code prefix"), max_length=32, blank=True)
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followup_plans",
        verbose_name=_("segment"),
    )
    offsets = models.JSONField(_("offsets in days"), default=list, help_text=_("For example 3, 7, 30, 90."))
    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.PROTECT, related_name="plans", verbose_name=_("questionnaire")
    )
    channel = models.CharField(_("channel"), max_length=10, choices=FollowUpChannel.choices)
    assignee_kind = models.CharField(
        _("assigned to"), max_length=10, choices=AssigneeKind.choices, default=AssigneeKind.ROLE
    )
    assignee_role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    assignee_department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee department"),
        help_text=_("Empty: the department of the encounter that triggered the task."),
    )
    retry_attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=3, help_text=_("How many times an unreached patient is tried.")
    )
    retry_spacing_hours = models.PositiveIntegerField(
        _("hours between attempts"), default=24, help_text=_("3 attempts 24 hours apart span 2 days.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("follow-up plan")
        verbose_name_plural = _("follow-up plans")
        ordering = ["name"]
        indexes = [models.Index(fields=["trigger", "active"], name="followup_plan_trigger")]
        constraints = [
            _valid("trigger", TriggerKind, "followup_plan_trigger_valid"),
            _valid("channel", FollowUpChannel, "followup_plan_channel_valid"),
            _valid("assignee_kind", AssigneeKind, "followup_plan_assignee_kind_valid"),
            models.CheckConstraint(
                condition=Q(diagnosis_system="") | Q(diagnosis_system__in=DiagnosisSystem.values),
                name="followup_plan_diagnosis_system_valid",
            ),
            models.CheckConstraint(condition=Q(retry_attempts__gte=1), name="followup_plan_attempts_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class SourceKind(models.TextChoices):
    ENCOUNTER = "encounter", _("Encounter")
    DIAGNOSIS = "diagnosis", _("Diagnosis")
    PROCEDURE = "procedure", _("Procedure")
    SEGMENT = "segment", _("Segment")
    MANUAL = "manual", _("Scheduled by hand")
    RESEARCH = "research", _("Research cohort")


class TaskStatus(models.TextChoices):
    PENDING = "pending", pgettext_lazy("task", "Pending")
    CLAIMED = "claimed", _("Claimed")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    UNREACHED = "unreached", _("Unreached, to retry")
    CLOSED = "closed", _("Closed")


OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.CLAIMED, TaskStatus.IN_PROGRESS, TaskStatus.UNREACHED)


class CloseReason(models.TextChoices):
    NONE = "", _("Not closed")
    DECEASED = "deceased", _("Patient deceased")
    READMITTED = "readmitted", _("Readmitted")
    CONSENT_WITHDRAWN = "consent_withdrawn", _("Consent withdrawn")
    CANCELLED = "cancelled", _("Cancelled")
    MAX_ATTEMPTS = "max_attempts", _("Not reached after every attempt")
    WRONG_NUMBER = "wrong_number", _("Wrong number")
    REFUSED = "refused", _("Refused")


class FollowUpTask(PatientRecord):
    """One follow-up of one patient, due on a day, worked by a person or a role of a department."""

    Status = TaskStatus

    plan = models.ForeignKey(
        FollowUpPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="tasks", verbose_name=_("plan")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="followup_tasks", verbose_name=_("patient"), db_index=False
    )
    source_kind = models.CharField(_("triggered by"), max_length=10, choices=SourceKind.choices)
    # The id of the encounter, diagnosis, procedure, segment or research cohort that made the task; 0 when
    # scheduled by hand.
    source_id = models.BigIntegerField(_("source record"), default=0)
    offset_days = models.IntegerField(_("offset in days"), default=0)
    due_date = models.DateField(_("due"))
    # When the task is next to be worked: the start of the due day, then each retry's time.
    due_at = models.DateTimeField(_("due at"))
    channel = models.CharField(_("channel"), max_length=10, choices=FollowUpChannel.choices)
    questionnaire = models.ForeignKey(
        Questionnaire, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("questionnaire")
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followup_tasks",
        verbose_name=_("assignee"),
    )
    assignee_role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followup_tasks",
        verbose_name=_("department"),
    )
    status = models.CharField(_("status"), max_length=12, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    closed_reason = models.CharField(
        _("closed because"), max_length=20, choices=CloseReason.choices, blank=True, default=""
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    max_attempts = models.PositiveSmallIntegerField(_("attempts allowed"), default=3)
    retry_spacing_hours = models.PositiveIntegerField(_("hours between attempts"), default=24)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("claimed by"),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    response = models.ForeignKey(
        QuestionnaireResponse,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("response"),
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("follow-up task")
        verbose_name_plural = _("follow-up tasks")
        ordering = ["due_at", "id"]
        permissions = [
            ("claim_followuptask", _("Can claim and work follow-up tasks")),
            ("view_department_followuptask", _("Can see the follow-up worklist of own departments")),
        ]
        indexes = [
            models.Index(fields=["assignee", "status", "due_at"], name="followup_task_assignee_due"),
            models.Index(fields=["department", "status", "due_at"], name="followup_task_department_due"),
            models.Index(fields=["patient", "due_date"], name="followup_task_patient_due"),
            # Statistics of the tasks due in a period, read from the index alone.
            models.Index(
                fields=["due_date"],
                name="followup_task_due_day",
                include=[
                    "department",
                    "questionnaire",
                    "status",
                    "closed_reason",
                    "channel",
                    "attempts",
                    "completed_at",
                ],
            ),
            # The worklists read only open tasks, a department's or its pool's (no one assigned), soonest due
            # first, and count them by due bucket and channel: these answer both from the index alone.
            models.Index(
                fields=["department", "due_at", "id", "channel"],
                condition=Q(status__in=OPEN_STATUSES),
                name="followup_task_open_department",
            ),
            models.Index(
                fields=["department", "assignee_role", "due_at", "id", "channel"],
                condition=Q(status__in=OPEN_STATUSES, assignee__isnull=True),
                name="followup_task_open_pool",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "plan", "offset_days", "source_kind", "source_id"], name="followup_task_once"
            ),
            _valid("source_kind", SourceKind, "followup_task_source_valid"),
            _valid("channel", FollowUpChannel, "followup_task_channel_valid"),
            _valid("status", TaskStatus, "followup_task_status_valid"),
            _valid("closed_reason", CloseReason, "followup_task_reason_valid"),
            models.CheckConstraint(
                condition=(Q(status=TaskStatus.CLOSED) & ~Q(closed_reason=""))
                | (~Q(status=TaskStatus.CLOSED) & Q(closed_reason="")),
                name="followup_task_closed_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.due_date} {self.status}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_claimable(self) -> bool:
        """Waiting for someone: new, or back in the queue after an unanswered call."""
        return self.status in (TaskStatus.PENDING, TaskStatus.UNREACHED) and self.claimed_by_id is None
