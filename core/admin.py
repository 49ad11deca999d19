from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin

from core.access import Viewer
from core.models import SignInLockout

# How a viewer reads one free-text field of a row (core.access: Viewer.text, Viewer.notes_of).
Reader = Callable[[Viewer, Any], str]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened (audit rows, events): visible and filtered, never changed by hand."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """The audit rows of a record, shown under it: every field read-only, none added or removed."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return list(self.fields)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@dataclass(frozen=True)
class FreeTextColumn:
    """A read-only admin field or list column showing one free-text field of a row as `viewer` may
    read it. Built for each request's viewer (admin's display functions are given the row only);
    two built alike are equal, as admin's form asks of the fields it was given."""

    name: str
    read: Reader
    viewer: Viewer

    def __call__(self, row: Any) -> str:
        return self.read(self.viewer, row)

    @property
    def __name__(self) -> str:  # its label and its CSS class, as the field's
        return self.name


def read_by(viewer: Viewer, names: list, readers: dict[str, Reader]) -> list:
    """An admin's fields or columns (`names`) with each free-text one in `readers` shown as `viewer`
    may read it (a FreeTextColumn of the same name)."""
    return [FreeTextColumn(name, readers[name], viewer) if name in readers else name for name in names]


@admin.register(SignInLockout)
class SignInLockoutAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "where", "username", "user", "address", "failures", "until"]
    list_filter = ["kind", "where", "at"]
    search_fields = ["username", "address"]
    list_select_related = ["user"]
