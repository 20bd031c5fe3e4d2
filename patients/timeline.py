"""One timeline of everything known about a patient.

Each app contributes entries through a provider registered with
`timeline_provider`; the patients app does not need to know which apps exist.
A provider returns the entries the given user may see.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models import (
    Allergy,
    Charge,
    ClinicalHistory,
    Diagnosis,
    Encounter,
    LabResult,
    MedicationOrder,
    Patient,
    Procedure,
)


@dataclass
class TimelineEntry:
    at: dt.datetime
    kind: str
    title: str
    detail: str = ""
    flag: str = ""  # "warning" for abnormal results and the like
    lines: list[str] = field(default_factory=list)


Provider = Callable[[Patient, object, int], list[TimelineEntry]]
_providers: list[tuple[str, Provider]] = []


def timeline_provider(permission: str) -> Callable[[Provider], Provider]:
    """Register a provider, called only for users holding `permission`."""

    def register(provider: Provider) -> Provider:
        _providers.append((permission, provider))
        return provider

    return register


def patient_timeline(patient: Patient, user, *, limit: int = 200) -> list[TimelineEntry]:
    """Newest first; each provider is asked for at most `limit` entries."""
    entries: list[TimelineEntry] = []
    for permission, provider in _providers:
        if user.has_perm(permission):
            entries.extend(provider(patient, user, limit))
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


@timeline_provider("patients.view_encounter")
def _encounters(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    encounters = list(
        Encounter.objects.filter(patient=patient).select_related("department", "doctor").order_by("-started_at")[:limit]
    )
    ids = [encounter.pk for encounter in encounters]
    totals = dict(Charge.objects.filter(encounter_id__in=ids).values_list("encounter_id").annotate(total=Sum("amount")))
    diagnoses: dict[int, list[str]] = defaultdict(list)
    if user.has_perm("patients.view_diagnosis"):
        for diagnosis in Diagnosis.objects.filter(encounter_id__in=ids).order_by("-is_primary", "system", "id"):
            diagnoses[diagnosis.encounter_id].append(
                f"{diagnosis.get_system_display()}: {diagnosis.code} {diagnosis.name}"
            )
    entries = []
    for encounter in encounters:
        parts = [str(encounter.department.display_name) if encounter.department else "", encounter.doctor_display]
        if encounter.ended_at:
            # The hospital's calendar day, not UTC's.
            parts.append(_("until %(date)s") % {"date": timezone.localdate(encounter.ended_at).isoformat()})
        if encounter.pk in totals:
            # Two decimals on every database (SQLite's SUM drops trailing zeros).
            parts.append(_("charges ¥%(amount)s") % {"amount": f"{totals[encounter.pk]:.2f}"})
        entries.append(
            TimelineEntry(
                at=encounter.started_at,
                kind="encounter",
                title=f"{encounter.get_kind_display()}"
                + (f" · {encounter.chief_complaint}" if encounter.chief_complaint else ""),
                detail=" · ".join(part for part in parts if part),
                lines=diagnoses.get(encounter.pk, []),
            )
        )
    return entries


@timeline_provider("patients.view_diagnosis")
def _diagnoses_outside_encounters(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=diagnosis.diagnosed_at,
            kind="diagnosis",
            title=f"{diagnosis.code} {diagnosis.name}",
            detail=str(diagnosis.get_system_display()),
        )
        for diagnosis in Diagnosis.objects.filter(patient=patient, encounter__isnull=True).order_by("-diagnosed_at")[
            :limit
        ]
    ]


@timeline_provider("patients.view_procedure")
def _procedures(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=procedure.performed_at,
            kind="procedure",
            title=procedure.name,
            detail=" · ".join(part for part in (procedure.code, procedure.body_site, procedure.performer_name) if part),
            flag="surgery" if procedure.is_surgery else "",
        )
        for procedure in Procedure.objects.filter(patient=patient).order_by("-performed_at")[:limit]
    ]


@timeline_provider("patients.view_labresult")
def _lab_results(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    """One entry per panel and time, listing its results; abnormal ones are flagged."""
    groups: dict[tuple, list[LabResult]] = defaultdict(list)
    for result in LabResult.objects.filter(patient=patient).order_by("-observed_at", "code")[: limit * 10]:
        groups[(result.observed_at, result.panel_name or result.name)].append(result)
    entries = []
    for (observed_at, panel), results in list(groups.items())[:limit]:
        abnormal = [result for result in results if result.is_abnormal]
        entries.append(
            TimelineEntry(
                at=observed_at,
                kind="lab",
                title=panel,
                detail=_("%(count)d results, %(abnormal)d abnormal")
                % {"count": len(results), "abnormal": len(abnormal)},
                flag="warning" if abnormal else "",
                lines=[
                    f"{result.name}: {result.value} {result.unit}"
                    + (f" ({result.reference_range})" if result.reference_range else "")
                    + (f" [{result.abnormal_flag}]" if result.is_abnormal else "")
                    for result in results
                ],
            )
        )
    return entries


@timeline_provider("patients.view_medicationorder")
def _medications(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    entries = []
    for order in MedicationOrder.objects.filter(patient=patient).order_by("-ordered_at")[:limit]:
        lines = [
            f"{herb.get('name')} {herb.get('dose', '')}{herb.get('unit', '')} {herb.get('note', '')}".strip()
            for herb in order.herbs
        ]
        if order.decoction_instructions:
            lines.append(order.decoction_instructions)
        entries.append(
            TimelineEntry(
                at=order.ordered_at,
                kind="medication",
                title=f"{order.name}",
                detail=" · ".join(
                    part
                    for part in (
                        str(order.get_kind_display()),
                        order.dose,
                        order.frequency,
                        _("%(days)d days") % {"days": order.days} if order.days else "",
                    )
                    if part
                ),
                lines=lines,
            )
        )
    return entries


@timeline_provider("patients.view_allergy")
def _allergies(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=allergy.recorded_at,
            kind="allergy",
            title=_("Allergy: %(substance)s") % {"substance": allergy.substance},
            detail=" · ".join(part for part in (allergy.reaction, str(allergy.get_severity_display())) if part),
            flag="warning",
        )
        for allergy in Allergy.objects.filter(patient=patient).order_by("-recorded_at")[:limit]
    ]


@timeline_provider("patients.view_clinicalhistory")
def _histories(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=history.recorded_at, kind="history", title=str(history.get_kind_display()), detail=history.content
        )
        for history in ClinicalHistory.objects.filter(patient=patient).order_by("-recorded_at")[:limit]
    ]


@timeline_provider("patients.view_contactentry")
def _contacts(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    """Calls, messages, letters and visits, logged by staff or by the outbox."""
    from patients.models import ContactEntry
    from patients.selectors.contacts import duration_text

    entries = []
    for contact in (
        ContactEntry.objects.filter(patient=patient).select_related("staff").order_by("-occurred_at", "-id")[:limit]
    ):
        parts = [
            str(contact.get_outcome_display()),
            str(contact.staff) if contact.staff else _("System"),
            duration_text(contact.duration_seconds),
        ]
        lines = [contact.summary] if contact.summary else []
        if contact.recording:
            lines.append(_("Recording attached"))
        entries.append(
            TimelineEntry(
                at=contact.occurred_at,
                kind="contact",
                title=(
                    f"{contact.get_channel_display()} · {contact.get_direction_display()}"
                    f" · {contact.get_purpose_display()}"
                ),
                detail=" · ".join(part for part in parts if part),
                lines=lines,
            )
        )
    return entries
