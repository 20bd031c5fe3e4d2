"""Staff roles and the permissions each holds by default.

A role is a Django group named by its code, so IT staff can adjust a role's
permissions in the admin; `roles_sync` only adds what is missing, never takes
away what an administrator granted.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    DOCTOR = "doctor", _("Doctor")
    NURSE = "nurse", _("Nurse")
    AGENT = "agent", _("Customer-service agent")
    DEPARTMENT_HEAD = "department_head", _("Department head")
    ADMINISTRATOR = "administrator", _("Administrator")
    ANALYST = "analyst", _("Analyst")


ROLE_CODES = frozenset(Role.values)

_CLINICAL_MODELS = (
    "encounter",
    "diagnosis",
    "procedure",
    "labresult",
    "medicationorder",
    "allergy",
    "clinicalhistory",
)


def _crud(app: str, model: str, actions: tuple[str, ...]) -> list[str]:
    return [f"{app}.{action}_{model}" for action in actions]


def _clinical(actions: tuple[str, ...], models_: tuple[str, ...] = _CLINICAL_MODELS) -> list[str]:
    return [perm for model in models_ for perm in _crud("patients", model, actions)]


_PATIENT_EDIT = _crud("patients", "patient", ("view", "add", "change"))
_CONTACTS = _crud("patients", "contactentry", ("view", "add"))
_SEGMENTS_USE = ["patients.view_segment", "patients.add_segment", "patients.view_segment_members"]
_MESSAGES_READ = ["patients.view_outboundmessage", "patients.view_messagetemplate"]
# Reviewing likely duplicates, merging patients and undoing merges.
_IDENTITY_REVIEW = [
    "patients.view_matchcandidate",
    "patients.resolve_matchcandidate",
    "patients.view_patientmerge",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.DOCTOR: _PATIENT_EDIT + _clinical(("view", "add", "change")) + _CONTACTS + _SEGMENTS_USE + _MESSAGES_READ,
    Role.NURSE: _PATIENT_EDIT
    + _clinical(("view",))
    + _clinical(("add", "change"), ("allergy", "clinicalhistory", "labresult"))
    + _CONTACTS
    + ["patients.view_segment", "patients.view_segment_members"]
    + _MESSAGES_READ,
    Role.AGENT: _PATIENT_EDIT
    + ["patients.view_all_patients"]
    + _clinical(("view",), ("encounter", "diagnosis", "allergy"))
    + _CONTACTS
    + _SEGMENTS_USE
    + _MESSAGES_READ
    + ["patients.add_outboundmessage", "patients.import_patients"],
    Role.DEPARTMENT_HEAD: _PATIENT_EDIT
    + _clinical(("view", "add", "change", "delete"))
    + ["hcrm.view_department_audit", "hcrm.view_user", "patients.review_contactentry"]
    + _CONTACTS
    + _SEGMENTS_USE
    + ["patients.change_segment", "patients.delete_segment", "patients.import_patients"]
    + _MESSAGES_READ
    + _IDENTITY_REVIEW,
    Role.ADMINISTRATOR: _crud("patients", "patient", ("view", "add", "change", "delete"))
    + ["patients.view_all_patients", "patients.view_sensitive"]
    + _clinical(("view", "add", "change", "delete"))
    + _crud("hcrm", "user", ("view", "add", "change"))
    + _crud("hcrm", "department", ("view", "add", "change"))
    + _crud("hcrm", "integrationkey", ("view", "add", "change", "delete"))
    + [
        "hcrm.view_auditentry",
        "hcrm.view_department_audit",
        "patients.view_tag",
        "patients.add_tag",
        "patients.change_tag",
        "patients.review_contactentry",
        "patients.view_segment_members",
    ]
    + _CONTACTS
    + _crud("patients", "segment", ("view", "add", "change", "delete"))
    + _crud("patients", "outboundmessage", ("view", "add", "change"))
    + _crud("patients", "messagetemplate", ("view", "add", "change", "delete"))
    + _crud("patients", "outreachsettings", ("view", "change"))
    + ["patients.import_patients"]
    + [
        "integrations.view_inboundmessage",
        "integrations.view_raw_inboundmessage",
        "integrations.reprocess_inboundmessage",
    ]
    + _crud("integrations", "sourceprofile", ("view", "add", "change"))
    + _IDENTITY_REVIEW,
    Role.ANALYST: ["analytics.view_statistics", "patients.view_segment"],
}


def roles_sync(**kwargs) -> None:
    """Create the role groups and give each its default permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    wanted = {perm for perms in ROLE_PERMISSIONS.values() for perm in perms}
    by_name = {}
    for permission in Permission.objects.select_related("content_type"):
        by_name[f"{permission.content_type.app_label}.{permission.codename}"] = permission
    missing = sorted(wanted - set(by_name))
    if missing:
        # Permissions appear once every app has migrated; the next run completes the set.
        return
    for code, perms in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=code)
        group.permissions.add(*[by_name[name] for name in perms])


# Scopes an integration key may hold, and the permissions each one carries.
INTEGRATION_SCOPES: dict[str, list[str]] = {
    "patients.read": ["patients.view_patient", "patients.view_all_patients", *_clinical(("view",))],
    "patients.write": [
        "patients.view_patient",
        "patients.view_all_patients",
        "patients.add_patient",
        "patients.change_patient",
        *_clinical(("view", "add", "change")),
    ],
    "patients.sensitive": ["patients.view_sensitive"],
    "messages.send": ["patients.view_outboundmessage", "patients.add_outboundmessage"],
    "messages.events": ["patients.report_message_events"],
    "hl7.submit": ["integrations.submit_hl7"],
    "fhir.read": ["integrations.read_fhir"],
    "fhir.write": ["integrations.write_fhir"],
}
