from django.contrib import admin

from agents.models import Agent, AgentStatusEvent, Queue, QueueMembership, Skill
from core.admin import ReadOnlyAdmin


class QueueMembershipInline(admin.TabularInline):
    model = QueueMembership
    extra = 0
    autocomplete_fields = ["agent"]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "status", "status_changed_at", "missed_offers"]
    list_filter = ["status", "skills"]
    filter_horizontal = ["skills"]
    list_select_related = ["user"]
    search_fields = ["display_name", "user__username", "user__first_name", "user__last_name"]
    readonly_fields = ["status", "status_changed_at", "missed_offers", "last_offered_at"]


@admin.register(AgentStatusEvent)
class AgentStatusEventAdmin(ReadOnlyAdmin):
    list_display = ["agent", "previous_status", "status", "changed_at"]
    list_filter = ["status"]
    list_select_related = ["agent__user"]
    date_hierarchy = "changed_at"


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "strategy", "ring_timeout_s", "max_wait_s", "wrap_up_s"]
    search_fields = ["name"]
    filter_horizontal = ["business_numbers", "required_skills"]
    inlines = [QueueMembershipInline]
