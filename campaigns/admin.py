from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, OptIn, Recipient
from campaigns.services import campaign_cancel, campaign_pause, campaign_resume, campaign_start
from core.access import viewer_of
from core.admin import Reader, ReadOnlyAdmin, read_by

# What a line was listed as may be anything a person typed: read as the viewer may read free text.
LISTED: dict[str, Reader] = {"listed_as": lambda viewer, recipient: viewer.text(recipient.listed_as)}


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaigns as the API and the pages made them: read here, started, paused, resumed or cancelled
    with the actions (campaigns.services), never edited by hand (the list was screened once)."""

    list_display = [
        "name",
        "business_number",
        "template",
        "status",
        "created_at",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "business_number"]
    list_select_related = ["business_number", "template"]
    search_fields = ["name"]
    date_hierarchy = "created_at"
    actions = ["start", "pause", "resume", "cancel"]
    readonly_fields = [field.name for field in Campaign._meta.fields]

    def get_queryset(self, request):
        return viewer_of(request).campaigns()

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("campaigns.change_campaign")

    def _each(self, request, queryset, service, done: str) -> None:
        moved = 0
        for campaign in queryset:
            try:
                service(campaign_id=campaign.pk)
            except ValidationError as refusal:
                self.message_user(request, f"{campaign}: {refusal.messages[0]}", messages.WARNING)
            else:
                moved += 1
        self.message_user(request, f"{moved} campaign(s) {done}.", messages.SUCCESS)

    @admin.action(description="Start sending", permissions=["run"])
    def start(self, request, queryset):
        self._each(request, queryset, campaign_start, "started")

    @admin.action(description="Pause", permissions=["run"])
    def pause(self, request, queryset):
        self._each(request, queryset, campaign_pause, "paused")

    @admin.action(description="Resume", permissions=["run"])
    def resume(self, request, queryset):
        self._each(request, queryset, campaign_resume, "resumed")

    @admin.action(description="Cancel", permissions=["run"])
    def cancel(self, request, queryset):
        self._each(request, queryset, campaign_cancel, "cancelled")


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdmin):
    """Each line of each campaign: who, left out and why, how far the campaign got with them."""

    list_display = ["listed_as", "campaign", "wa_id", "country", "status", "exclusion", "sent_at", "error"]
    list_filter = ["status", "exclusion", "country", "campaign"]
    list_select_related = ["campaign"]
    search_fields = ["wa_id"]
    fields = [
        "campaign", "listed_as", "wa_id", "contact", "country", "status", "exclusion", "exclusion_detail",
        "message", "error", "claimed_until", "sent_at", "call",
    ]  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).filter(campaign__in=viewer_of(request).campaigns())

    def get_list_display(self, request) -> list:
        return read_by(viewer_of(request), self.list_display, LISTED)

    def get_fields(self, request, obj=None) -> list:
        return read_by(viewer_of(request), self.fields, LISTED)

    def get_readonly_fields(self, request, obj=None) -> list:
        return self.get_fields(request, obj)


@admin.register(OptIn)
class OptInAdmin(admin.ModelAdmin):
    """Customers' agreement to hear from a number, recorded where it was given (a customer who wrote
    or called the number needs none)."""

    list_display = ["contact", "business_number", "at", "source", "detail", "recorded_by"]
    list_filter = ["source", "business_number"]
    list_select_related = ["contact", "business_number", "recorded_by"]
    search_fields = ["contact__wa_id"]
    raw_id_fields = ["contact"]
    readonly_fields = ["recorded_by"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.recorded_by = request.user
        super().save_model(request, obj, form, change)
