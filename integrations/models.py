import uuid

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
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Web origins (scheme://host[:port]) whose pages may embed the call widget with this key.",
    )
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

    @property
    def group_name(self) -> str:
        """The channel-layer group of the call widget's sockets opened with this key."""
        return f"api_key.{self.pk}"


class WebhookSubscription(TimeStampedModel):
    """A CRM's endpoint for events of its business numbers: each delivery signed with `secret`."""

    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, editable=False, help_text="Signs each delivery (HMAC-SHA256).")
    event_types = models.JSONField(default=list, help_text="Kinds of events delivered, e.g. call.ended.")
    business_numbers = models.ManyToManyField("whatsapp.BusinessNumber", related_name="webhook_subscriptions")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class OutgoingEvent(models.Model):
    """Something that happened, as delivered to subscriptions: its id is the deliveries' idempotency key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, db_index=True)
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    data = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class EventDelivery(models.Model):
    """One event to one subscription: attempted until the endpoint answers 2xx, with backoff."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    event = models.ForeignKey(OutgoingEvent, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "event deliveries"
        ordering = ["-next_attempt_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "subscription"], name="one_delivery_per_event_and_subscription"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event.kind} to {self.subscription.name}: {self.status}"


class ApiWrite(models.Model):
    """One request that asked the API to change something (place a call, send a message, ask a
    customer's permission), as it was answered: refusals too. Append-only, written in the same
    transaction as the change it records; `request_id` is the answer's X-Request-Id."""

    request_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    at = models.DateTimeField(db_index=True)
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="writes")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    operation = models.CharField(max_length=48, blank=True, help_text="What was asked, e.g. calls.create.")
    status_code = models.PositiveSmallIntegerField()
    target = models.JSONField(
        default=dict,
        blank=True,
        help_text="Ids of what it acted on: business number, contact, call, message.",
    )
    refusal_code = models.CharField(
        max_length=255, blank=True, help_text="Why it was refused, e.g. no_permission or busy."
    )
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = "API write"
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["key", "at"], name="api_write_key_at")]

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.status_code}"
