"""Remote FHIR servers that HCRM polls for changed resources, and the sync cursor per resource type."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hcrm.models import BaseModel


class FhirAuthKind(models.TextChoices):
    NONE = "none", _("No authentication")
    BEARER = "bearer", _("Bearer token")
    BASIC = "basic", _("User name and password")


class FhirSyncStatus(models.TextChoices):
    NEVER = "never", _("Never run")
    RUNNING = "running", _("Running")
    OK = "ok", _("Succeeded")
    FAILED = "failed", _("Failed")


def default_pull_resource_types() -> list[str]:
    return ["Patient", "Encounter", "Condition", "Observation"]


class FhirRemote(BaseModel):
    """A FHIR R4 server (usually the hospital's EMR) whose changed resources are pulled periodically.

    The secret (bearer token or password) never lives in the database: `secret_env` names the
    environment variable that holds it.
    """

    AuthKind = FhirAuthKind
    SyncStatus = FhirSyncStatus

    name = models.CharField(pgettext_lazy("thing", "name"), max_length=64, unique=True)
    base_url = models.URLField(_("base URL"), max_length=300)
    auth_kind = models.CharField(_("authentication"), max_length=10, choices=AuthKind.choices, default=AuthKind.NONE)
    username = models.CharField(_("user name"), max_length=100, blank=True, default="")
    secret_env = models.CharField(
        _("secret environment variable"),
        max_length=100,
        blank=True,
        default="",
        help_text=_("Name of the environment variable holding the bearer token or password."),
    )
    resource_types = models.JSONField(
        _("resource types"),
        default=default_pull_resource_types,
        help_text=_("Pulled in this order, e.g. Patient before the records that refer to patients."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    page_size = models.PositiveIntegerField(_("page size"), default=100)
    timeout_seconds = models.PositiveIntegerField(_("timeout (seconds)"), default=30)
    # Claimed by one worker at a time; a claim older than the task time limit is considered abandoned.
    running_since = models.DateTimeField(_("running since"), null=True, blank=True)
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_status = models.CharField(
        _("last status"), max_length=10, choices=SyncStatus.choices, default=SyncStatus.NEVER
    )
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        ordering = ["name"]
        verbose_name = _("remote FHIR server")
        verbose_name_plural = _("remote FHIR servers")
        constraints = [
            models.CheckConstraint(condition=Q(auth_kind__in=FhirAuthKind.values), name="fhir_remote_auth_valid"),
            models.CheckConstraint(condition=Q(last_status__in=FhirSyncStatus.values), name="fhir_remote_status_valid"),
            models.CheckConstraint(condition=Q(page_size__gte=1, page_size__lte=1000), name="fhir_remote_page_size"),
        ]

    def __str__(self) -> str:
        return self.name


class FhirSyncCursor(models.Model):
    """How far one resource type of one remote has been pulled.

    `high_water` is the largest `meta.lastUpdated` of a committed page; the next run asks for
    `_lastUpdated=ge<high_water>` so resources sharing that instant are read again (and upserted
    without change) rather than lost. `next_url` is the page to continue with after an interruption.
    """

    remote = models.ForeignKey(FhirRemote, on_delete=models.CASCADE, related_name="cursors")
    resource_type = models.CharField(_("resource type"), max_length=40)
    high_water = models.DateTimeField(_("synchronised up to"), null=True, blank=True)
    next_url = models.CharField(_("next page"), max_length=2000, blank=True, default="")
    pages = models.PositiveIntegerField(_("pages read"), default=0)
    resources = models.PositiveIntegerField(_("resources read"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["remote", "resource_type"]
        verbose_name = _("FHIR sync cursor")
        verbose_name_plural = _("FHIR sync cursors")
        constraints = [
            models.UniqueConstraint(fields=["remote", "resource_type"], name="fhir_cursor_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.remote_id}:{self.resource_type}"
