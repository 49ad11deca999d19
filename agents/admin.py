import datetime
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet

from agents.models import DAYS, Agent, AgentStatusEvent, Queue, QueueMembership, Skill
from core.admin import ReadOnlyAdmin

# The day names of a queue's weekly hours, as routing matches them (calls.selectors.queue_is_open).
OPENS = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]", re.ASCII)
CLOSES = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00", re.ASCII)


class AgentListFilter(admin.RelatedFieldListFilter):
    """Agents by name, each with its user (an agent's name may be its user's): one query however
    many agents there are."""

    def field_choices(self, field, request, model_admin) -> list[tuple[int, str]]:
        agents = Agent.objects.select_related("user")
        return sorted(((agent.pk, agent.name) for agent in agents), key=lambda choice: choice[1].lower())


class QueueMembershipInline(admin.TabularInline):
    model = QueueMembership
    extra = 0
    autocomplete_fields = ["agent"]


class AgentMembershipInline(admin.TabularInline):
    """The queues an agent answers, and at which tier."""

    model = QueueMembership
    extra = 0
    autocomplete_fields = ["queue"]
    verbose_name = "queue"
    verbose_name_plural = "queues"


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = [
        "agent_name", "user", "status", "status_changed_at", "queue_names", "chats", "missed_offers",
    ]  # fmt: skip
    list_filter = ["status", "queues", "skills"]
    filter_horizontal = ["skills"]
    list_select_related = ["user"]
    search_fields = ["display_name", "user__username", "user__first_name", "user__last_name"]
    readonly_fields = ["status", "status_changed_at", "missed_offers", "last_offered_at", "chat_count"]
    inlines = [AgentMembershipInline]

    def get_queryset(self, request) -> QuerySet[Agent]:
        return super().get_queryset(request).prefetch_related("queues")

    @admin.display(description="Name", ordering="display_name")
    def agent_name(self, agent: Agent) -> str:
        return agent.name

    @admin.display(description="Queues")
    def queue_names(self, agent: Agent) -> str:
        return ", ".join(queue.name for queue in agent.queues.all()) or "—"

    @admin.display(description="Chats (held / limit)", ordering="chat_count")
    def chats(self, agent: Agent) -> str:
        return f"{agent.chat_count} / {agent.chat_limit}"


@admin.register(AgentStatusEvent)
class AgentStatusEventAdmin(ReadOnlyAdmin):
    list_display = ["agent", "previous_status", "status", "changed_at"]
    list_filter = ["status", ("agent", AgentListFilter)]
    list_select_related = ["agent__user"]
    search_fields = ["agent__display_name", "agent__user__username"]
    date_hierarchy = "changed_at"


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "agent_count", "queue_count"]
    search_fields = ["name"]

    def get_queryset(self, request) -> QuerySet[Skill]:
        return (
            super()
            .get_queryset(request)
            .annotate(agent_total=Count("agents", distinct=True), queue_total=Count("queues", distinct=True))
        )

    @admin.display(description="Agents", ordering="agent_total")
    def agent_count(self, skill: Skill) -> int:
        return skill.agent_total

    @admin.display(description="Queues requiring it", ordering="queue_total")
    def queue_count(self, skill: Skill) -> int:
        return skill.queue_total


class QueueForm(forms.ModelForm):
    """Business hours checked as routing reads them: a zone it cannot load, or hours in another
    shape, would close a queue (or keep it open) without anyone noticing."""

    class Meta:
        model = Queue
        fields = ["timezone", "weekly_hours", "holidays"]  # in admin, its fieldsets name the rest

    def clean_timezone(self) -> str:
        name = self.cleaned_data["timezone"]
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{name!r} is not a time zone: write one like Europe/London.") from None
        return name

    def clean_weekly_hours(self) -> list[dict]:
        hours = self.cleaned_data["weekly_hours"] or []
        if not isinstance(hours, list):
            raise ValidationError('Write a list: [{"day": "MONDAY", "open": "09:00", "close": "17:00"}].')
        for number, slot in enumerate(hours, start=1):
            if not isinstance(slot, dict) or set(slot) != {"day", "open", "close"}:
                raise ValidationError(f'Opening {number}: write {{"day": …, "open": …, "close": …}}.')
            day, opens, closes = slot["day"], slot["open"], slot["close"]
            if day not in DAYS:
                raise ValidationError(f"Opening {number}: the day is one of {', '.join(DAYS)}.")
            if not (isinstance(opens, str) and OPENS.fullmatch(opens)):
                raise ValidationError(f"Opening {number}: it opens at a time of day, HH:MM (24 hours).")
            if not (isinstance(closes, str) and CLOSES.fullmatch(closes)):
                raise ValidationError(f"Opening {number}: it closes at HH:MM (24 hours; 24:00 for midnight).")
            if closes <= opens:
                raise ValidationError(f"Opening {number}: it closes after it opens (split a night in two).")
        return hours

    def clean_holidays(self) -> list[str]:
        holidays = self.cleaned_data["holidays"] or []
        if not isinstance(holidays, list):
            raise ValidationError('Write a list of dates: ["2026-12-25", "2026-12-26"].')
        for day in holidays:
            try:
                is_date = datetime.date.fromisoformat(day).isoformat() == day
            except (TypeError, ValueError):
                is_date = False
            if not is_date:
                raise ValidationError(f"{day!r} is not a date written YYYY-MM-DD.")
        return holidays


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    form = QueueForm
    list_display = [
        "name", "strategy", "numbers", "hours", "member_count", "ring_timeout_s", "max_wait_s", "wrap_up_s",
    ]  # fmt: skip
    list_filter = ["strategy", "business_numbers", "required_skills", "language"]
    search_fields = ["name"]
    filter_horizontal = ["business_numbers", "required_skills"]
    inlines = [QueueMembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "business_numbers", "required_skills", "strategy"]}),
        ("Ringing", {"fields": ["ring_timeout_s", "max_wait_s", "wrap_up_s", "missed_offers_before_away"]}),
        (
            "Business hours",
            {"fields": ["timezone", "weekly_hours", "holidays", "closed_message", "language"]},
        ),
    ]

    def get_queryset(self, request) -> QuerySet[Queue]:
        return (
            super()
            .get_queryset(request)
            .annotate(member_total=Count("memberships", distinct=True))
            .prefetch_related("business_numbers")
        )

    @admin.display(description="Numbers")
    def numbers(self, queue: Queue) -> str:
        return ", ".join(number.display_phone_number for number in queue.business_numbers.all()) or "—"

    @admin.display(description="Opening hours")
    def hours(self, queue: Queue) -> str:
        if not queue.weekly_hours:
            return "Always open"
        spans = "; ".join(
            f"{str(slot.get('day', '?'))[:3].title()} {slot.get('open', '?')} to {slot.get('close', '?')}"
            for slot in queue.weekly_hours
            if isinstance(slot, dict)
        )
        return f"{spans} ({queue.timezone})"

    @admin.display(description="Agents", ordering="member_total")
    def member_count(self, queue: Queue) -> int:
        return queue.member_total
