"""TCM constitution assessments in the patient's timeline."""

from __future__ import annotations

from django.utils.translation import gettext as _

from followups.models import Constitution, ConstitutionJudgement, PatientConstitution
from patients.models import Patient
from patients.timeline import TimelineEntry, timeline_provider


def _name(code: str) -> str:
    return str(Constitution(code).label)


@timeline_provider("followups.view_patientconstitution")
def _constitutions(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    """Each assessment with its primary and secondary constitution and the nine scores."""
    entries = []
    for assessment in PatientConstitution.objects.filter(patient=patient).order_by("-assessed_at", "-pk")[:limit]:
        primary = _name(assessment.primary) if assessment.primary else _("none reaches the standard's thresholds")
        if assessment.primary == Constitution.BALANCED:
            primary += f" ({ConstitutionJudgement(assessment.judgements['balanced']).label})"
        detail = _("Primary: %(primary)s") % {"primary": primary}
        if assessment.secondary:
            detail += " · " + _("secondary: %(secondary)s") % {
                "secondary": "、".join(_name(code) for code in assessment.secondary)
            }
        # In the standard's order: PostgreSQL's jsonb does not keep the order keys were written in.
        lines = [
            f"{_name(code)} {assessment.scores[code]:.2f} · {ConstitutionJudgement(assessment.judgements[code]).label}"
            for code in Constitution.values
            if code in assessment.scores
        ]
        entries.append(
            TimelineEntry(
                at=assessment.assessed_at,
                kind="constitution",
                title=_("TCM constitution assessment"),
                detail=detail,
                lines=lines,
            )
        )
    return entries
