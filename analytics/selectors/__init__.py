"""Statistics for administrators and department heads: satisfaction survey results and follow-up KPIs.

Every figure is aggregated by the database (one GROUP BY per source table, counts with FILTER) over the
columns and indexes kept for it (`QuestionnaireResponse.satisfaction`, `.recommendation`, `.item_scores`,
the rated department and doctor; the tasks' due-day index; the encounters' discharge index); Python only
adds up the few hundred groups that come back. Nothing returned names a patient, except the comments,
and those only to someone who may see the patient.

Definitions (shown on the pages too):
- a satisfaction **response** is a completed response to a satisfaction survey, counted in the period it
  was completed in, under the department and doctor it rates: those of the follow-up task it completed
  (the doctor is the attending doctor of the encounter that triggered the task, else the task's assignee
  when a doctor), or the hidden answers staff gave when recording it without a task;
- an **invitation** is a satisfaction follow-up task due in the period that was tried at least once (a call
  made, a link sent) or completed; the **response rate** is the share of invitations completed;
- **NPS** = % promoters (9–10) − % detractors (0–6) of the responses answering the 0–10 recommendation;
- a **discharge** is an inpatient stay, not cancelled, that ended in the period; it is **covered** when a
  follow-up task was made from it;
- **tasks due** are follow-up tasks due in the period, except those closed as not to be worked (the patient
  died, was readmitted or withdrew consent, or the task was cancelled); **tried**: at least one attempt or
  completed; **connected**: completed, reached on the phone, or refused on the phone (the patient answered);
  **completed**: completed with a response; **on time**: completed no later than the due day plus
  ANALYTICS_ON_TIME_GRACE_DAYS days. Connect rate = connected / tried; completion and on-time rates are
  shares of the tasks due.
"""

from analytics.selectors.common import (
    Filters,
    cached,
    default_period,
    department_names,
    doctor_names,
    months_of,
    statistics_department_ids,
    statistics_departments,
)
from analytics.selectors.kpis import Kpis, followup_kpis
from analytics.selectors.satisfaction import (
    COMMENTS_PAGE,
    Satisfaction,
    lowest_items,
    questionnaire_title,
    rated_responses,
    satisfaction_comments,
    satisfaction_results,
    satisfaction_versions,
)

__all__ = [
    "COMMENTS_PAGE",
    "Filters",
    "Kpis",
    "Satisfaction",
    "cached",
    "default_period",
    "department_names",
    "doctor_names",
    "followup_kpis",
    "lowest_items",
    "months_of",
    "questionnaire_title",
    "rated_responses",
    "satisfaction_comments",
    "satisfaction_results",
    "satisfaction_versions",
    "statistics_department_ids",
    "statistics_departments",
]
