"""FHIR Bulk Data (NDJSON) import jobs: which file, how far it was committed, what it did."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import BaseModel
from integrations.models.inbound import SourceProfile


class BulkImportStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class BulkImport(BaseModel):
    """One import of one NDJSON file; the committed position makes an interrupted import resumable."""

    Status = BulkImportStatus

    # The file itself is the raw payload: its path and digest identify what was imported.
    path = models.CharField(_("file"), max_length=500)
    size = models.BigIntegerField(_("size in bytes"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    source = models.ForeignKey(
        SourceProfile,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="bulk_imports",
        verbose_name=_("source"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RUNNING)
    # Position after the last committed batch, in bytes of the (decompressed) stream and in lines.
    bytes_done = models.BigIntegerField(_("bytes committed"), default=0)
    lines_done = models.BigIntegerField(_("lines committed"), default=0)
    resource_counts = models.JSONField(_("resources by type"), default=dict, blank=True)
    created_count = models.PositiveIntegerField(_("patients created"), default=0)
    updated_count = models.PositiveIntegerField(_("patients updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("patients unchanged"), default=0)
    candidate_count = models.PositiveIntegerField(_("possible duplicates raised"), default=0)
    error_count = models.PositiveIntegerField(_("lines refused"), default=0)
    # The first errors, as [{"line": n, "location": "Patient.birthDate", "message": "..."}].
    errors = models.JSONField(_("errors"), default=list, blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("bulk import")
        verbose_name_plural = _("bulk imports")
        indexes = [models.Index(fields=["sha256", "status"], name="bulk_import_file_status")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=BulkImportStatus.values), name="bulk_import_status_valid"),
            # One unfinished job per file content: a re-run resumes it instead of starting a second one.
            models.UniqueConstraint(
                fields=["sha256"], condition=Q(status="running"), name="bulk_import_one_running_per_file"
            ),
            models.CheckConstraint(
                condition=Q(bytes_done__gte=0) & Q(bytes_done__lte=models.F("size")) | Q(path__endswith=".gz"),
                name="bulk_import_position_within_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.path} ({self.get_status_display()})"
