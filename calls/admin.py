from django.contrib import admin

from agents.admin import AgentListFilter
from calls.models import CallEvent, LiveCallCount
from core.admin import ReadOnlyAdmin

# Calls themselves are reviewed in recordings/admin.py: their page there plays the recording and
# shows the transcript and summary, and the recordings app builds on calls, not the other way.


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdmin):
    """Every transition of every call, as it happened: the timeline each call's page shows."""

    list_display = ["at", "call", "from_status", "to_status", "agent", "detail"]
    list_filter = ["to_status", ("agent", AgentListFilter), "at"]
    list_select_related = ["call", "agent__user"]
    search_fields = ["=call__wa_call_id", "detail"]
    date_hierarchy = "at"
    ordering = ["-at", "-pk"]


@admin.register(LiveCallCount)
class LiveCallCountAdmin(admin.ModelAdmin):
    list_display = ["business_number", "direction", "live"]
    readonly_fields = ["business_number", "direction", "live"]

    def has_add_permission(self, request) -> bool:
        return False
