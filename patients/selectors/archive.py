"""Reads of the patient archive that several callers share: visibility, search, masking."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from hcrm.masking import mask_national_id, mask_phone, mask_text
from hcrm.rows import statement_run
from patients.models import (
    BreakGlassGrant,
    Channel,
    Consent,
    ConsentPurpose,
    Patient,
    PatientDepartment,
    PatientIdentifier,
)
from patients.pinyin import search_key
from patients.validators import normalize_national_id, phone_search_key


def user_sees_all_patients(user) -> bool:
    return user.has_perm("patients.view_all_patients")


def active_grant_patient_ids(user) -> set[int]:
    """Patients whose record `user` has opened by breaking the glass, still within the time limit."""
    if not getattr(user, "pk", None):
        return set()
    cached = getattr(user, "_grant_patient_ids", None)
    if cached is None:
        cached = set(
            BreakGlassGrant.objects.filter(user=user, expires_at__gt=timezone.now()).values_list(
                "patient_id", flat=True
            )
        )
        user._grant_patient_ids = cached
    return cached


def patients_visible_to(user) -> QuerySet[Patient]:
    """Active (not merged) patients `user` may see: all, or those of their departments plus reveals."""
    patients = Patient.objects.filter(merged_into__isnull=True)
    if user_sees_all_patients(user):
        return patients
    in_department = Exists(
        PatientDepartment.objects.filter(patient=OuterRef("pk"), department_id__in=list(user.department_ids))
    )
    granted = active_grant_patient_ids(user)
    if granted:
        return patients.filter(in_department | Q(pk__in=granted))
    return patients.filter(in_department)


def patient_visible(user, patient: Patient) -> bool:
    if patient.merged_into_id is not None:
        return False
    if user_sees_all_patients(user) or patient.pk in active_grant_patient_ids(user):
        return True
    return PatientDepartment.objects.filter(patient=patient, department_id__in=list(user.department_ids)).exists()


def can_view_sensitive(user, patient: Patient) -> bool:
    return user.has_perm("patients.view_sensitive") or patient.pk in active_grant_patient_ids(user)


# --- Search ------------------------------------------------------------------------------

NATIONAL_ID = re.compile(r"^\d{17}[\dXx]$")
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"^[A-Za-zü\s]+$")


class SearchKind:
    NAME = "name"
    PINYIN = "pinyin"
    PHONE = "phone"
    MRN = "mrn"
    IDENTIFIER = "identifier"
    NATIONAL_ID = "national_id"
    NONE = "none"


def search_kind(query: str) -> str:
    """What a search box entry is: a national ID, a phone, a name, pinyin, or a number (MRN or card)."""
    query = query.strip()
    if not query:
        return SearchKind.NONE
    if NATIONAL_ID.match(query):
        return SearchKind.NATIONAL_ID
    if HAN.search(query):
        return SearchKind.NAME
    if LATIN.match(query):
        return SearchKind.PINYIN
    digits = re.sub(r"[\s\-()]", "", query)
    if re.fullmatch(r"(\+\d{7,15}|(0086|86)?1[3-9]\d{9}|0\d{9,11})", digits):
        return SearchKind.PHONE
    return SearchKind.MRN


def patients_matching(patients: QuerySet[Patient], query: str, kind: str | None = None) -> QuerySet[Patient]:
    """Narrow `patients` to those matching `query`; every branch is an indexed lookup.

    Matches keep the archive's order, most recently updated first: the patient
    a caller is looking for is usually a recent one, and PostgreSQL can walk
    that index and stop at the first page even when a surname matches 8% of
    a million patients.

    Without an explicit `kind`, a number is looked up as a phone, an MRN and an
    identifier at once: an 11-digit visit card can look like a mobile number.
    """
    query = query.strip()
    typed = kind is None
    kind = kind or search_kind(query)
    if kind == SearchKind.NATIONAL_ID:
        return patients.filter(national_id=normalize_national_id(query))
    if kind == SearchKind.NAME:
        return patients.filter(name__startswith=query)
    if kind == SearchKind.PINYIN:
        key = search_key(query)
        if not key:
            return patients.none()
        return patients.filter(
            Q(name_pinyin__startswith=key)
            | Q(name_pinyin_initials__startswith=key)
            | Q(name_pinyin_consonants__startswith=key)
        )
    if kind in (SearchKind.PHONE, SearchKind.MRN, SearchKind.IDENTIFIER):
        conditions = Q(pk__in=[])
        if kind == SearchKind.PHONE or typed:
            phone = phone_search_key(query)
            if phone is not None:
                conditions |= Q(mobile=phone) | Q(phone=phone)
        if kind != SearchKind.PHONE or typed:
            # The identifier lookup runs first so the patient query is indexed
            # lookups combined by primary key, not an OR across a join.
            holder_ids = list(PatientIdentifier.objects.filter(value=query).values_list("patient_id", flat=True)[:50])
            conditions |= Q(mrn__in={query, query.upper()}) | Q(pk__in=holder_ids)
        return patients.filter(conditions)
    return patients.none()


# --- Consent ------------------------------------------------------------------------------

# Without an explicit decision, service messages about the patient's own care
# are allowed and marketing is not (opt-in).
CONSENT_DEFAULTS = {
    ConsentPurpose.FOLLOW_UP: True,
    ConsentPurpose.APPOINTMENT: True,
    ConsentPurpose.CARE: True,
    ConsentPurpose.MARKETING: False,
}


def consent_granted(patient: Patient, *, purpose: str, channel: str) -> bool:
    """The patient's decision for `purpose` by `channel`, or the default. Every message queued and sent reads
    it: a fixed statement prepared once per connection (`hcrm.rows`), not a queryset compiled each time."""
    with connection.cursor() as cursor:
        statement_run(cursor, _consent_sql(connection.vendor), [patient.pk, purpose, channel])
        row = cursor.fetchone()
    return CONSENT_DEFAULTS[purpose] if row is None else row[0]


@functools.cache
def _consent_sql(vendor: str) -> str:
    meta = Consent._meta

    def column(name: str) -> str:
        return connection.ops.quote_name(meta.get_field(name).column)

    return (
        f"SELECT {column('granted')} FROM {connection.ops.quote_name(meta.db_table)} "  # noqa: S608 (model metadata)
        f"WHERE {column('patient')} = %s AND {column('purpose')} = %s AND {column('channel')} = %s"
    )


def consent_matrix(patient: Patient) -> list[dict[str, Any]]:
    """For each purpose, each channel's effective decision and whether it was explicit."""
    explicit = {(c.purpose, c.channel): c.granted for c in patient.consents.all()}
    return [
        {
            "purpose": purpose,
            "label": label,
            "channels": [
                {
                    "channel": channel,
                    "label": channel_label,
                    "granted": explicit.get((purpose, channel), CONSENT_DEFAULTS[purpose]),
                    "explicit": (purpose, channel) in explicit,
                }
                for channel, channel_label in Channel.choices
            ],
        }
        for purpose, label in ConsentPurpose.choices
    ]


# --- Masking --------------------------------------------------------------------------------

MASKERS = {
    "national_id": mask_national_id,
    "address_detail": mask_text,
    "employer": mask_text,
    "income_band": lambda value: "***" if value else "",
    "family_notes": lambda value: "***" if value else "",
}


@dataclass(frozen=True)
class PatientView:
    """What a given member of staff may see of a patient: sensitive fields masked unless allowed."""

    patient: Patient
    revealed: bool

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.patient, name)
        if not self.revealed and name in MASKERS:
            return MASKERS[name](value)
        return value

    def display(self, field: str) -> str:
        """The value as a person should read it (choice labels, masked where needed)."""
        if not self.revealed and field in MASKERS:
            return MASKERS[field](getattr(self.patient, field))
        getter = getattr(self.patient, f"get_{field}_display", None)
        return str(getter()) if getter else str(getattr(self.patient, field) or "")


def patient_view(user, patient: Patient) -> PatientView:
    return PatientView(patient=patient, revealed=can_view_sensitive(user, patient))


def contact_phone_masked(value: str, revealed: bool) -> str:
    return value if revealed else mask_phone(value)
