"""Reads of the duplicate review queue and the merge history, scoped to what the reader may see."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _

from patients.models import MatchCandidate, MatchStatus, Patient, PatientDepartment, PatientMerge
from patients.selectors.archive import PatientView, patient_view, patients_visible_to, user_sees_all_patients
from patients.validators import format_phone


def match_candidates_visible_to(user, *, status: str | None = MatchStatus.OPEN) -> QuerySet[MatchCandidate]:
    """Pairs `user` may review: open ones of two active patients both visible to them.

    A decided pair (merged, different) is listed when either patient is in the user's reach: after a
    merge one of the two is no longer an active record.
    """
    if status == MatchStatus.OPEN:
        visible = patients_visible_to(user)
        candidates = MatchCandidate.objects.filter(
            Exists(visible.filter(pk=OuterRef("patient_a_id"))),
            Exists(visible.filter(pk=OuterRef("patient_b_id"))),
            status=status,
        )
    else:
        reachable = _patients_in_reach(user)
        candidates = MatchCandidate.objects.filter(
            Exists(reachable.filter(pk=OuterRef("patient_a_id")))
            | Exists(reachable.filter(pk=OuterRef("patient_b_id")))
        )
        if status:
            candidates = candidates.filter(status=status)
    return candidates.select_related("patient_a", "patient_b", "decided_by", "merge").order_by(
        "-score", "-created_at", "-id"
    )


def _patients_in_reach(user) -> QuerySet[Patient]:
    """Patients of the user's departments (all for those who see everyone), merged ones included."""
    patients = Patient.objects.all()
    if user_sees_all_patients(user):
        return patients
    return patients.filter(
        Exists(PatientDepartment.objects.filter(patient=OuterRef("pk"), department_id__in=list(user.department_ids)))
    )


def _survivor_in_departments(user):
    return Exists(
        PatientDepartment.objects.filter(patient=OuterRef("survivor_id"), department_id__in=list(user.department_ids))
    )


def patient_merges_visible_to(user) -> QuerySet[PatientMerge]:
    """Merges whose surviving patient is in `user`'s departments (all of them for those who see everyone)."""
    merges = PatientMerge.objects.select_related("survivor", "prior", "actor", "undone_by")
    if not user_sees_all_patients(user):
        merges = merges.filter(_survivor_in_departments(user))
    return merges.order_by("-created_at", "-id")


@dataclass(frozen=True)
class ComparisonRow:
    label: str
    first: str
    second: str

    @property
    def differs(self) -> bool:
        return self.first != self.second


COMPARED_FIELDS = (
    ("mrn", _("MRN")),
    ("name", _("Name")),
    ("name_pinyin", _("Pinyin")),
    ("sex", _("Sex")),
    ("birth_date", _("Birth date")),
    ("national_id", _("National ID number")),
    ("mobile", _("Mobile")),
    ("phone", _("Other phone")),
    ("email", _("Email")),
    ("province", _("Province")),
    ("city", _("City")),
    ("district", _("District")),
    ("address_detail", _("Street address")),
    ("employer", _("Employer")),
    ("source", _("Source")),
    ("created_at", _("Registered")),
)
RECORD_COUNTS = (
    ("encounters", _("Encounters")),
    ("diagnoses", _("Diagnoses")),
    ("lab_results", _("Lab results")),
    ("medication_orders", _("Medication orders")),
    ("contacts", _("Contacts logged")),
)


def _display(view: PatientView, field: str) -> str:
    value = getattr(view.patient, field)
    if field in ("mobile", "phone"):
        return format_phone(value)
    if field == "birth_date":
        return value.isoformat() if value else ""
    if field == "created_at":
        return f"{value:%Y-%m-%d %H:%M}"
    return view.display(field)


def patients_compared(user, first: Patient, second: Patient) -> dict:
    """Two patients side by side as `user` may see them: masked fields, identifiers, record counts."""
    views = [patient_view(user, first), patient_view(user, second)]
    rows = [ComparisonRow(str(label), *(_display(view, field) for view in views)) for field, label in COMPARED_FIELDS]
    records = []
    for name, label in RECORD_COUNTS:
        # One grouped count per kind: joining every kind at once would multiply the rows.
        model = Patient._meta.get_field(name).related_model
        counts = dict(
            model.objects.filter(patient_id__in=[first.pk, second.pk])
            .values("patient_id")
            .annotate(count=Count("pk"))
            .values_list("patient_id", "count")
        )
        records.append(ComparisonRow(str(label), str(counts.get(first.pk, 0)), str(counts.get(second.pk, 0))))
    identifiers = [
        [f"{identifier.get_kind_display()} {identifier.value}" + (f" ({identifier.assigner})" if identifier.assigner else "")
         for identifier in patient.identifiers.order_by("kind", "assigner", "value")]
        for patient in (first, second)
    ]  # fmt: skip
    return {"views": views, "rows": rows, "records": records, "identifiers": identifiers}
