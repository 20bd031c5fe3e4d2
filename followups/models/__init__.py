"""Follow-ups: questionnaires with versions and responses; plans, tasks, alerts build on them."""

from followups.models.constitution import Constitution, ConstitutionJudgement, PatientConstitution
from followups.models.questionnaires import (
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireStatus,
    QuestionnaireVersion,
    ResponseStatus,
)

__all__ = [
    "Constitution",
    "ConstitutionJudgement",
    "PatientConstitution",
    "Questionnaire",
    "QuestionnairePurpose",
    "QuestionnaireResponse",
    "QuestionnaireStatus",
    "QuestionnaireVersion",
    "ResponseStatus",
]
