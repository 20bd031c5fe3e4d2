"""Follow-ups: questionnaires with versions and responses; plans, tasks, alerts build on them."""

from followups.models.questionnaires import (
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireStatus,
    QuestionnaireVersion,
    ResponseStatus,
)

__all__ = [
    "Questionnaire",
    "QuestionnairePurpose",
    "QuestionnaireResponse",
    "QuestionnaireStatus",
    "QuestionnaireVersion",
    "ResponseStatus",
]
