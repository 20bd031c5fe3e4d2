from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppointmentsConfig(AppConfig):
    name = "appointments"
    verbose_name = _("Appointments")

    def ready(self) -> None:
        from appointments import models, timeline  # noqa: F401  (registers the timeline providers)
        from hcrm.audit import audit_register

        for model in (
            models.HisAppointment,
            models.Appointment,
            models.WaitlistEntry,
            models.BookingRestriction,
            models.ScheduleTemplate,
            models.Schedule,
            models.Holiday,
            models.BookingPolicy,
            models.DoctorProfile,
            models.FamilyMember,
        ):
            audit_register(model)
