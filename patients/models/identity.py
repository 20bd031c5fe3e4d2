"""One identity per patient: likely duplicates waiting for review, and undoable merges."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import BaseModel
from patients.models.archive import Patient


class MatchReason(models.TextChoices):
    SAME_NAME_BIRTH_PHONE = "name_birth_phone", _("Same name, birth date and phone")
    SAME_NAME_BIRTH = "name_birth", _("Same name and birth date")
    SAME_PINYIN = "same_pinyin", _("Same pinyin and birth date")
    CLOSE_PINYIN = "close_pinyin", _("Pinyin one letter apart, same birth date")
    SWAPPED_CHARACTERS = "swapped", _("Same characters in another order, same birth date")
    IDENTIFIER_CONFLICT = "identifier_conflict", _("Identifiers point at different patients")


class MatchStatus(models.TextChoices):
    OPEN = "open", _("Waiting for review")
    MERGED = "merged", _("Merged")
    DIFFERENT = "different", _("Different people")


class MatchCandidate(BaseModel):
    """Two patients who may be one person; a person decides, the system never merges on its own.

    The pair is stored in primary-key order, so one unordered pair has one row whatever its status:
    a pair marked as different people is never raised again.
    """

    Reason = MatchReason
    Status = MatchStatus

    patient_a = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="+", verbose_name=_("patient"), db_index=False
    )
    patient_b = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+", verbose_name=_("other patient"))
    reason = models.CharField(_("reason"), max_length=24, choices=Reason.choices)
    score = models.PositiveSmallIntegerField(_("score"), help_text=_("How alike the two records are, 0–100."))
    details = models.JSONField(_("details"), default=dict, blank=True)
    source = models.CharField(_("raised by"), max_length=120, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    merge = models.ForeignKey(
        "PatientMerge",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="candidates",
        verbose_name=_("merge"),
    )

    class Meta:
        ordering = ["-score", "-created_at", "-id"]
        verbose_name = _("duplicate candidate")
        verbose_name_plural = _("duplicate candidates")
        permissions = [("resolve_matchcandidate", _("Can merge patients, undo merges and resolve duplicates"))]
        indexes = [models.Index(fields=["status", "-score", "-created_at"], name="match_candidate_queue")]
        constraints = [
            models.UniqueConstraint(fields=["patient_a", "patient_b"], name="match_candidate_pair_unique"),
            models.CheckConstraint(condition=Q(patient_a__lt=F("patient_b")), name="match_candidate_pair_ordered"),
            models.CheckConstraint(condition=Q(status__in=MatchStatus.values), name="match_candidate_status_valid"),
            models.CheckConstraint(condition=Q(reason__in=MatchReason.values), name="match_candidate_reason_valid"),
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=100), name="match_candidate_score_range"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_a_id} ~ {self.patient_b_id} ({self.reason})"

    def other(self, patient: Patient) -> Patient:
        return self.patient_b if patient.pk == self.patient_a_id else self.patient_a


class PatientMerge(BaseModel):
    """`prior` was merged into `survivor`; `moved` lists every row that changed, so undo is exact.

    `moved` has the shape::

        {"rows": {"app.model": {"fk_field": [pk, ...]}},   # rows re-pointed from prior to survivor
         "kept": {"app.model": {"fk_field": [pk, ...]}},   # rows left with prior (a unique clash)
         "overwritten": {"app.model": [{"pk": ..., "field": old_value, ...}]},  # survivor rows changed
         "tags": [tag_pk, ...],                             # tags the survivor gained
         "filled": {"field": old_value},                    # survivor fields filled from prior
         "candidates": [{"pk": ..., "a": ..., "b": ...}]}   # open candidates re-pointed to survivor
    """

    survivor = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="+", verbose_name=_("surviving patient")
    )
    prior = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+", verbose_name=_("merged patient"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merged by"),
    )
    reason = models.TextField(_("reason"), blank=True)
    source = models.CharField(_("source"), max_length=120, blank=True)
    moved = models.JSONField(_("moved records"), default=dict)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("undone by"),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("patient merge")
        verbose_name_plural = _("patient merges")
        constraints = [
            models.CheckConstraint(condition=~Q(survivor=F("prior")), name="patient_merge_not_into_itself"),
            # A patient is merged away at most once at a time.
            models.UniqueConstraint(
                fields=["prior"], condition=Q(undone_at__isnull=True), name="patient_merge_prior_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prior_id} → {self.survivor_id}"

    @property
    def audit_patient_uuid(self):
        return self.survivor.uuid if self.survivor_id else None

    @property
    def moved_count(self) -> int:
        return sum(len(pks) for fields in self.moved.get("rows", {}).values() for pks in fields.values())
