"""Who may see and manage which department's schedules.

Administrators manage every department; anyone else (a department head, in the default roles) manages the
departments they belong to. Sessions are seen by their department's staff, by agents (who book for the
whole hospital) and by administrators.
"""

from __future__ import annotations

from django.db.models import QuerySet

from hcrm.models import Department
from hcrm.roles import Role


def manages_all_departments(user) -> bool:
    return user.is_superuser or Role.ADMINISTRATOR in user.role_codes


def managed_departments(user) -> QuerySet[Department]:
    """Departments whose schedules `user` manages (given the permission for the act)."""
    departments = Department.objects.filter(is_active=True)
    if manages_all_departments(user):
        return departments
    return departments.filter(pk__in=sorted(user.department_ids))


def sees_department(user, department_id: int) -> bool:
    """Sessions of every department for administrators and for agents, who book for the whole hospital."""
    return (
        manages_all_departments(user)
        or user.has_perm("patients.view_all_patients")
        or department_id in user.department_ids
    )


def manages_department(user, department_id: int | None) -> bool:
    """`None` is the whole hospital, which only administrators manage."""
    if manages_all_departments(user):
        return True
    return department_id is not None and department_id in user.department_ids
