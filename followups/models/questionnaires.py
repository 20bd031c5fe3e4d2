"""Questionnaires, their versions and the responses to them.

A version's items are kept as the FHIR R4 `Questionnaire.item` tree (linkId, text, type, required,
answerOption, enableWhen, nested items) plus HCRM's scoring rules, so importing and exporting FHIR is a
mapping of shape, not of meaning. Once a version has responses it is frozen: editing makes the next
version, and every response keeps the version it answered.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hcrm.models import BaseModel, Department
from patients.models import Patient, PatientRecord


class QuestionnairePurpose(models.TextChoices):
    CLINICAL = "clinical", _("Clinical follow-up")
    RESEARCH = "research", _("Research")
    SATISFACTION = "satisfaction", _("Satisfaction survey")
    CONSTITUTION = "constitution", _("TCM constitution assessment")


class QuestionnaireStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", pgettext_lazy("questionnaire", "Active")
    RETIRED = "retired", _("Retired")


class Questionnaire(BaseModel):
    """A questionnaire staff pick for follow-ups; what is asked lives in its versions."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    title = models.CharField(pgettext_lazy("questionnaire", "title"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    purpose = models.CharField(_("purpose"), max_length=14, choices=QuestionnairePurpose.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=QuestionnaireStatus.choices, default=QuestionnaireStatus.DRAFT
    )
    departments = models.ManyToManyField(
        Department,
        blank=True,
        related_name="questionnaires",
        verbose_name=_("departments"),
        help_text=_("Empty: every department."),
    )
    disease_codes = models.JSONField(
        _("diagnosis code prefixes"),
        default=list,
        blank=True,
        help_text=_("ICD-10 or TCM code prefixes this questionnaire is meant for; empty: any."),
    )
    is_builtin = models.BooleanField(_("built in"), default=False)
    current_version = models.ForeignKey(
        "followups.QuestionnaireVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current version"),
    )

    class Meta:
        verbose_name = _("questionnaire")
        verbose_name_plural = _("questionnaires")
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(purpose__in=QuestionnairePurpose.values), name="questionnaire_purpose_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=QuestionnaireStatus.values), name="questionnaire_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class QuestionnaireVersion(BaseModel):
    """One version of a questionnaire: FHIR-shaped items and the scoring rules; frozen once answered."""

    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    items = models.JSONField(_("items"), default=list, help_text=_("FHIR R4 Questionnaire.item tree."))
    scoring = models.JSONField(
        _("scoring"),
        default=dict,
        blank=True,
        help_text=_("Scores computed from the answers (sum, mean, transformed per group) and their bands."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("questionnaire version")
        verbose_name_plural = _("questionnaire versions")
        ordering = ["questionnaire_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["questionnaire", "number"], name="questionnaire_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.questionnaire_id} v{self.number}"


class ResponseStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")


# A completed response that gives the satisfaction figures (the statistics read only these).
RATED = Q(status="completed") & (Q(satisfaction__isnull=False) | Q(recommendation__isnull=False))


class QuestionnaireResponse(PatientRecord):
    """A patient's answers to one questionnaire version, with the scores computed from them."""

    Status = ResponseStatus

    version = models.ForeignKey(
        QuestionnaireVersion, on_delete=models.PROTECT, related_name="responses", verbose_name=_("version")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="questionnaire_responses", verbose_name=_("patient")
    )
    status = models.CharField(_("status"), max_length=12, choices=ResponseStatus.choices, default="in_progress")
    answers = models.JSONField(
        _("answers"), default=dict, blank=True, help_text=_("Answers by linkId (a list for repeating items).")
    )
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    source = models.CharField(
        _("answered through"), max_length=20, blank=True, help_text=_("phone, sms, email, letter, portal, staff")
    )
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # What a satisfaction survey rates and the numbers it gives, kept in columns on completion so that
    # statistics over millions of responses aggregate columns instead of reading JSON.
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department rated"),
    )
    doctor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("doctor rated"),
    )
    satisfaction = models.DecimalField(
        _("satisfaction"), max_digits=5, decimal_places=2, null=True, blank=True, help_text=_("The overall mean.")
    )
    recommendation = models.PositiveSmallIntegerField(
        _("recommendation"), null=True, blank=True, help_text=_("0 (not at all) to 10 (extremely likely).")
    )
    item_scores = models.JSONField(
        _("item scores"),
        default=dict,
        blank=True,
        help_text=_("The score of each item of the overall mean that was answered, by linkId."),
    )

    class Meta:
        verbose_name = _("questionnaire response")
        verbose_name_plural = _("questionnaire responses")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["patient", "-created_at"], name="response_patient_created"),
            models.Index(fields=["version", "status", "completed_at"], name="response_version_completed"),
            models.Index(
                fields=["completed_at"],
                name="response_rated_time",
                include=["department", "doctor", "version", "satisfaction", "recommendation"],
                condition=RATED,
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ResponseStatus.values), name="response_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.version_id} {self.patient_id} {self.status}"
