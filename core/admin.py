from django.contrib import admin

from core.models import SignInLockout


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened (audit rows, events): visible and filtered, never changed by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SignInLockout)
class SignInLockoutAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "where", "username", "user", "address", "failures", "until"]
    list_filter = ["kind", "where", "at"]
    search_fields = ["username", "address"]
    list_select_related = ["user"]
