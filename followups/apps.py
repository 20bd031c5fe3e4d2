from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = _("Follow-ups")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from followups import models, timeline  # noqa: F401  (registers the timeline provider)
        from followups.services.plans import plans_forget, tasks_for_records
        from hcrm.audit import audit_register
        from patients.events import clinical_records_listen

        audit_register(models.Questionnaire, m2m_fields=("departments",))
        for model in (models.QuestionnaireVersion, models.QuestionnaireResponse, models.PatientConstitution):
            audit_register(model)
        for model in (
            models.FollowUpPlan,
            models.FollowUpTask,
            models.CohortMember,
            models.AlertRule,
            models.Alert,
            models.LetterBatch,
            models.LetterPrint,
        ):
            audit_register(model)
        audit_register(models.ResearchCohort, exclude=("pseudonym_salt",))
        clinical_records_listen(tasks_for_records)
        # Active plans are kept in process: a plan saved or deleted here is seen by the next record.
        post_save.connect(plans_forget, sender=models.FollowUpPlan, dispatch_uid="followup-plans-forget")
        post_delete.connect(plans_forget, sender=models.FollowUpPlan, dispatch_uid="followup-plans-forget-delete")
