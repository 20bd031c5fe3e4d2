"""Printed follow-up letters: each printing is a batch, and each letter in it one attempt on its task.

A batch is printed once (recording the attempts); printing it again (a jammed printer, a lost pile) makes
no new attempts, only an audit entry and fresh links.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from followups.models.plans import FollowUpTask
from hcrm.models import BaseModel, Department


class LetterBatch(BaseModel):
    """One printing of follow-up letters by a member of staff."""

    printed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("printed by"),
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
        help_text=_("The department worklist the letters were printed from, if any."),
    )
    letter_count = models.PositiveIntegerField(_("letters"), default=0)
    reprint_count = models.PositiveIntegerField(_("times printed again"), default=0)
    last_printed_at = models.DateTimeField(_("last printed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("letter batch")
        verbose_name_plural = _("letter batches")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("print_followup_letters", _("Can print follow-up letters with the patients' postal addresses")),
        ]
        indexes = [models.Index(fields=["printed_by", "-created_at"], name="letter_batch_printer")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} ({self.letter_count})"


class LetterPrint(BaseModel):
    """One task's letter in a batch: the attempt it was posted as."""

    batch = models.ForeignKey(LetterBatch, on_delete=models.CASCADE, related_name="letters", verbose_name=_("batch"))
    task = models.ForeignKey(
        FollowUpTask, on_delete=models.CASCADE, related_name="letters", verbose_name=_("follow-up task")
    )
    attempt = models.PositiveSmallIntegerField(_("attempt"))

    class Meta:
        verbose_name = _("printed letter")
        verbose_name_plural = _("printed letters")
        ordering = ["batch", "id"]
        constraints = [models.UniqueConstraint(fields=["batch", "task"], name="letter_print_once_per_batch")]

    def __str__(self) -> str:
        return f"{self.task_id} #{self.attempt}"
