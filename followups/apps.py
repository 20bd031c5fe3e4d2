from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = _("Follow-ups")

    def ready(self) -> None:
        from followups import models, timeline  # noqa: F401  (registers the timeline provider)
        from hcrm.audit import audit_register

        for model in (
            models.Questionnaire,
            models.QuestionnaireVersion,
            models.QuestionnaireResponse,
            models.PatientConstitution,
        ):
            audit_register(model)
