"""Reads of the follow-ups app that several callers share."""

from __future__ import annotations

from followups.models import PatientConstitution
from patients.models import Patient


def patient_constitution(patient: Patient) -> PatientConstitution | None:
    """The patient's latest constitution assessment, if any."""
    return PatientConstitution.objects.filter(patient=patient).order_by("-assessed_at", "-pk").first()
