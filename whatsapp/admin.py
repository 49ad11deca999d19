import contextlib
import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from core.access import viewer_of
from core.admin import Reader, ReadOnlyAdmin, ReadOnlyInline, read_by
from whatsapp.models import BusinessNumber, CallingSettingsChange, WebhookDelivery, WebhookEvent
from whatsapp.services import webhook_event_dispatch


def _body_text(delivery: WebhookDelivery) -> str:
    text = bytes(delivery.body).decode("utf-8", errors="replace")
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return text


# Meta's webhooks carry what customers wrote: shown as each viewer reads free text (core.access).
WEBHOOK_TEXTS: dict[str, Reader] = {
    "body": lambda viewer, delivery: format_html("<pre>{}</pre>", viewer.text(_body_text(delivery))),
    "payload": lambda viewer, event: format_html(
        "<pre>{}</pre>", viewer.text(json.dumps(event.payload, indent=2, ensure_ascii=False))
    ),
}


@admin.register(BusinessNumber)
class BusinessNumberAdmin(admin.ModelAdmin):
    list_display = [
        "display_phone_number",
        "label",
        "country",
        "calling",
        "messaging_limit_tier",
        "is_coexistence",
        "is_sandbox",
        "recording_retention_days",
        "onboarding",
    ]
    list_filter = ["is_sandbox", "country", "messaging_limit_tier", "is_coexistence", "verification_status"]
    search_fields = ["display_phone_number", "label", "phone_number_id", "waba_id"]
    readonly_fields = [
        "country",
        "calling_settings",
        "calling_settings_updated_at",
        "restrictions",
        "last_violation",
        "account_updated_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "label",
                    "display_phone_number",
                    "country",
                    "phone_number_id",
                    "waba_id",
                    "is_sandbox",
                ]
            },
        ),
        ("Eligibility", {"fields": ["messaging_limit_tier", "is_coexistence", "verification_status"]}),
        ("Recordings", {"fields": ["recording_retention_days"]}),
        (
            "Kept in step by Meta's webhooks",
            {
                "fields": [
                    "calling_settings",
                    "calling_settings_updated_at",
                    "restrictions",
                    "last_violation",
                    "account_updated_at",
                ]
            },
        ),
    ]

    @admin.display(description="Calling", boolean=True)
    def calling(self, number: BusinessNumber) -> bool:
        return number.is_calling_enabled

    @admin.display(description="Onboarding")
    def onboarding(self, number: BusinessNumber) -> str:
        return format_html('<a href="{}">Checklist</a>', reverse("whatsapp:onboarding", args=[number.pk]))


@admin.register(CallingSettingsChange)
class CallingSettingsChangeAdmin(ReadOnlyAdmin):
    """Every attempt to set a number's calling settings at Meta, with Meta's answer."""

    list_display = ["created_at", "business_number", "changed_by", "is_accepted"]
    list_filter = ["is_accepted", "business_number", "created_at"]
    list_select_related = ["business_number", "changed_by"]
    date_hierarchy = "created_at"
    fields = ["created_at", "business_number", "changed_by", "is_accepted", "sent", "answer"]
    readonly_fields = fields


class WebhookEventInline(ReadOnlyInline):
    model = WebhookEvent
    fields = ["kind", "idempotency_key", "status", "attempts", "error"]
    show_change_link = True


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["pk", "received_at", "status", "event_count", "duplicate_count", "problem_count"]
    list_filter = ["status", "received_at"]
    date_hierarchy = "received_at"
    fields = ["received_at", "status", "event_count", "duplicate_count", "problems", "body"]
    readonly_fields = fields
    inlines = [WebhookEventInline]

    def get_fields(self, request, obj=None) -> list:
        return read_by(viewer_of(request), self.fields, WEBHOOK_TEXTS)

    def get_readonly_fields(self, request, obj=None) -> list:
        return self.get_fields(request, obj)

    @admin.display(description="Problems")
    def problem_count(self, delivery: WebhookDelivery) -> int:
        return len(delivery.problems)


class MetaFieldFilter(admin.SimpleListFilter):
    """The webhook field Meta sent the event under: kinds Switchboard does not know (`unsupported`)
    are told apart by it, each kept whole in its payload."""

    title = "Meta's field"
    parameter_name = "field"

    KNOWN = ("calls", "messages", "account_settings_update", "account_update")

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        # Only the few unknown-kind rows are read (`kind` is indexed), never the whole event table.
        unknown = (
            WebhookEvent.objects.filter(kind="unsupported")
            .order_by()
            .values_list("payload__field", flat=True)
        )
        fields = set(self.KNOWN) | {name for name in unknown.distinct() if isinstance(name, str)}
        return [(name, name) for name in sorted(fields)]

    def queryset(self, request, queryset):
        return queryset.filter(payload__field=self.value()) if self.value() else queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "kind", "idempotency_key", "phone_number_id", "status", "attempts", "note"]
    list_filter = ["status", "kind", MetaFieldFilter, "received_at"]
    search_fields = ["idempotency_key", "phone_number_id"]
    date_hierarchy = "received_at"
    list_select_related = ["delivery"]
    fields = [
        "delivery",
        "kind",
        "idempotency_key",
        "waba_id",
        "phone_number_id",
        "occurred_at",
        "received_at",
        "status",
        "attempts",
        "last_attempt_at",
        "handled_at",
        "error",
        "note",
        "payload",
    ]
    readonly_fields = fields
    actions = ["dispatch_again"]

    def get_fields(self, request, obj=None) -> list:
        return read_by(viewer_of(request), self.fields, WEBHOOK_TEXTS)

    def get_readonly_fields(self, request, obj=None) -> list:
        return self.get_fields(request, obj)

    @admin.action(
        description="Dispatch the selected events again (failed or stuck ones)", permissions=["change"]
    )
    def dispatch_again(self, request, queryset) -> None:
        handled = 0
        for record in queryset:
            if webhook_event_dispatch(event_record=record).status == WebhookEvent.Status.HANDLED:
                handled += 1
        self.message_user(request, f"{handled} of {queryset.count()} events handled.", messages.INFO)

    def has_change_permission(self, request, obj=None) -> bool:
        # The dispatch action needs change permission; the fields themselves stay read-only.
        return request.user.has_perm("whatsapp.change_webhookevent")
