"""Patients imported from a spreadsheet: the uploaded file, its dry-run report and the import's result."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import BaseModel


def _import_path(instance: PatientImport, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"patient-imports/{instance.uuid}.{extension}"


class ImportStatus(models.TextChoices):
    DRY_RUN = "dry_run", _("Checked, not imported")
    IMPORTING = "importing", _("Importing")
    IMPORTED = "imported", _("Imported")
    FAILED = "failed", _("Failed")


class ImportMode(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", _("All rows or nothing")
    GOOD_ROWS_ONLY = "good_rows_only", _("Only the good rows")


class ImportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class PatientImport(BaseModel):
    """One uploaded spreadsheet of patients; checked on upload, imported when someone chooses to."""

    Status = ImportStatus
    Mode = ImportMode

    file = models.FileField(_("file"), upload_to=_import_path)
    original_name = models.CharField(_("file name"), max_length=255)
    file_format = models.CharField(_("format"), max_length=4, choices=ImportFormat.choices)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    assigner = models.CharField(
        _("assigning authority"),
        max_length=64,
        blank=True,
        help_text=_("Who issued the visit card, insurance and passport numbers in the file; empty for this hospital."),
    )
    status = models.CharField(_("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.DRY_RUN)
    mode = models.CharField(_("mode"), max_length=16, choices=ImportMode.choices, blank=True, default="")
    columns = models.JSONField(_("columns"), default=dict, help_text=_("Header of each recognised column by field."))
    ignored_columns = models.JSONField(_("ignored columns"), default=list)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    bad_rows = models.PositiveIntegerField(_("bad rows"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("unchanged"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    review_count = models.PositiveIntegerField(_("queued for review"), default=0)
    # [{"row": 3, "field": "national_id", "code": "check_digit", "message": "..."}], in row order.
    report = models.JSONField(_("row report"), default=list)
    error = models.TextField(_("error"), blank=True, help_text=_("Why the whole file could not be read or imported."))
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("imported by"),
    )
    started_at = models.DateTimeField(_("import started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("patient import")
        verbose_name_plural = _("patient imports")
        permissions = [("import_patients", _("Can import patients from spreadsheets"))]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ImportStatus.values), name="patient_import_status_valid"),
            models.CheckConstraint(condition=Q(mode__in=["", *ImportMode.values]), name="patient_import_mode_valid"),
            models.CheckConstraint(
                condition=Q(file_format__in=ImportFormat.values), name="patient_import_format_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=ImportStatus.IMPORTED) | (~Q(mode="") & Q(finished_at__isnull=False)),
                name="patient_import_imported_has_mode",
            ),
        ]

    def __str__(self) -> str:
        return self.original_name

    @property
    def good_rows(self) -> int:
        return self.total_rows - self.bad_rows

    @property
    def can_import(self) -> bool:
        if self.status == ImportStatus.FAILED:
            return self.total_rows > 0  # what failed (a tag deleted, a conflict) may have been put right since
        return self.status == ImportStatus.DRY_RUN and self.good_rows > 0

    @property
    def is_running(self) -> bool:
        return self.status == ImportStatus.IMPORTING
