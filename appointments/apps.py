from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppointmentsConfig(AppConfig):
    name = "appointments"
    verbose_name = _("Appointments")

    def ready(self) -> None:
        from appointments import models
        from hcrm.audit import audit_register

        audit_register(models.HisAppointment)
