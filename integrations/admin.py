import secrets

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone

from core.admin import ReadOnlyAdmin
from core.events import EVENT_KINDS
from integrations.models import ApiKey, ApiWrite, EventDelivery, WebhookSubscription
from integrations.services import api_key_revoke, api_key_seal, origin_normalise
from integrations.webhooks import subscriptions_changed


class OriginsField(forms.CharField):
    """Web origins, one per line: each scheme://host[:port], as a browser sends it."""

    widget = forms.Textarea(attrs={"rows": 3})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        lines = [line.strip() for line in (value or "").splitlines() if line.strip()]
        origins = []
        for line in lines:
            origin = origin_normalise(line)
            if origin is None:
                raise forms.ValidationError(
                    f"{line!r} is not a web origin: write scheme://host[:port], e.g. https://crm.example.com."
                )
            origins.append(origin)
        return sorted(set(origins))


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple)
    allowed_origins = OriginsField(
        required=False,
        help_text="Pages of these origins may embed the call widget with this key (one per line).",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "business_numbers", "rate_limit_per_minute", "allowed_origins"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made here and shown once; afterwards only their prefix is known. Revoking is at once
    (it also closes the call widgets open with the key); a key is revoked, never deleted, so what it
    wrote keeps naming it."""

    form = ApiKeyForm
    list_display = [
        "name",
        "prefix",
        "scopes",
        "rate_limit_per_minute",
        "last_used_at",
        "revoked_at",
        "created_by",
    ]
    list_filter = ["revoked_at"]
    list_select_related = ["created_by"]
    filter_horizontal = ["business_numbers"]
    readonly_fields = ["prefix", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj: ApiKey, form, change: bool) -> None:
        if not change:
            token = api_key_seal(obj)
            obj.created_by = request.user
            messages.warning(request, f"The new key, shown this once (copy it now): {token}")
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke (at once)", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        revoked = sum(api_key_revoke(key_id=key.pk) for key in queryset)
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(kind, kind) for kind in EVENT_KINDS], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookSubscription
        fields = ["name", "url", "event_types", "business_numbers", "is_active"]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    """The CRM's endpoints. The signing secret is made here and shown on the subscription's page."""

    form = WebhookSubscriptionForm
    list_display = ["name", "url", "event_types", "is_active"]
    filter_horizontal = ["business_numbers"]
    readonly_fields = ["secret"]

    def save_model(self, request, obj: WebhookSubscription, form, change: bool) -> None:
        if not change:
            obj.secret = secrets.token_hex(32)
        super().save_model(request, obj, form, change)
        transaction.on_commit(subscriptions_changed)


@admin.register(EventDelivery)
class EventDeliveryAdmin(admin.ModelAdmin):
    """Every event to every subscription, with its attempts: read-only; failed ones can be sent again."""

    list_display = [
        "event",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
    ]
    list_filter = ["status", "subscription", "event__kind"]
    list_select_related = ["event", "subscription"]
    readonly_fields = [field.name for field in EventDelivery._meta.fields]
    actions = ["send_again"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Send again now", permissions=["change"])
    def send_again(self, request, queryset) -> None:
        from integrations.tasks import deliver_event

        ids = list(queryset.values_list("pk", flat=True))
        queryset.update(status=EventDelivery.Status.PENDING, next_attempt_at=timezone.now(), claimed_at=None)
        for delivery_id in ids:
            deliver_event.delay(delivery_id=delivery_id)
        self.message_user(request, f"{len(ids)} deliveries queued.", messages.SUCCESS)


@admin.register(ApiWrite)
class ApiWriteAdmin(ReadOnlyAdmin):
    """What each key (or signed-in user) asked the API to change, and the answer: read-only."""

    list_display = ["at", "operation", "status_code", "refusal_code", "key", "user", "target", "client_ip"]
    list_filter = ["key", "operation", "status_code"]
    list_select_related = ["key", "user"]
    search_fields = ["=request_id", "path", "refusal_code"]
    readonly_fields = [field.name for field in ApiWrite._meta.fields]
    date_hierarchy = "at"
