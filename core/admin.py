from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened (audit rows, events): visible and filtered, never changed by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
