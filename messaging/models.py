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


class CallRate(models.Model):
    """What a minute of a business-initiated call to a country costs, from a date on.

    Meta bills business-initiated calls in 6-second pulses by the callee's country code
    (WHATSAPP_API.md §5.3); its rates change and are entered here from Meta's rate card.
    User-initiated calls are free.
    """

    country = models.CharField(max_length=2, help_text="ISO 3166 code of the callee's number.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. USD.")
    per_minute = models.DecimalField(max_digits=10, decimal_places=4)
    valid_from = models.DateField()

    class Meta:
        ordering = ["country", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "currency", "valid_from"], name="one_call_rate_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.country}: {self.per_minute} {self.currency}/min from {self.valid_from}"
