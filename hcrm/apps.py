from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class HcrmConfig(AppConfig):
    name = "hcrm"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from hcrm import checks, schema, signals  # noqa: F401  (registers checks, API schema extensions, login audit)
        from hcrm.roles import roles_sync

        post_migrate.connect(roles_sync, dispatch_uid="hcrm.roles_sync")
