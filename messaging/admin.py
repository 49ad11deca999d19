from django.contrib import admin

from messaging.models import CallRate, Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "wa_id", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["name", "wa_id"]


@admin.register(CallRate)
class CallRateAdmin(admin.ModelAdmin):
    list_display = ["country", "per_minute", "currency", "valid_from"]
    list_filter = ["currency", "country"]
    date_hierarchy = "valid_from"
