import json

from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.template.response import TemplateResponse

from core.access import viewer_of
from core.admin import Reader, ReadOnlyAdmin, ReadOnlyInline, read_by
from messaging.models import (
    BillingCurrency,
    CannedReply,
    Charge,
    Contact,
    Conversation,
    ConversationWindow,
    MarketingPreference,
    MarketingPreferenceChange,
    Message,
    RateCard,
    RateRegion,
    Template,
)
from messaging.services import rate_card_save


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "wa_id", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["name", "wa_id"]
    actions = ["erase_personal_data"]

    def has_erase_permission(self, request) -> bool:
        return request.user.has_perm("recordings.add_erasure")

    @admin.action(description="Erase personal data (GDPR request)…", permissions=["erase"])
    def erase_personal_data(self, request, queryset):
        """Asks for the reason first (a confirmation page), then erases each contact's recordings,
        transcripts, summaries and messages (recordings.services.contact_erase)."""
        from recordings.services import contact_erase

        reason = request.POST.get("reason", "").strip()
        if request.POST.get("confirmed") != "yes" or not reason:
            context = {
                **self.admin_site.each_context(request),
                "title": "Erase personal data",
                "contacts": queryset,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                "needs_reason": request.POST.get("confirmed") == "yes",
            }
            return TemplateResponse(request, "admin/messaging/contact/erase_confirmation.html", context)
        erased = 0
        for contact in queryset:
            try:
                contact_erase(contact_id=contact.pk, requested_by_id=request.user.pk, reason=reason)
            except ValueError as error:
                self.message_user(request, str(error), messages.WARNING)
            else:
                erased += 1
        self.message_user(
            request, f"Erased the personal data of {erased} contact(s); see Erasures.", messages.SUCCESS
        )
        return None


@admin.register(RateCard)
class RateCardAdmin(admin.ModelAdmin):
    list_display = ["category", "market", "price", "effective_from", "effective_to", "source"]
    list_filter = ["category", "price_currency", "market"]
    search_fields = ["market", "source"]
    date_hierarchy = "effective_from"

    def save_model(self, request, obj, form, change) -> None:
        rate_card_save(rate=obj)  # the form checked for overlaps; this checks again under a lock


@admin.register(RateRegion)
class RateRegionAdmin(admin.ModelAdmin):
    list_display = ["name", "countries"]
    search_fields = ["name"]


@admin.register(BillingCurrency)
class BillingCurrencyAdmin(admin.ModelAdmin):
    list_display = ["waba_id", "currency", "effective_from"]
    search_fields = ["waba_id"]


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    """Charges come from Meta's webhooks and ended calls, never by hand; they are the bill's record."""

    list_display = [
        "billed_on",
        "kind",
        "reference",
        "business_number",
        "category",
        "country",
        "pricing_type",
        "quantity",
        "amount",
    ]
    list_filter = ["kind", "category", "pricing_type", "business_number", "billed_on"]
    search_fields = ["reference", "country"]
    list_select_related = ["business_number"]
    date_hierarchy = "billed_on"


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "language", "category", "status", "waba_id"]
    list_filter = ["status", "category", "language", "waba_id"]
    search_fields = ["name", "waba_id"]


def _json_text(value) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, indent=2)


# What the customer or the agent wrote, as each viewer reads it (core.access): the text, the send
# request and Meta's delivery carry the same words.
MESSAGE_TEXTS: dict[str, Reader] = {
    "text": lambda viewer, message: viewer.text(message.text, country=message.contact.country),
    "request": lambda viewer, message: viewer.text(
        _json_text(message.request), country=message.contact.country
    ),
    "raw": lambda viewer, message: viewer.text(_json_text(message.raw), country=message.contact.country),
}


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """The threads as they happened: sent from the dashboard or the API, received from Meta. Their
    words masked unless the viewer may read raw text, and searched only for what no mask hides."""

    list_display = ["created_at", "contact", "direction", "message_type", "text", "status", "business_number"]
    list_filter = ["direction", "status", "message_type", "media_status"]
    search_fields = ["contact__wa_id", "contact__name", "text", "wa_message_id"]
    list_select_related = ["contact", "business_number"]
    date_hierarchy = "created_at"
    fields = [field.name for field in Message._meta.fields]

    def get_list_display(self, request) -> list:
        return read_by(viewer_of(request), self.list_display, MESSAGE_TEXTS)

    def get_fields(self, request, obj=None) -> list:
        return read_by(viewer_of(request), self.fields, MESSAGE_TEXTS)

    def get_readonly_fields(self, request, obj=None) -> list:
        return self.get_fields(request, obj)

    def get_search_fields(self, request) -> list[str]:
        if viewer_of(request).may_search_text(request.GET.get(SEARCH_VAR, "")):
            return self.search_fields
        return [field for field in self.search_fields if field != "text"]


@admin.register(ConversationWindow)
class ConversationWindowAdmin(admin.ModelAdmin):
    list_display = ["contact", "business_number", "customer_service_until", "free_entry_until"]
    list_select_related = ["contact", "business_number"]
    search_fields = ["contact__wa_id", "contact__name"]
    readonly_fields = [
        "business_number",
        "contact",
        "customer_service_until",
        "referral_at",
        "free_entry_until",
    ]

    def has_add_permission(self, request) -> bool:
        return False  # computed from the customers' messages and calls


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    """The inbox's conversations and who has them: changed only by the agents' claims, transfers
    and closes (messaging.conversations), each a conditional update."""

    list_display = [
        "last_message_at", "contact", "business_number", "state", "queue", "agent", "unread_count",
        "opened_at", "closed_at",
    ]  # fmt: skip
    list_filter = ["state", "queue", "business_number"]
    search_fields = ["contact__wa_id", "contact__name"]
    list_select_related = ["contact", "business_number", "queue", "agent__user"]
    date_hierarchy = "last_message_at"


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    """The replies agents pick in a conversation's reply box: the business's own words, kept by
    supervisors (no customer's data: shown as written)."""

    list_display = ["shortcut", "title", "business_number", "updated_at"]
    list_filter = ["business_number"]
    search_fields = ["shortcut", "title", "text"]
    list_select_related = ["business_number"]


class MarketingPreferenceChangeInline(ReadOnlyInline):
    model = MarketingPreferenceChange
    fields = ["at", "from_status", "to_status", "source", "detail", "reference", "recorded_at"]
    ordering = ["-at", "-pk"]


@admin.register(MarketingPreference)
class MarketingPreferenceAdmin(ReadOnlyAdmin):
    """Whether each customer takes marketing templates from each number, as WhatsApp told us: read-only,
    with every change (messaging.preferences changes them)."""

    list_display = ["contact", "business_number", "status", "since", "source", "news_at"]
    list_filter = ["status", "source", "business_number"]
    list_select_related = ["contact", "business_number"]
    search_fields = ["contact__wa_id", "contact__name"]
    date_hierarchy = "since"
    inlines = [MarketingPreferenceChangeInline]


@admin.register(MarketingPreferenceChange)
class MarketingPreferenceChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "preference", "from_status", "to_status", "source", "detail", "recorded_at"]
    list_filter = ["to_status", "source", "preference__business_number"]
    list_select_related = ["preference__contact", "preference__business_number"]
    search_fields = ["preference__contact__wa_id", "preference__contact__name"]
    date_hierarchy = "at"
