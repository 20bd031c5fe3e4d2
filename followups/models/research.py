"""Research cohorts: a saved segment followed up on a schedule, answers exported under pseudonyms.

A cohort owns one follow-up plan (trigger "research"): the questionnaire, channel, assignee and
retries are the plan's, and its tasks are ordinary follow-up tasks, so worklists, retries, links and
the phone screen work unchanged. Membership is a snapshot: patients who enter the segment are enrolled
at each sweep, and stay enrolled whatever the segment later says, until they are withdrawn.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from followups.models.plans import FollowUpPlan
from hcrm.models import BaseModel
from patients.models import Patient, PatientRecord, Segment


class ScheduleKind(models.TextChoices):
    OFFSETS = "offsets", _("Days after enrolment")
    INTERVAL = "interval", _("Every so many days between two dates")


def _salt() -> str:
    return secrets.token_hex(32)


class ResearchCohort(BaseModel):
    """A study's patients (from a segment), the waves they are asked at, and the secret of their pseudonyms."""

    name = models.CharField(pgettext_lazy("cohort", "name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    principal_investigator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="research_cohorts",
        verbose_name=_("principal investigator"),
    )
    segment = models.ForeignKey(
        Segment, on_delete=models.PROTECT, related_name="research_cohorts", verbose_name=_("segment")
    )
    plan = models.OneToOneField(
        FollowUpPlan, on_delete=models.PROTECT, related_name="research_cohort", verbose_name=_("plan")
    )
    schedule_kind = models.CharField(
        _("schedule"), max_length=10, choices=ScheduleKind.choices, default=ScheduleKind.OFFSETS
    )
    # For OFFSETS: days after each member's enrolment. For INTERVAL the plan's offsets are derived.
    interval_days = models.PositiveIntegerField(_("every (days)"), null=True, blank=True)
    start_date = models.DateField(_("start date"), help_text=_("Nobody is enrolled before this day."))
    end_date = models.DateField(
        _("end date"),
        null=True,
        blank=True,
        help_text=_("Nobody is enrolled, and no wave is due, after this day."),
    )
    ethics_approval = models.CharField(
        _("ethics approval reference"), max_length=100, help_text=_("The ethics committee's approval number.")
    )
    active = models.BooleanField(_("active"), default=True)
    # Keys the members' pseudonyms (HMAC-SHA256): never shown, never exported, different for every cohort.
    pseudonym_salt = models.CharField(max_length=64, default=_salt, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("research cohort")
        verbose_name_plural = _("research cohorts")
        ordering = ["name"]
        permissions = [
            ("export_research", _("Can export a research cohort's answers under pseudonyms")),
            ("export_research_free_text", _("Can include free-text answers in a research export")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(schedule_kind__in=ScheduleKind.values), name="research_cohort_schedule_valid"
            ),
            models.CheckConstraint(
                condition=Q(schedule_kind=ScheduleKind.OFFSETS) | (Q(interval_days__gte=1) & Q(end_date__isnull=False)),
                name="research_cohort_interval_complete",
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="research_cohort_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CohortMember(PatientRecord):
    """A patient enrolled in a cohort, under the cohort's pseudonym for them; withdrawn, never deleted."""

    cohort = models.ForeignKey(
        ResearchCohort, on_delete=models.CASCADE, related_name="members", verbose_name=_("cohort")
    )
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="research_memberships", verbose_name=_("patient")
    )
    joined_at = models.DateTimeField(_("enrolled at"))
    pseudonym = models.CharField(_("pseudonym"), max_length=32)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdrawal_reason = models.CharField(_("reason for withdrawal"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("cohort member")
        verbose_name_plural = _("cohort members")
        ordering = ["cohort_id", "pseudonym"]
        constraints = [
            models.UniqueConstraint(fields=["cohort", "patient"], name="cohort_member_once"),
            models.UniqueConstraint(fields=["cohort", "pseudonym"], name="cohort_member_pseudonym_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.cohort_id} {self.pseudonym}"
