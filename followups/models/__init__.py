"""Follow-ups: questionnaires with versions and responses; plans, tasks, alerts build on them."""

from followups.models.alerts import (
    UNACKNOWLEDGED,
    Alert,
    AlertMessage,
    AlertMessageStatus,
    AlertRule,
    AlertStatus,
    ConditionKind,
    EscalationTarget,
    Operator,
    RecipientKind,
    Severity,
)
from followups.models.constitution import Constitution, ConstitutionJudgement, PatientConstitution
from followups.models.letters import LetterBatch, LetterPrint
from followups.models.links import FollowUpLink
from followups.models.plans import (
    OPEN_STATUSES,
    AssigneeKind,
    CloseReason,
    DiagnosisSystem,
    FollowUpChannel,
    FollowUpPlan,
    FollowUpTask,
    SourceKind,
    TaskStatus,
    TriggerKind,
)
from followups.models.questionnaires import (
    Questionnaire,
    QuestionnairePurpose,
    QuestionnaireResponse,
    QuestionnaireStatus,
    QuestionnaireVersion,
    ResponseStatus,
)
from followups.models.research import CohortMember, ResearchCohort, ScheduleKind

__all__ = [
    "UNACKNOWLEDGED",
    "Alert",
    "AlertMessage",
    "AlertMessageStatus",
    "AlertRule",
    "AlertStatus",
    "ConditionKind",
    "EscalationTarget",
    "Operator",
    "RecipientKind",
    "Severity",
    "FollowUpLink",
    "LetterBatch",
    "LetterPrint",
    "Constitution",
    "ConstitutionJudgement",
    "PatientConstitution",
    "OPEN_STATUSES",
    "AssigneeKind",
    "CloseReason",
    "DiagnosisSystem",
    "FollowUpChannel",
    "FollowUpPlan",
    "FollowUpTask",
    "SourceKind",
    "TaskStatus",
    "TriggerKind",
    "Questionnaire",
    "QuestionnairePurpose",
    "QuestionnaireResponse",
    "QuestionnaireStatus",
    "QuestionnaireVersion",
    "ResponseStatus",
    "CohortMember",
    "ResearchCohort",
    "ScheduleKind",
]
