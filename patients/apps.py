from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PatientsConfig(AppConfig):
    name = "patients"
    verbose_name = _("Patients")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from hcrm.audit import audit_register
        from patients import models, timeline  # noqa: F401  (timeline registers its providers)
        from patients.selectors.messages import templates_forget
        from patients.selectors.outreach import outreach_settings_forget

        # The outbox keeps templates and settings in process: a change is seen by the next message.
        for model, forget in (
            (models.MessageTemplate, templates_forget),
            (models.OutreachSettings, outreach_settings_forget),
        ):
            post_save.connect(forget, sender=model, dispatch_uid=f"{model.__name__}-forget")
            post_delete.connect(forget, sender=model, dispatch_uid=f"{model.__name__}-forget-delete")

        audit_register(
            models.Patient,
            mask_fields=models.Patient.SENSITIVE_FIELDS,
            exclude=("name_pinyin", "name_pinyin_initials", "name_pinyin_consonants"),
            m2m_fields=("tags",),
        )
        audit_register(models.ContactPerson, mask_fields=("name", "phone"))
        for model in (
            models.PatientIdentifier,
            models.Consent,
            models.PatientDepartment,
            models.ClinicalHistory,
            models.Allergy,
            models.Encounter,
            models.Charge,
            models.Diagnosis,
            models.Procedure,
            models.LabResult,
            models.MedicationOrder,
        ):
            audit_register(model)
        # Outbound messages change state many times on the system's behalf; the person-initiated
        # acts on them (queue, withdraw, resend) are audited explicitly by the outbox services.
        for model in (
            models.ContactEntry,
            models.ContactReview,
            models.Segment,
            models.MessageTemplate,
            models.OutreachSettings,
        ):
            audit_register(model)
