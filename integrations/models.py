from django.conf import settings
from django.db import models

from core.models import TimeStampedModel


class ApiKey(TimeStampedModel):
    """A CRM's key to the REST API. Only its SHA-256 is stored: the key itself is shown once, when it
    is created. It sees the business numbers it is given, and does what its scopes allow."""

    class Scope(models.TextChoices):
        READ = "read", "Read contacts, calls, transcripts, summaries, agents"
        CALLS_WRITE = "calls:write", "Place calls and request call permissions"
        MESSAGES_WRITE = "messages:write", "Send messages"
        ADMIN = "admin", "Everything, unredacted text and the account's billing reports included"

    name = models.CharField(max_length=120, help_text="Who uses it, e.g. the CRM's name.")
    prefix = models.CharField(
        max_length=16, unique=True, editable=False, help_text="Public: identifies the key."
    )
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    business_numbers = models.ManyToManyField(
        "whatsapp.BusinessNumber", related_name="api_keys", help_text="The numbers whose data the key sees."
    )
    rate_limit_per_minute = models.PositiveIntegerField(default=120)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
