from django.contrib import admin

from whatsapp.models import BusinessNumber


@admin.register(BusinessNumber)
class BusinessNumberAdmin(admin.ModelAdmin):
    list_display = ["display_phone_number", "label", "phone_number_id", "waba_id", "is_sandbox"]
    list_filter = ["is_sandbox"]
    search_fields = ["display_phone_number", "label", "phone_number_id", "waba_id"]
