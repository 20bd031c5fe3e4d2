"""Platform models: staff, departments, audit, break-the-glass, integration keys."""

from __future__ import annotations

import uuid

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from rest_framework_api_key.models import AbstractAPIKey


class BaseModel(models.Model):
    """Timestamps and a public UUID; integer primary keys never leave the database."""

    uuid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class Department(BaseModel):
    class Kind(models.TextChoices):
        CLINICAL = "clinical", _("Clinical")
        PREVENTIVE = "preventive", _("Preventive care")
        TECHNICAL = "technical", _("Medical technology")
        ADMINISTRATIVE = "administrative", _("Administrative")

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(pgettext_lazy("thing", "name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.CLINICAL)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["clinical", "preventive", "technical", "administrative"]),
                name="department_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def display_name(self) -> str:
        from django.utils.translation import get_language

        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class User(AbstractUser):
    """A member of staff. Roles are Django groups (see `hcrm.roles`)."""

    class Title(models.TextChoices):
        NONE = "", _("None")
        CHIEF_PHYSICIAN = "chief_physician", _("Chief physician")
        ASSOCIATE_CHIEF_PHYSICIAN = "associate_chief_physician", _("Associate chief physician")
        ATTENDING_PHYSICIAN = "attending_physician", _("Attending physician")
        RESIDENT_PHYSICIAN = "resident_physician", _("Resident physician")
        CHIEF_NURSE = "chief_nurse", _("Chief nurse")
        SENIOR_NURSE = "senior_nurse", _("Senior nurse")
        NURSE = "nurse", _("Nurse")

    uuid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    full_name = models.CharField(_("full name"), max_length=100, blank=True)
    employee_number = models.CharField(_("employee number"), max_length=32, blank=True)
    title = models.CharField(_("title"), max_length=40, choices=Title.choices, blank=True, default="")
    specialties = models.CharField(_("specialties"), max_length=300, blank=True)
    is_renowned_expert = models.BooleanField(_("renowned TCM expert"), default=False)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    departments = models.ManyToManyField(
        Department, through="StaffDepartment", related_name="staff", blank=True, verbose_name=_("departments")
    )

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff")
        ordering = ["username"]

    def __str__(self) -> str:
        return self.full_name or self.username

    @property
    def role_codes(self) -> list[str]:
        from hcrm.roles import ROLE_CODES

        cached = getattr(self, "_role_codes", None)
        if cached is None:
            cached = [name for name in self.groups.values_list("name", flat=True) if name in ROLE_CODES]
            self._role_codes = cached
        return cached

    @property
    def department_ids(self) -> set[int]:
        cached = getattr(self, "_department_ids", None)
        if cached is None:
            cached = set(self.staff_departments.values_list("department_id", flat=True))
            self._department_ids = cached
        return cached


class StaffDepartment(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="staff_departments")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="staff_memberships")
    is_head = models.BooleanField(_("head of department"), default=False)

    class Meta:
        verbose_name = _("department membership")
        verbose_name_plural = _("department memberships")
        constraints = [models.UniqueConstraint(fields=["user", "department"], name="staff_department_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.department}"


class AuditEntryManager(LogEntryManager):
    def log_create(self, instance, force_log: bool = False, **kwargs):
        # Every audited model names the patient it belongs to, so one indexed
        # column answers "who touched this patient's record".
        patient_uuid = getattr(instance, "audit_patient_uuid", None)
        if patient_uuid is not None:
            kwargs.setdefault("patient_uuid", patient_uuid)
        action = kwargs.get("action")
        if action in _EVENT_BY_ACTION:
            kwargs.setdefault("event", _EVENT_BY_ACTION[action])
        return super().log_create(instance, force_log=force_log, **kwargs)

    def log_m2m_changes(self, changed_queryset, instance, operation, field_name, **kwargs):
        # Many-to-many changes (a patient's tags) bypass log_create; file them under the patient too.
        patient_uuid = getattr(instance, "audit_patient_uuid", None)
        if patient_uuid is not None:
            kwargs.setdefault("patient_uuid", patient_uuid)
        kwargs.setdefault("event", _EVENT_BY_ACTION[AbstractLogEntry.Action.UPDATE])
        return super().log_m2m_changes(changed_queryset, instance, operation, field_name, **kwargs)


_EVENT_BY_ACTION = {
    AbstractLogEntry.Action.CREATE: "create",
    AbstractLogEntry.Action.UPDATE: "update",
    AbstractLogEntry.Action.DELETE: "delete",
}


class AuditEntry(AbstractLogEntry):
    """One audited act: a write (from django-auditlog's signals) or a read, reveal or export."""

    class Event(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Updated")
        DELETE = "delete", _("Deleted")
        VIEW = "view", _("Viewed")
        LIST = "list", _("Listed")
        SEARCH = "search", _("Searched")
        EXPORT = "export", _("Exported")
        REVEAL = "reveal", _("Revealed sensitive fields")
        LOGIN = "login", _("Signed in")
        LOGIN_FAILED = "login_failed", _("Failed sign-in")
        LOGOUT = "logout", _("Signed out")

    event = models.CharField(_("event"), max_length=20, choices=Event.choices, blank=True)
    # The patient's public id, not a foreign key: the audit trail outlives the
    # record, and the platform does not depend on the patients app.
    patient_uuid = models.UUIDField(_("patient"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    client = models.CharField(_("client"), max_length=120, blank=True)

    # django-auditlog indexes these columns for its own object-history lookups,
    # which nothing here runs; every audited write would keep those indexes up
    # to date. The entries are read by patient, by actor or event over time,
    # and by correlation id (the admin's filter), through the indexes below.
    content_type = models.ForeignKey(
        "contenttypes.ContentType",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("content type"),
        db_index=False,
    )
    object_pk = models.CharField(_("object pk"), max_length=255)
    object_id = models.BigIntegerField(_("object id"), blank=True, null=True)
    action = models.PositiveSmallIntegerField(_("action"), choices=AbstractLogEntry.Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        blank=True,
        null=True,
        related_name="+",
        verbose_name=_("actor"),
        db_index=False,  # covered by audit_actor_time
    )
    cid = models.CharField(_("Correlation ID"), max_length=255, blank=True, null=True)

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        permissions = [
            ("view_department_audit", _("Can view the activity of staff in own departments")),
        ]
        indexes = [
            models.Index(fields=["patient_uuid", "-timestamp"], name="audit_patient_time"),
            models.Index(fields=["actor", "-timestamp"], name="audit_actor_time"),
            models.Index(fields=["event", "-timestamp"], name="audit_event_time"),
            # Only requests that carry a correlation id header have one.
            models.Index(fields=["cid"], condition=Q(cid__isnull=False), name="audit_cid"),
        ]


class IntegrationKey(AbstractAPIKey):
    """An API key for another system (HIS, EMR, portal), limited to named scopes."""

    scopes = models.JSONField(_("scopes"), default=list)
    source_system = models.CharField(
        _("source system"), max_length=64, blank=True, help_text=_("Recorded on the data this system sends in.")
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("integration key")
        verbose_name_plural = _("integration keys")


class Counter(models.Model):
    """Named monotonic counters (MRN numbers and the like), incremented under a row lock."""

    name = models.CharField(max_length=64, unique=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("counter")
        verbose_name_plural = _("counters")

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
