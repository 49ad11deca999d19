from django.db import models

from core.models import TimeStampedModel


class Contact(TimeStampedModel):
    """A WhatsApp user the business talks to, known by their WhatsApp id (digits, no '+')."""

    wa_id = models.CharField("WhatsApp id", max_length=32, unique=True)
    name = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 code of the number.")

    class Meta:
        ordering = ["name", "wa_id"]

    def __str__(self) -> str:
        return f"{self.name} (+{self.wa_id})" if self.name else f"+{self.wa_id}"
