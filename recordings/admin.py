from django.contrib import admin

from recordings.models import Recording


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ["call", "duration_s", "size_bytes", "customer_rms", "agent_rms", "created_at"]
    list_select_related = ["call"]
    readonly_fields = [field.name for field in Recording._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False
