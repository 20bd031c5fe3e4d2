"""The follow-ups part of the demo hospital: the built-in questionnaires and alert rules, and a few alerts."""

from __future__ import annotations

from followups.builtin import post_discharge
from followups.models import Alert, Questionnaire
from followups.services import builtin_questionnaires_load, response_save
from patients.demo.load import demo_extension
from patients.models import Encounter

# Post-discharge answers with red flags (fever, chest pain) and a wish to be seen.
RED_FLAG_ANSWERS = {
    "recovery": "worse",
    "has_symptoms": True,
    "symptoms": ["fever", "chest_pain"],
    "medication": "as_prescribed",
    "wants_visit": True,
    "visit_reason": "发热两天",
}
DEMO_ALERTS = 2
DEMO_DOCTOR = "doctor"


def _demo_alerts() -> int:
    """Post-discharge answers with red flags from a couple of discharged patients, unless alerts exist."""
    if Alert.objects.exists():
        return 0
    version = Questionnaire.objects.get(code=post_discharge.CODE).current_version
    discharged = Encounter.objects.filter(
        kind=Encounter.Kind.INPATIENT, ended_at__isnull=False, doctor__isnull=False
    ).select_related("patient")
    # One for the demo doctor's sign-in (if the demo doctor attended a stay), the rest for colleagues.
    own = list(discharged.filter(doctor__username=DEMO_DOCTOR).order_by("-ended_at", "pk")[:1])
    others = discharged.exclude(doctor__username=DEMO_DOCTOR).order_by("-ended_at", "pk")
    stays = own + list(others[: DEMO_ALERTS - len(own)])
    for stay in stays:
        response_save(version=version, patient=stay.patient, answers=RED_FLAG_ANSWERS, source="phone", complete=True)
    return Alert.objects.count()


@demo_extension
def followups_demo_ensure(*, seed: int) -> str:
    """The built-in questionnaires and alert rules, created or brought up to date; a couple of alerts."""
    outcomes = builtin_questionnaires_load()
    alerts = _demo_alerts()
    return (
        f"{outcomes['created']} built-in questionnaires created ({sum(outcomes.values())} in all), "
        f"{alerts} alerts raised"
    )
