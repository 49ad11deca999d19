from django.db import models


class ConsentRecord(models.Model):
    """Proof of what a customer was told: the recording notice of a call, its words and language,
    when it started and when it had been heard to its end (never, if the caller left first)."""

    class Kind(models.TextChoices):
        RECORDING_NOTICE = "recording_notice", "Recording notice played"

    call = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.CASCADE, related_name="consent_records"
    )
    contact = models.ForeignKey("messaging.Contact", on_delete=models.CASCADE, related_name="consent_records")
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="consent_records"
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    language = models.CharField(max_length=8)
    text = models.TextField(help_text="The words the customer heard.")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True, help_text="Empty: not heard to the end.")

    class Meta:
        ordering = ["-started_at"]
        constraints = [models.UniqueConstraint(fields=["call", "kind"], name="one_consent_record_per_call")]

    def __str__(self) -> str:
        state = "heard" if self.completed_at else "not heard to the end"
        return f"{self.get_kind_display()} ({self.language}, {state})"
