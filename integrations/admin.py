"""Django admin for the integration engine: profiles are edited here or in the console; the log is read-only.

Raw message content is not shown here: it is read in the console, where each view is audited.
"""

from django.contrib import admin

from integrations.models import InboundMessage, SourceProfile


@admin.register(SourceProfile)
class SourceProfileAdmin(admin.ModelAdmin):
    list_display = ["name", "protocol", "sending_application", "sending_facility", "default_charset", "is_active"]
    list_filter = ["protocol", "is_active", "default_charset"]
    search_fields = ["name", "sending_application", "sending_facility"]


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ["received_at", "sender", "message_type", "control_id", "status", "error_code", "attempts"]
    list_filter = ["status", "protocol", "transport"]
    list_select_related = ["source"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    exclude = ["raw", "patient_identifiers"]
    readonly_fields = [
        "uuid",
        "protocol",
        "transport",
        "source",
        "sender",
        "peer",
        "received_at",
        "control_id",
        "message_type",
        "version",
        "status",
        "error_code",
        "error_location",
        "error",
        "patient",
        "duplicate_of",
        "attempts",
        "processed_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
