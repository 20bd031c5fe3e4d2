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

# Appointments. Who may do what with bookings and schedules; the department scoping is applied by the
# appointments selectors (`booking_department_ids`, `appointments_visible_to`), not by the permission:
# - reading bookings, waitlists and the department grid: doctors, nurses, department heads for the
#   sessions of their own departments; agents and administrators (`view_all_appointments`) for all.
#   Sessions themselves (no patient data) are readable across departments through the API;
#   analysts hold no appointments permission (statistics come through analytics);
# - booking for a patient (`add_appointment`), cancelling or moving a booking on the patient's behalf
#   (`change_appointment`) and the waitlist: agents on the phone for every department; nurses and
#   department heads at the window for their own; administrators. Doctors do not book: they add
#   places (加号) to their sessions through the schedule pages;
# - checking patients in (`check_in_appointment`): nurses and doctors of the session's department,
#   department heads, administrators;
# - creating sessions, stopping a clinic and adding places (`add_schedule`, `change_schedule`), weekly
#   schedules, holidays and doctor profiles: department heads for their department, administrators for
#   all; the booking rules (`change_bookingpolicy`): administrators;
# - lifting a no-show restriction on online booking (`change_bookingrestriction`, reason required,
#   audited): department heads, administrators, and agents, who hear the patient's explanation on the phone.
_APPOINTMENTS_READ = [
    "appointments.view_schedule",
    "appointments.view_slot",
    "appointments.view_appointment",
    "appointments.view_waitlistentry",
    "appointments.view_bookingrestriction",
    "appointments.view_hisappointment",
]
_APPOINTMENTS_BOOK = [
    "appointments.add_appointment",
    "appointments.change_appointment",
    "appointments.add_waitlistentry",
    "appointments.change_waitlistentry",
]
_APPOINTMENTS_CHECK_IN = ["appointments.check_in_appointment"]
_SCHEDULES_MANAGE = [
    "appointments.add_schedule",
    "appointments.change_schedule",
    *_crud("appointments", "scheduletemplate", ("view", "add", "change", "delete")),
    *_crud("appointments", "holiday", ("view", "add", "change", "delete")),
    "appointments.change_doctorprofile",
    "appointments.view_doctorprofile",
    "appointments.view_bookingpolicy",
]
_RESTRICTION_LIFT = ["appointments.change_bookingrestriction"]

# Questionnaires. Doctors, nurses and agents read questionnaires and record responses for the patients
# they may see (the patient scoping is the archive's); department heads and administrators build and
# change questionnaires (editing an answered version makes the next one).
_QUESTIONNAIRES_USE = [
    "followups.view_questionnaire",
    "followups.view_questionnaireversion",
    "followups.view_questionnaireresponse",
    "followups.add_questionnaireresponse",
    "followups.change_questionnaireresponse",
    "followups.view_patientconstitution",
]
_QUESTIONNAIRES_EDIT = _crud("followups", "questionnaire", ("add", "change")) + _crud(
    "followups", "questionnaireversion", ("add", "change")
)

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.DOCTOR: _PATIENT_EDIT
    + _clinical(("view", "add", "change"))
    + _CONTACTS
    + _SEGMENTS_USE
    + _MESSAGES_READ
    + _APPOINTMENTS_READ
    + _APPOINTMENTS_CHECK_IN
    + _QUESTIONNAIRES_USE,
    Role.NURSE: _PATIENT_EDIT
    + _clinical(("view",))
    + _clinical(("add", "change"), ("allergy", "clinicalhistory", "labresult"))
    + _CONTACTS
    + ["patients.view_segment", "patients.view_segment_members"]
    + _MESSAGES_READ
    + _APPOINTMENTS_READ
    + _APPOINTMENTS_BOOK
    + _APPOINTMENTS_CHECK_IN
    + _QUESTIONNAIRES_USE,
    Role.AGENT: _PATIENT_EDIT
    + ["patients.view_all_patients"]
    + _clinical(("view",), ("encounter", "diagnosis", "allergy"))
    + _CONTACTS
    + _SEGMENTS_USE
    + _MESSAGES_READ
    + ["patients.add_outboundmessage", "patients.import_patients"]
    + _APPOINTMENTS_READ
    + _APPOINTMENTS_BOOK
    + ["appointments.view_all_appointments"]
    + _RESTRICTION_LIFT
    + _QUESTIONNAIRES_USE,
    Role.DEPARTMENT_HEAD: _PATIENT_EDIT
    + _clinical(("view", "add", "change", "delete"))
    + ["hcrm.view_department_audit", "hcrm.view_user", "patients.review_contactentry"]
    + _CONTACTS
    + _SEGMENTS_USE
    + ["patients.change_segment", "patients.delete_segment", "patients.import_patients"]
    + _MESSAGES_READ
    + _IDENTITY_REVIEW
    + _APPOINTMENTS_READ
    + _APPOINTMENTS_BOOK
    + _APPOINTMENTS_CHECK_IN
    + _SCHEDULES_MANAGE
    + _RESTRICTION_LIFT
    + _QUESTIONNAIRES_USE
    + _QUESTIONNAIRES_EDIT,
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
    + _IDENTITY_REVIEW
    + _APPOINTMENTS_READ
    + _APPOINTMENTS_BOOK
    + _APPOINTMENTS_CHECK_IN
    + ["appointments.view_all_appointments"]
    + _SCHEDULES_MANAGE
    + _RESTRICTION_LIFT
    + _crud("appointments", "bookingpolicy", ("view", "change"))
    + _QUESTIONNAIRES_USE
    + _QUESTIONNAIRES_EDIT,
    Role.ANALYST: ["analytics.view_statistics", "patients.view_segment"],
}

