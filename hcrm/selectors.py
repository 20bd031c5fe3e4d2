"""Platform reads shared by the console and the API."""

from __future__ import annotations

from django.db.models import QuerySet

from hcrm.models import AuditEntry


def audit_entries_visible_to(user) -> QuerySet[AuditEntry] | None:
    """All entries for administrators; the entries of their departments' staff for department heads."""
    entries = AuditEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-id")
    if user.has_perm("hcrm.view_auditentry"):
        return entries
    if user.has_perm("hcrm.view_department_audit") and user.department_ids:
        return entries.filter(actor__staff_departments__department_id__in=user.department_ids).distinct()
    return None
