from django import forms
from django.contrib import admin, messages

from integrations.models import ApiKey
from integrations.services import api_key_revoke, api_key_seal


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "business_numbers", "rate_limit_per_minute"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made here and shown once; afterwards only their prefix is known. Revoking is at once."""

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

    @admin.action(description="Revoke (at once)")
    def revoke(self, request, queryset) -> None:
        revoked = sum(api_key_revoke(key_id=key.pk) for key in queryset)
        self.message_user(request, f"{revoked} key(s) revoked.", messages.SUCCESS)
