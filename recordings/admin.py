import datetime
import re

from django.contrib import admin
from django.contrib.admin.views.main import SEARCH_VAR
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from agents.admin import AgentListFilter
from calls.models import Call
from compliance.models import ConsentRecord
from core.access import viewer_of
from core.admin import Reader, ReadOnlyAdmin, ReadOnlyInline, read_by
from messaging.models import Charge
from recordings.models import Erasure, Recording, Summary
from recordings.selectors import call_review, call_timeline, recordings_ahead_of

# What a search for a phone number may be written with besides its digits: "+44 (20) 7946-0000".
NUMBER_PUNCTUATION = re.compile(r"[\s()+.-]")

# What was typed or said on a call, as each viewer reads it (core.access).
CALL_TEXTS: dict[str, Reader] = {"wrap_up_notes": lambda viewer, call: viewer.notes_of(call)}
SUMMARY_TEXTS: dict[str, Reader] = {
    "paragraph": lambda viewer, summary: viewer.text(summary.paragraph, country=summary.call.contact.country)
}

TIME_FIELDS = ["started_at", "queued_at", "connected_at", "ended_at", "wait", "talk_seconds", "hold_seconds"]
# The call's plumbing, folded away on its page: what support asks for, not what a review needs.
SUPPORT_FIELDS = [
    "wa_call_id", "offered_to", "offer_count", "offered_at", "offer_expires_at", "answered_at",
    "held_since", "media_channel", "cta_payload", "deeplink_payload", "created_at", "updated_at",
]  # fmt: skip


class RecordedFilter(admin.SimpleListFilter):
    title = "recording"
    parameter_name = "recorded"

    def lookups(self, request, model_admin) -> list[tuple[str, str]]:
        return [("yes", "Recorded"), ("no", "Not recorded")]

    def queryset(self, request, queryset: QuerySet[Call]) -> QuerySet[Call]:
        if self.value() in ("yes", "no"):
            return queryset.filter(is_recorded=self.value() == "yes")
        return queryset


