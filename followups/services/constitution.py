"""The patient's TCM constitution, recorded from a completed constitution questionnaire."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from followups.constitution import constitution_judge
from followups.models import PatientConstitution, QuestionnairePurpose, QuestionnaireResponse, ResponseStatus
from followups.scoring import scores_compute


@transaction.atomic
def constitution_record(*, response: QuestionnaireResponse) -> PatientConstitution:
    """Judge a completed constitution response and store the result on its patient; again for the same
    response, the stored result is brought up to date rather than duplicated."""
    version = response.version
    if version.questionnaire.purpose != QuestionnairePurpose.CONSTITUTION:
        raise ValidationError(_("This questionnaire does not assess the constitution."), code="not_constitution")
    if response.status != ResponseStatus.COMPLETED or response.completed_at is None:
        raise ValidationError(_("The constitution is judged from a completed response only."), code="not_completed")
    # Computed from the answers rather than read from response.scores, so the result always matches the version.
    scores = scores_compute(version.items, version.scoring, response.answers)
    try:
        result = constitution_judge({code: score["value"] for code, score in scores.items()})
    except ValueError as error:
        raise ValidationError(
            _("Every constitution needs all of its items answered."), code="incomplete", params={"detail": str(error)}
        ) from error
    constitution, _created = PatientConstitution.objects.update_or_create(
        response=response,
        defaults={
            "patient": response.patient,
            "assessed_at": response.completed_at,
            "primary": result.primary,
            "secondary": result.secondary,
            "scores": result.scores,
            "judgements": result.judgements,
        },
    )
    return constitution
