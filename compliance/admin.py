from django.contrib import admin

from compliance.models import ConsentRecord


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin):
    list_display = ["call", "contact", "kind", "language", "started_at", "completed_at"]
    list_filter = ["kind", "language"]
    list_select_related = ["call", "contact"]
    readonly_fields = [field.name for field in ConsentRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
