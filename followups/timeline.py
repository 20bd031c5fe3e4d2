"""TCM constitution assessments and follow-up alerts in the patient's timeline."""

from __future__ import annotations

from django.utils.translation import gettext as _

from followups.models import Alert, Constitution, ConstitutionJudgement, PatientConstitution
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


@timeline_provider("followups.view_alert")
def _alerts(patient: Patient, user, limit: int) -> list[TimelineEntry]:
    """Each alert raised by the patient's answers, with what raised it and whether it was acknowledged."""
    entries = []
    alerts = Alert.objects.filter(patient=patient).select_related("rule", "acknowledged_by").order_by("-created_at")
    for alert in alerts[:limit]:
        if alert.is_acknowledged:
            state = _("acknowledged by %(who)s: %(note)s") % {
                "who": alert.acknowledged_by,
                "note": alert.acknowledgement_note,
            }
        else:
            state = str(alert.get_status_display())
        entries.append(
            TimelineEntry(
                at=alert.created_at,
                kind="alert",
                title=_("Follow-up alert (%(severity)s): %(rule)s")
                % {"severity": alert.get_severity_display(), "rule": alert.rule.name},
                detail=state,
                flag="warning",
                lines=[alert.summary],
            )
        )
    return entries
