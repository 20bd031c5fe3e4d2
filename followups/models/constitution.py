"""A patient's TCM constitution as judged from one completed constitution questionnaire
(中医体质分类与判定, ZYYXH/T 157-2009). The latest one is the patient's current constitution."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from followups.models.questionnaires import QuestionnaireResponse
from patients.models import Patient, PatientRecord


class Constitution(models.TextChoices):
    BALANCED = "balanced", _("Balanced (平和质)")
    QI_DEFICIENCY = "qi_deficiency", _("Qi deficiency (气虚质)")
    YANG_DEFICIENCY = "yang_deficiency", _("Yang deficiency (阳虚质)")
    YIN_DEFICIENCY = "yin_deficiency", _("Yin deficiency (阴虚质)")
    PHLEGM_DAMPNESS = "phlegm_dampness", _("Phlegm-dampness (痰湿质)")
    DAMP_HEAT = "damp_heat", _("Damp-heat (湿热质)")
    BLOOD_STASIS = "blood_stasis", _("Blood stasis (血瘀质)")
    QI_STAGNATION = "qi_stagnation", _("Qi stagnation (气郁质)")
    INHERITED_SPECIAL = "inherited_special", _("Inherited special (特禀质)")


class ConstitutionJudgement(models.TextChoices):
    YES = "yes", _("Yes (是)")
    BASICALLY = "basically", _("Basically yes (基本是)")
    TENDING = "tending", _("Tending to (倾向是)")
    NO = "no", _("No (否)")


class PatientConstitution(PatientRecord):
    """The standard's judgement of one assessment: primary and secondary constitution, the nine scores."""

    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="constitutions", verbose_name=_("patient")
    )
    response = models.OneToOneField(
        QuestionnaireResponse,
        on_delete=models.CASCADE,
        related_name="constitution",
        verbose_name=_("questionnaire response"),
    )
    assessed_at = models.DateTimeField(_("assessed at"))
    primary = models.CharField(
        _("primary constitution"),
        max_length=20,
        choices=Constitution.choices,
        blank=True,
        help_text=_("Empty when 平和质 is 否 and no biased type reaches 倾向是."),
    )
    secondary = models.JSONField(
        _("secondary constitutions"), default=list, blank=True, help_text=_("Codes, highest score first.")
    )
    scores = models.JSONField(_("transformed scores"), default=dict, help_text=_("0–100 by constitution code."))
    judgements = models.JSONField(_("judgements"), default=dict, help_text=_("yes, basically, tending or no by code."))

    class Meta:
        verbose_name = _("patient constitution")
        verbose_name_plural = _("patient constitutions")
        ordering = ["-assessed_at", "-pk"]
        indexes = [models.Index(fields=["patient", "-assessed_at"], name="constitution_patient_assessed")]
        constraints = [
            models.CheckConstraint(
                condition=Q(primary__in=[*Constitution.values, ""]), name="constitution_primary_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} {self.primary or '-'} {self.assessed_at:%Y-%m-%d}"
