"""Django admin for administrators: departments, staff and roles, integration keys.

The audit trail's admin comes with django-auditlog (read-only).
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin

from hcrm.models import Department, IntegrationKey, StaffDepartment, User


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name", "name_en"]


class StaffDepartmentInline(admin.TabularInline):
    model = StaffDepartment
    extra = 1
    autocomplete_fields = ["department"]


@admin.register(User)
class StaffAdmin(UserAdmin):
    inlines = [StaffDepartmentInline]
    list_display = ["username", "full_name", "title", "is_active", "last_login"]
    list_filter = ["groups", "staff_departments__department", "is_active", "is_staff"]
    search_fields = ["username", "full_name", "employee_number"]
    fieldsets = [
        *UserAdmin.fieldsets,
        (
            _("Hospital"),
            {"fields": ["full_name", "employee_number", "title", "specialties", "is_renowned_expert", "phone"]},
        ),
    ]


@admin.register(IntegrationKey)
class IntegrationKeyAdmin(APIKeyModelAdmin):
    list_display = [*APIKeyModelAdmin.list_display, "source_system"]
