"""Statistics are computed from the other apps' tables; this app holds only its permission."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Statistics(models.Model):
    """No table: carries the permission to see aggregate statistics (and nothing that identifies a patient)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_statistics", _("Can see aggregate statistics"))]

    def __str__(self) -> str:
        return str(self._meta.verbose_name)
