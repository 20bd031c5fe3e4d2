"""The permissions that integration systems' API keys carry."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class IntegrationPermissions(models.Model):
    """No table: carries the permissions that integration scopes map to."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("submit_hl7", _("Can submit HL7 v2 messages")),
            ("read_fhir", _("Can read FHIR resources")),
            ("write_fhir", _("Can write FHIR resources")),
        ]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)
