from django.contrib import admin

from calls.models import Call, CallEvent, LiveCallCount


class CallEventInline(admin.TabularInline):
    model = CallEvent
    fields = ["at", "from_status", "to_status", "agent", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = [
        "started_at",
        "direction",
        "contact",
        "business_number",
        "queue",
        "agent",
        "status",
        "end_reason",
        "talk_seconds",
    ]
    list_filter = ["direction", "status", "end_reason", "queue", "started_at"]
    list_select_related = ["contact", "business_number", "queue", "agent__user"]
    search_fields = ["wa_call_id", "contact__wa_id", "contact__name"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in Call._meta.fields]
    inlines = [CallEventInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LiveCallCount)
class LiveCallCountAdmin(admin.ModelAdmin):
    list_display = ["business_number", "direction", "live"]
    readonly_fields = ["business_number", "direction", "live"]

    def has_add_permission(self, request) -> bool:
        return False
