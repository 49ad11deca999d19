from django.contrib import admin

from assistant.models import AssistantSettings, KnowledgeEntry, Lead, QualificationQuestion
from core.admin import ReadOnlyAdmin


@admin.register(AssistantSettings)
class AssistantSettingsAdmin(admin.ModelAdmin):
    list_display = ["business_number", "is_enabled", "hours", "hot_threshold"]
    list_filter = ["is_enabled", "hours"]
    list_select_related = ["business_number"]


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ["question", "price", "business_number", "updated_at"]
    list_filter = ["business_number"]
    list_select_related = ["business_number"]
    search_fields = ["question", "answer"]


@admin.register(QualificationQuestion)
class QualificationQuestionAdmin(admin.ModelAdmin):
    list_display = ["question", "lead_field", "position", "business_number"]
    list_filter = ["business_number", "lead_field"]
    list_select_related = ["business_number"]


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = [
        "conversation",
        "score",
        "sentiment",
        "intent",
        "fields",
        "call_button_sent_at",
        "updated_at",
    ]
    list_filter = ["sentiment"]
    list_select_related = ["conversation__contact", "conversation__business_number"]
