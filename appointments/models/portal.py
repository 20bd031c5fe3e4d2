"""The patient portal: accounts by mobile number, the family members an account books for, sign-in codes."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hcrm.models import BaseModel
from patients.models import Patient


class PortalAccount(BaseModel):
    """A person signed in with a mobile number and an SMS code; books for themself and their family."""

    mobile = models.CharField(_("mobile"), max_length=20, unique=True, help_text=_("E.164, e.g. +8613800138000."))
    is_active = models.BooleanField(_("active"), default=True)
    last_login_at = models.DateTimeField(_("last signed in"), null=True, blank=True)

    class Meta:
        verbose_name = _("portal account")
        verbose_name_plural = _("portal accounts")

    def __str__(self) -> str:
        return self.mobile


class Relationship(models.TextChoices):
    SELF = "self", _("Myself")
    SPOUSE = "spouse", _("Spouse")
    CHILD = "child", _("Child")
    PARENT = "parent", _("Parent")
    OTHER = "other", _("Other relative")


class FamilyMember(BaseModel):
    """A patient an account may book for, registered with real name and national ID (实名)."""

    account = models.ForeignKey(PortalAccount, on_delete=models.CASCADE, related_name="members")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="portal_links")
    relationship = models.CharField(_("relationship"), max_length=10, choices=Relationship.choices)

    class Meta:
        verbose_name = _("family member")
        verbose_name_plural = _("family members")
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["account", "patient"], name="family_member_unique"),
            models.UniqueConstraint(
                fields=["account"], condition=Q(relationship="self"), name="family_member_one_self"
            ),
            models.CheckConstraint(condition=Q(relationship__in=Relationship.values), name="family_member_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.relationship} {self.patient_id}"


class LoginCode(models.Model):
    """A one-time sign-in code sent by SMS; only its hash is kept."""

    mobile = models.CharField(_("mobile"), max_length=20)
    code_hash = models.CharField(max_length=128)
    client_address = models.GenericIPAddressField(_("requested from"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in code")
        verbose_name_plural = _("sign-in codes")
        indexes = [
            models.Index(fields=["mobile", "-created_at"], name="login_code_mobile"),
            models.Index(fields=["client_address", "-created_at"], name="login_code_address"),
        ]

    def __str__(self) -> str:
        return f"{self.mobile} {self.created_at:%Y-%m-%d %H:%M}"
