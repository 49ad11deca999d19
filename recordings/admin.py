from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from recordings.models import Erasure, Recording, Summary
from recordings.redaction import redact
from recordings.selectors import sees_raw_text


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ["call", "duration_s", "status", "progress", "key_id", "created_at", "page"]
    list_filter = ["status", "key_id"]
    list_select_related = ["call"]
    readonly_fields = [field.name for field in Recording._meta.fields]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # recordings go by retention or a contact's erasure, which delete the files too

    @admin.display(description="Call page")
    def page(self, recording: Recording) -> str:
        return format_html(
            '<a href="{}">listen and read</a>', reverse("recordings:call", args=[recording.call_id])
        )


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    """Read-only; the paragraph masked (card numbers, ids, emails, phone numbers) unless the user
    may read summaries unredacted."""

    list_display = ["call", "intent", "outcome", "sentiment", "backend", "created_at"]
    list_filter = ["intent", "outcome", "sentiment", "backend"]
    list_select_related = ["call"]

    def get_fields(self, request, obj=None) -> list[str]:
        shown = "paragraph" if sees_raw_text(request.user) else "paragraph_masked"
        return [
            "call",
            shown,
            "intent",
            "outcome",
            "sentiment",
            "sentiment_score",
            "backend",
            "note",
            "created_at",
        ]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return self.get_fields(request, obj)

    @admin.display(description="Paragraph")
    def paragraph_masked(self, summary: Summary) -> str:
        return redact(summary.paragraph)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Erasure)
class ErasureAdmin(admin.ModelAdmin):
    """The audit of removed personal data: read-only, kept."""

    list_display = ["at", "kind", "contact_label", "requested_by", "reason", "counts"]
    list_filter = ["kind"]
    list_select_related = ["requested_by"]
    readonly_fields = [field.name for field in Erasure._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
