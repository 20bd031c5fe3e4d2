from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = _("Follow-ups")

    def ready(self) -> None:
        from followups import models
        from hcrm.audit import audit_register

        audit_register(models.Questionnaire, m2m_fields=("departments",))
        for model in (models.QuestionnaireVersion, models.QuestionnaireResponse):
            audit_register(model)
