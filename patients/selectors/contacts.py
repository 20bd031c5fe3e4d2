"""Reads of the contact log: who may see, play and review which contacts.

- Anyone who may view contacts sees their own contacts, and every contact of a
  patient they may see (on the patient's timeline and in patient-scoped lists).
- A reviewer (`patients.review_contactentry`) also sees, plays and reviews the
  contacts of their departments' staff; a reviewer who sees every patient
  (an administrator) does so for every department.
- A recording is played only by the staff member who logged it and the
  reviewers of its department: seeing a patient's timeline shows the summary,
  not the voices on the call.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from hcrm.models import User
from patients.models import ContactEntry, ContactReview, Patient
from patients.selectors.archive import patients_visible_to, user_sees_all_patients

VIEW = "patients.view_contactentry"
REVIEW = "patients.review_contactentry"


def user_reviews_all_contacts(user) -> bool:
    return user.has_perm(REVIEW) and user_sees_all_patients(user)


def reviewed_department_ids(user) -> set[int]:
    """Departments whose staff's contacts `user` reviews (meaningless for those who review all)."""
    return set(user.department_ids) if user.has_perm(REVIEW) else set()


def _own_or_reviewed(user) -> Q:
    condition = Q(staff_id=user.pk) if getattr(user, "pk", None) else Q(pk__in=[])
    departments = reviewed_department_ids(user)
    if departments:
        condition |= Q(department_id__in=sorted(departments))
    return condition


def contacts_visible_to(user) -> QuerySet[ContactEntry]:
    """Contacts listed for `user` without naming a patient: their own and, for reviewers, their staff's."""
    contacts = ContactEntry.objects.all()
    if not user.has_perm(VIEW):
        return contacts.none()
    if user_reviews_all_contacts(user):
        return contacts
    return contacts.filter(_own_or_reviewed(user))


def contacts_accessible_to(user) -> QuerySet[ContactEntry]:
    """Contacts `user` may open: those listed for them plus every contact of a patient they may see."""
    contacts = ContactEntry.objects.all()
    if not user.has_perm(VIEW):
        return contacts.none()
    if user_reviews_all_contacts(user) or user_sees_all_patients(user):
        return contacts
    patient_visible = Exists(patients_visible_to(user).filter(pk=OuterRef("patient_id")))
    return contacts.filter(_own_or_reviewed(user) | patient_visible)


def contacts_of_patient(user, patient_uuid) -> tuple[Patient | None, QuerySet[ContactEntry]]:
    """One patient's contacts for `user`: all of them if they may see the patient, else only their own scope's.

    Returns the patient too when `user` may see it, else None: a patient outside
    the user's reach and one that does not exist look the same.
    """
    if not user.has_perm(VIEW):
        return None, ContactEntry.objects.none()
    patient = patients_visible_to(user).filter(uuid=patient_uuid).first()
    if patient is not None:
        return patient, ContactEntry.objects.filter(patient=patient)
    return None, contacts_visible_to(user).filter(patient__uuid=patient_uuid)


def contacts_reviewable_by(user) -> QuerySet[ContactEntry]:
    """The contacts of the staff of `user`'s departments (all contacts for administrators)."""
    contacts = ContactEntry.objects.all()
    if not user.has_perm(VIEW) or not user.has_perm(REVIEW):
        return contacts.none()
    if user_reviews_all_contacts(user):
        return contacts
    departments = reviewed_department_ids(user)
    return contacts.filter(department_id__in=sorted(departments)) if departments else contacts.none()


def reviewable_staff(user) -> QuerySet[User]:
    """Staff whose contacts `user` reviews, for a filter list."""
    staff = User.objects.filter(is_active=True).order_by("full_name", "username")
    if user_reviews_all_contacts(user):
        return staff.filter(staff_departments__isnull=False).distinct()
    departments = reviewed_department_ids(user)
    return staff.filter(staff_departments__department_id__in=sorted(departments)).distinct()


def contacts_with_details(contacts: QuerySet[ContactEntry]) -> QuerySet[ContactEntry]:
    """What a list or detail shows of each contact, in a fixed number of queries."""
    return contacts.select_related("patient", "staff", "department", "message").prefetch_related(
        Prefetch("reviews", queryset=ContactReview.objects.select_related("reviewer").order_by("-updated_at", "-id"))
    )


def contact_reviewable(user, contact: ContactEntry) -> bool:
    if not user.has_perm(VIEW) or not user.has_perm(REVIEW):
        return False
    return user_reviews_all_contacts(user) or contact.department_id in reviewed_department_ids(user)


def _own(user, contact: ContactEntry) -> bool:
    return contact.staff_id is not None and contact.staff_id == getattr(user, "pk", None)


def contact_review_allowed(user, contact: ContactEntry) -> bool:
    """Whether `user` may score this contact: a reviewer of its department, and not the one who made it."""
    return contact_reviewable(user, contact) and not _own(user, contact)


def recording_playable(user, contact: ContactEntry) -> bool:
    """The staff member who logged the contact, its department's reviewers and administrators."""
    if not contact.recording or not user.has_perm(VIEW):
        return False
    return _own(user, contact) or contact_reviewable(user, contact)


def contact_reviews_visible(user, contact: ContactEntry) -> bool:
    """Reviews are feedback for the staff member and their supervisors, not for everyone who sees the patient."""
    return (_own(user, contact) and user.has_perm(VIEW)) or contact_reviewable(user, contact)


def duration_text(seconds: int | None) -> str:
    """A call's length as people say it: "45 s", "5 min 30 s"."""
    if seconds is None:
        return ""
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return _("%(seconds)d s") % {"seconds": rest}
    if not rest:
        return _("%(minutes)d min") % {"minutes": minutes}
    return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": rest}
