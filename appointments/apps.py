from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AppointmentsConfig(AppConfig):
    name = "appointments"
    verbose_name = _("Appointments")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from appointments import models, timeline  # noqa: F401  (registers the timeline providers)
        from appointments.selectors import booking_policy_forget
        from hcrm.audit import audit_register

        post_save.connect(booking_policy_forget, sender=models.BookingPolicy, dispatch_uid="booking-policy-forget")
        post_delete.connect(
            booking_policy_forget, sender=models.BookingPolicy, dispatch_uid="booking-policy-forget-delete"
        )

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