class ConsentRecordInline(ReadOnlyInline):
    """The recording notice the customer heard on the call: the words, the language, and whether
    it was heard to its end."""

    model = ConsentRecord
    fields = ["kind", "language", "text", "started_at", "completed_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Call)
class CallReviewAdmin(ReadOnlyAdmin):
    """Supervisors review calls here: a list to filter and search (by the customer's number or name,
    and by what was said), and each call's page as the call page shows it (summary, recording with
    its transcript, what happened) with its consent record and charges. Read-only: a call is a record
    of what happened, changed only by the services that run it."""

    list_display = [
        "when", "way", "contact", "queue", "agent_name", "wait", "talk", "ended", "sentiment", "outcome",
        "after_the_call",
    ]  # fmt: skip
    list_filter = [
        "started_at",
        "queue",
        ("agent", AgentListFilter),
        "business_number",
        "direction",
        "status",
        "end_reason",
        "summary__sentiment",
        ("summary__outcome", admin.AllValuesFieldListFilter),
        ("summary__intent", admin.AllValuesFieldListFilter),
        RecordedFilter,
    ]
    list_select_related = ["contact", "queue", "agent__user"]
    date_hierarchy = "started_at"
    fieldsets = [
        (None, {"fields": ["contact", "direction", "business_number", "queue", "agent", "status", "chat"]}),
        ("Times", {"fields": TIME_FIELDS}),
        ("End and wrap-up", {"fields": ["end_reason", "end_detail", "disposition", "wrap_up_notes"]}),
        ("For support", {"classes": ["collapse"], "fields": SUPPORT_FIELDS}),
    ]
    readonly_fields = [field.name for field in Call._meta.fields] + ["wait", "chat"]
    inlines = [ConsentRecordInline]

    def get_fieldsets(self, request, obj=None) -> list:
        viewer = viewer_of(request)
        return [(name, {**options, "fields": read_by(viewer, options["fields"], CALL_TEXTS)})
                for name, options in self.fieldsets]  # fmt: skip

    def get_readonly_fields(self, request, obj=None) -> list:
        return read_by(viewer_of(request), self.readonly_fields, CALL_TEXTS)

    def get_queryset(self, request) -> QuerySet[Call]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                summary_sentiment=F("summary__sentiment"),
                summary_outcome=F("summary__outcome"),
                is_recorded=Exists(Recording.objects.filter(call_id=OuterRef("pk"))),
                recording_status=F("recording__status"),
                recording_progress=F("recording__progress"),
                recording_in_line=Subquery(  # counted for the page's rows only
                    recordings_ahead_of(OuterRef("recording__created_at"))
                    .order_by()
                    .values("status")
                    .annotate(count=Count("pk"))
                    .values("count")
                ),
            )
        )

    def get_search_fields(self, request) -> list[str]:
        fields = ["=wa_call_id", "contact__wa_id", "contact__name"]
        if viewer_of(request).may_search_text(request.GET.get(SEARCH_VAR, "")):
            fields.append("transcript__text")
        return fields

    def get_search_results(self, request, queryset: QuerySet[Call], search_term: str):
        """Also finds a customer's number written as people write it ("+44 20 7946 0000"): contacts
        are stored by their digits."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        digits = NUMBER_PUNCTUATION.sub("", search_term)
        if digits.isdigit() and digits != search_term.strip():
            found = found | queryset.filter(contact__wa_id__contains=digits)
        return found, may_have_duplicates

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(_call_review(request=request, call=obj))
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    @admin.display(description="When", ordering="started_at")
    def when(self, call: Call) -> str:
        return date_format(timezone.localtime(call.started_at), "Y-m-d H:i")

    @admin.display(description="Way", ordering="direction")
    def way(self, call: Call) -> str:
        return "In" if call.direction == Call.Direction.INBOUND else "Out"

    @admin.display(description="Chat")
    def chat(self, call: Call) -> str:
        """The conversation the call came from (the warm handoff): its inbox page and its admin page."""
        if call.conversation_id is None:
            return "—"
        return format_html(
            '<a href="{}">Conversation {}</a> (<a href="{}">in admin</a>)',
            reverse("messaging:conversation", args=[call.conversation_id]),
            call.conversation_id,
            reverse("admin:messaging_conversation_change", args=[call.conversation_id]),
        )

    @admin.display(description="Agent", ordering="agent__display_name")
    def agent_name(self, call: Call) -> str:
        return call.agent.name if call.agent_id else "—"

    @admin.display(description="Wait")
    def wait(self, call: Call) -> str:
        """From joining the queue to an agent taking the call, or to its end (or now, still waiting)."""
        if call.queued_at is None:
            return "—"
        until = call.connected_at or call.ended_at or timezone.now()
        return _minutes(until - call.queued_at)

    @admin.display(description="Talk", ordering="talk_seconds")
    def talk(self, call: Call) -> str:
        return "—" if call.talk_seconds is None else _minutes(datetime.timedelta(seconds=call.talk_seconds))

    @admin.display(description="End", ordering="end_reason")
    def ended(self, call: Call) -> str:
        if not call.end_reason:
            return f"Live: {call.get_status_display()}"
        return call.get_end_reason_display().split(" (")[0]  # the list's short form: "Abandoned"

    @admin.display(description="Sentiment", ordering="summary_sentiment")
    def sentiment(self, call: Call) -> str:
        return call.summary_sentiment or "—"

    @admin.display(description="Outcome", ordering="summary_outcome")
    def outcome(self, call: Call) -> str:
        return call.summary_outcome or "—"

    @admin.display(description="After the call", ordering="recording__status")
    def after_the_call(self, call: Call) -> str:
        """Where the call's recording is: queued (its place in line), transcribing, summarising,
        done or failed; "—" for a call with no recording (no conversation)."""
        if not call.is_recorded:
            return "—"
        if call.recording_status == Recording.Status.QUEUED:
            return f"queued ({call.recording_in_line} in line)"
        if call.recording_status == Recording.Status.TRANSCRIBING:
            return f"transcribing ({call.recording_progress} %)"
        return Recording.Status(call.recording_status).label.lower()


def _minutes(span: datetime.timedelta) -> str:
    seconds = max(0, round(span.total_seconds()))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _call_review(*, request, call: Call) -> dict:
    """What the call page (recordings.views.call_page) shows of a call, for its page in admin: the
    summary, the recording and its transcript only to who may hear the call (the agent who took it
    and those who may listen to any call), masked unless they may read raw text; its events; and its
    charges to who may see charges."""
    viewer = viewer_of(request)
    may_see_charges = request.user.has_perm("messaging.view_charge")
    charges = Charge.objects.filter(kind=Charge.Kind.CALL, reference=call.wa_call_id)
    review = {
        "call": call,
        "may_hear": viewer.may_see_call(call),
        "charges": list(charges) if may_see_charges else None,
    }
    if not review["may_hear"]:  # the record, without what was said
        return {**review, "timeline": call_timeline(call=call)}
    return {**review, **call_review(call=call, viewer=viewer)}


@admin.register(Recording)
class RecordingAdmin(ReadOnlyAdmin):
    """Read-only, and never deleted by hand: recordings go by their number's retention or a
    contact's erasure, which delete the files too."""

    list_display = ["call", "duration_s", "status", "progress", "key_id", "created_at", "page"]
    list_filter = ["status", "key_id"]
    list_select_related = ["call"]
    readonly_fields = [field.name for field in Recording._meta.fields]
    date_hierarchy = "created_at"

    @admin.display(description="Call page")
    def page(self, recording: Recording) -> str:
        return format_html(
            '<a href="{}">listen and read</a>', reverse("recordings:call", args=[recording.call_id])
        )


@admin.register(Summary)
class SummaryAdmin(ReadOnlyAdmin):
    """Read-only; the paragraph masked (card numbers, ids, emails, phone numbers) unless the user
    may read summaries unredacted."""

    list_display = ["call", "intent", "outcome", "sentiment", "backend", "created_at"]
    list_filter = ["intent", "outcome", "sentiment", "backend"]
    list_select_related = ["call__contact"]
    fields = ["call", "paragraph", "intent", "outcome", "sentiment", "sentiment_score", "backend", "note",
              "created_at"]  # fmt: skip

    def get_fields(self, request, obj=None) -> list:
        return read_by(viewer_of(request), self.fields, SUMMARY_TEXTS)

    def get_readonly_fields(self, request, obj=None) -> list:
        return self.get_fields(request, obj)


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    """The audit of removed personal data: read-only, kept."""

    list_display = ["at", "kind", "contact_label", "requested_by", "reason", "counts"]
    list_filter = ["kind"]
    list_select_related = ["requested_by"]
    readonly_fields = [field.name for field in Erasure._meta.fields]
