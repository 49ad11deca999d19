from django.contrib import admin

from messaging.models import Contact


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["name", "wa_id", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["name", "wa_id"]
