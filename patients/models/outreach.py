"""Classifying patients: hospital outreach settings, per-patient visit statistics with RFM scores, saved segments."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hcrm.models import BaseModel
from patients.models.archive import Patient


def _default_recency_days() -> list[int]:
    return [30, 90, 180, 365]


def _default_frequency_visits() -> list[int]:
    return [2, 3, 5, 8]


def _default_monetary_yuan() -> list[int]:
    return [500, 2000, 5000, 20000]


class OutreachSettings(models.Model):
    """The hospital's rules for contacting patients and classifying them; one row (see `outreach_settings()`)."""

    quiet_hours_start = models.TimeField(_("quiet hours start"), default=dt.time(21, 0))
    quiet_hours_end = models.TimeField(_("quiet hours end"), default=dt.time(8, 0))
    daily_message_cap = models.PositiveSmallIntegerField(
        _("messages per patient per day"),
        default=3,
        help_text=_("Non-urgent messages beyond this number wait for the next day."),
    )
    rfm_window_days = models.PositiveIntegerField(
        _("RFM window (days)"), default=730, help_text=_("Visits and spending within this many days count.")
    )
    rfm_recency_days = models.JSONField(
        _("recency boundaries (days)"),
        default=_default_recency_days,
        help_text=_("Four increasing numbers: a last visit within the first scores 5, beyond the last scores 1."),
    )
    rfm_frequency_visits = models.JSONField(
        _("frequency boundaries (visits)"),
        default=_default_frequency_visits,
        help_text=_("Four increasing numbers: reaching the first scores 2, reaching the last scores 5."),
    )
    rfm_monetary_yuan = models.JSONField(
        _("monetary boundaries (yuan)"),
        default=_default_monetary_yuan,
        help_text=_("Four increasing amounts: reaching the first scores 2, reaching the last scores 5."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("outreach settings")
        verbose_name_plural = _("outreach settings")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="outreach_settings_single_row")]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class RfmGroup(models.TextChoices):
    NONE = "none", pgettext_lazy("RFM group", "No visit yet")
    NEW = "new", pgettext_lazy("RFM group", "New")
    LOYAL = "loyal", pgettext_lazy("RFM group", "Loyal")
    ACTIVE = "active", pgettext_lazy("RFM group", "Active")
    OCCASIONAL = "occasional", pgettext_lazy("RFM group", "Occasional")
    AT_RISK = "at_risk", pgettext_lazy("RFM group", "At risk")
    LAPSED = "lapsed", pgettext_lazy("RFM group", "Lapsed")


class PatientStats(models.Model):
    """Visits, spending and RFM scores of one patient, recomputed nightly (and on demand) in batches."""

    patient = models.OneToOneField(Patient, on_delete=models.CASCADE, primary_key=True, related_name="stats")
    first_visit_at = models.DateTimeField(_("first visit"), null=True, blank=True)
    last_visit_at = models.DateTimeField(_("last visit"), null=True, blank=True)
    visit_count = models.PositiveIntegerField(_("visits"), default=0)
    visits_in_window = models.PositiveIntegerField(_("visits in the RFM window"), default=0)
    spending_total = models.DecimalField(_("spending"), max_digits=14, decimal_places=2, default=0)
    spending_in_window = models.DecimalField(
        _("spending in the RFM window"), max_digits=14, decimal_places=2, default=0
    )
    recency_score = models.PositiveSmallIntegerField(_("R"), default=0)
    frequency_score = models.PositiveSmallIntegerField(_("F"), default=0)
    monetary_score = models.PositiveSmallIntegerField(_("M"), default=0)
    rfm_group = models.CharField(_("RFM group"), max_length=12, choices=RfmGroup.choices, default=RfmGroup.NONE)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("patient statistics")
        verbose_name_plural = _("patient statistics")
        indexes = [
            models.Index(fields=["rfm_group"], name="stats_rfm_group"),
            models.Index(fields=["last_visit_at"], name="stats_last_visit"),
            models.Index(fields=["spending_total"], name="stats_spending"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(rfm_group__in=RfmGroup.values), name="stats_rfm_group_valid"),
            models.CheckConstraint(
                condition=Q(recency_score__lte=5) & Q(frequency_score__lte=5) & Q(monetary_score__lte=5),
                name="stats_scores_at_most_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id}: R{self.recency_score}F{self.frequency_score}M{self.monetary_score}"


class Segment(BaseModel):
    """A saved, named patient filter: counted, listed, exported, and the audience of plans and campaigns."""

    name = models.CharField(pgettext_lazy("thing", "name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    filters = models.JSONField(_("filters"), default=dict)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="segments",
        verbose_name=_("owner"),
    )
    last_count = models.PositiveIntegerField(_("last count"), null=True, blank=True)
    last_counted_at = models.DateTimeField(_("last counted at"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        permissions = [("view_segment_members", _("Can list and export the patients of a segment"))]

    def __str__(self) -> str:
        return self.name
