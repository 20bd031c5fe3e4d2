"""Links sent by SMS or email: a patient answers a follow-up's questionnaire without signing in.

Only a SHA-256 hash of each token is stored; the token itself travels in the message and nowhere else.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from followups.models.plans import FollowUpTask
from followups.models.questionnaires import QuestionnaireResponse
from hcrm.models import BaseModel


class FollowUpLink(BaseModel):
    """One link to one task's questionnaire: expires, and works until the answers are submitted."""

    task = models.ForeignKey(FollowUpTask, on_delete=models.CASCADE, related_name="links", verbose_name=_("task"))
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    expires_at = models.DateTimeField(_("expires at"))
    opened_at = models.DateTimeField(_("first opened at"), null=True, blank=True)
    used_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    reminder_sent_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    # Answers saved to continue later, until they are submitted.
    response = models.ForeignKey(
        QuestionnaireResponse,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("response"),
    )

    class Meta:
        verbose_name = _("follow-up link")
        verbose_name_plural = _("follow-up links")
        indexes = [models.Index(fields=["used_at", "reminder_sent_at", "created_at"], name="followup_link_reminder")]

    def __str__(self) -> str:
        return f"{self.task_id} #{self.attempt}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
