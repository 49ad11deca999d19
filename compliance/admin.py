from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from compliance.models import AuditEvent, CallPermission, ConsentRecord
from core.admin import ReadOnlyAdmin, ReadOnlyInline


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["call", "contact", "kind", "language", "started_at", "completed_at"]
    list_filter = ["kind", "language", "business_number"]
    list_select_related = ["call", "contact"]
    search_fields = ["contact__wa_id", "contact__name", "=call__wa_call_id"]
    date_hierarchy = "started_at"


class AuditEventInline(ReadOnlyInline):
    model = AuditEvent
    fields = ["at", "kind", "from_status", "to_status", "detail", "actor", "data"]
    ordering = ["-at", "-pk"]


@admin.register(CallPermission)
class CallPermissionAdmin(ReadOnlyAdmin):
    list_display = [
        "contact", "business_number", "status", "source", "deadline_at", "consecutive_unanswered", "why_link",
    ]  # fmt: skip
    list_filter = ["status", "source", "business_number"]
    list_select_related = ["contact", "business_number"]
    search_fields = ["contact__wa_id", "contact__name"]
    date_hierarchy = "updated_at"
    inlines = [AuditEventInline]

    @admin.display(description="Can we call?")
    def why_link(self, permission: CallPermission) -> str:
        url = reverse("compliance:why")
        return format_html(
            '<a href="{}?business_number={}&customer=%2B{}">Check</a>',
            url,
            permission.business_number_id,
            permission.contact.wa_id,
        )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "permission", "from_status", "to_status", "detail", "actor"]
    list_filter = ["kind", "permission__business_number"]
    list_select_related = ["permission__contact", "permission__business_number", "actor"]
    search_fields = ["permission__contact__wa_id", "detail"]
    date_hierarchy = "at"
