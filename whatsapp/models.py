from django.db import models

from core.models import TimeStampedModel


class BusinessNumber(TimeStampedModel):
    """A WhatsApp Business phone number connected through the Cloud API."""

    phone_number_id = models.CharField(max_length=64, unique=True)
    waba_id = models.CharField("WhatsApp Business Account id", max_length=64)
    display_phone_number = models.CharField(max_length=32)
    label = models.CharField(max_length=120, blank=True)
    is_sandbox = models.BooleanField(default=False, help_text="Served by the built-in Meta sandbox.")

    class Meta:
        ordering = ["display_phone_number"]

    def __str__(self) -> str:
        return f"{self.label or 'Number'} ({self.display_phone_number})"
