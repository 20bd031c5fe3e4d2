"""Patients are managed in the staff console, where masking and audit apply; the admin only keeps tags."""

from django.contrib import admin

from patients.models import Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "color"]
    search_fields = ["name"]
