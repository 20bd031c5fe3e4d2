"""Every write of the follow-ups app goes through a function in this package."""

from followups.services.alerts import (
    alert_acknowledge,
    alert_message_deliver,
    alert_messages_send_due,
    alert_rule_delete,
    alert_rule_save,
    alerts_escalate,
    alerts_evaluate,
)
from followups.services.builtin import builtin_questionnaires_load
from followups.services.constitution import constitution_record
from followups.services.imports import questionnaire_import
from followups.services.items import items_check
from followups.services.letters import letter_answers_record, letters_print, letters_reprint
from followups.services.links import (
    followup_link_answer,
    followup_link_open,
    followup_link_reminders_send,
    followup_link_send,
    followup_links_send_due,
)
from followups.services.plans import (
    followups_sweep,
    plan_save,
    tasks_for_diagnosis,
    tasks_for_encounter,
    tasks_for_procedure,
)
from followups.services.questionnaires import questionnaire_save, questionnaire_version_save
from followups.services.research import (
    cohort_enrol,
    cohort_member_withdraw,
    cohort_save,
    cohort_tasks_make,
    research_sweep,
)
from followups.services.responses import answers_check, answers_for, response_save
from followups.services.tasks import (
    followup_schedule_one_off,
    task_call_record,
    task_claim,
    task_close,
    task_complete,
    task_precheck,
    task_reassign,
    task_record_attempt,
    task_release,
)

__all__ = [
    "alert_acknowledge",
    "alert_message_deliver",
    "alert_messages_send_due",
    "alert_rule_delete",
    "alert_rule_save",
    "alerts_escalate",
    "alerts_evaluate",
    "builtin_questionnaires_load",
    "cohort_enrol",
    "cohort_member_withdraw",
    "cohort_save",
    "cohort_tasks_make",
    "research_sweep",
    "constitution_record",
    "followup_link_answer",
    "followup_link_open",
    "followup_link_reminders_send",
    "followup_link_send",
    "followup_links_send_due",
    "followup_schedule_one_off",
    "followups_sweep",
    "letter_answers_record",
    "letters_print",
    "letters_reprint",
    "plan_save",
    "task_call_record",
    "task_claim",
    "task_close",
    "task_complete",
    "task_precheck",
    "task_reassign",
    "task_record_attempt",
    "task_release",
    "tasks_for_diagnosis",
    "tasks_for_encounter",
    "tasks_for_procedure",
    "answers_check",
    "answers_for",
    "items_check",
    "questionnaire_import",
    "questionnaire_save",
    "questionnaire_version_save",
    "response_save",
]