# Statistics (satisfaction results, follow-up KPIs): analysts and administrators for every department,
# department heads for their own (the scoping is `analytics.selectors.statistics_department_ids`).
for _role in (Role.DEPARTMENT_HEAD, Role.ADMINISTRATOR):
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] + ["analytics.view_statistics"]

# Follow-up plans and tasks. Scoping to departments is applied by the followups selectors, not here:
# - working tasks (`claim_followuptask`: claim, call, record attempts) and scheduling a one-off follow-up
#   from a patient's page (`add_followuptask`): doctors, nurses, agents, department heads, administrators;
# - a department's worklist and reassigning its tasks (`view_department_followuptask`,
#   `change_followuptask`): department heads for their departments, administrators;
# - writing plans (`add_followupplan`, `change_followupplan`): department heads, administrators;
# - printing follow-up letters (`print_followup_letters`: each letter carries the patient's full postal
#   address, an audited export): nurses, agents, department heads, administrators; doctors do not post.
_FOLLOWUP_WORK = [
    "followups.view_followupplan",
    "followups.view_followuptask",
    "followups.add_followuptask",
    "followups.claim_followuptask",
]
_FOLLOWUP_LEAD = [
    "followups.view_department_followuptask",
    "followups.change_followuptask",
    "followups.add_followupplan",
    "followups.change_followupplan",
]
_FOLLOWUP_LETTERS = ["followups.print_followup_letters"]
# Alerts on answers. Scoping is the followups selectors' (`alerts_visible_to`):
# - seeing and acknowledging alerts (`view_alert`, `acknowledge_alert`): doctors and nurses their own (named,
#   or to their role in their departments, escalations included), department heads those of their departments
#   (`view_department_alert`), administrators all;
# - alert rules (`*_alertrule`): department heads for their departments, administrators for all.
_ALERTS_OWN = ["followups.view_alert", "followups.acknowledge_alert"]
_ALERTS_LEAD = [
    "followups.view_department_alert",
    *_crud("followups", "alertrule", ("view", "add", "change", "delete")),
]
for _role, _permissions in {
    Role.DOCTOR: _FOLLOWUP_WORK + _ALERTS_OWN,
    Role.NURSE: _FOLLOWUP_WORK + _FOLLOWUP_LETTERS + _ALERTS_OWN,
    Role.AGENT: _FOLLOWUP_WORK + _FOLLOWUP_LETTERS,
    Role.DEPARTMENT_HEAD: _FOLLOWUP_WORK + _FOLLOWUP_LEAD + _FOLLOWUP_LETTERS + _ALERTS_OWN + _ALERTS_LEAD,
    Role.ADMINISTRATOR: _FOLLOWUP_WORK + _FOLLOWUP_LEAD + _FOLLOWUP_LETTERS + _ALERTS_OWN + _ALERTS_LEAD,
}.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] + _permissions

# Research cohorts. Their pages show counts and completion by wave, never a patient; exports carry
# pseudonyms, age at enrolment and sex, no identifier and no free text:
# - reading cohorts and exporting their answers (`export_research`): analysts, administrators;
# - setting cohorts up and withdrawing a patient from one (`add_researchcohort`, `change_researchcohort`,
#   `change_cohortmember`): department heads, administrators;
# - including free-text answers, which may name someone (`export_research_free_text`): administrators.
_RESEARCH_READ = ["followups.view_researchcohort", "followups.export_research"]
_RESEARCH_MANAGE = [
    "followups.view_researchcohort",
    "followups.add_researchcohort",
    "followups.change_researchcohort",
    "followups.change_cohortmember",
]
for _role, _permissions in {
    Role.ANALYST: _RESEARCH_READ,
    Role.DEPARTMENT_HEAD: _RESEARCH_MANAGE,
    Role.ADMINISTRATOR: _RESEARCH_MANAGE + ["followups.export_research", "followups.export_research_free_text"],
}.items():
    ROLE_PERMISSIONS[_role] = ROLE_PERMISSIONS[_role] + _permissions


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
    # Other systems (a WeChat mini program's back end, a kiosk, the HIS) read sessions and bookings of
    # every department, and book, cancel, move and check in through the same services as staff.
    "appointments.read": [
        "appointments.view_schedule",
        "appointments.view_slot",
        "appointments.view_appointment",
        "appointments.view_all_appointments",
        "appointments.view_waitlistentry",
    ],
    "appointments.write": [
        "appointments.view_schedule",
        "appointments.view_slot",
        "appointments.view_appointment",
        "appointments.view_all_appointments",
        "appointments.view_waitlistentry",
        "appointments.add_appointment",
        "appointments.change_appointment",
        "appointments.check_in_appointment",
        "appointments.add_waitlistentry",
        "appointments.change_waitlistentry",
    ],
}
