import json

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from core.models import TimeStampedModel


class BusinessNumber(TimeStampedModel):
    """A WhatsApp Business phone number connected through the Cloud API.

    Calling settings mirror Meta's GET /<PHONE_NUMBER_ID>/settings `calling` object and are kept
    in step by `account_settings_update` webhooks; restrictions and violations by `account_update`.
    """

    class MessagingLimitTier(models.TextChoices):
        TIER_250 = "TIER_250", "250 / 24 h"
        TIER_1K = "TIER_1K", "1,000 / 24 h"
        TIER_2K = "TIER_2K", "2,000 / 24 h"
        TIER_10K = "TIER_10K", "10,000 / 24 h"
        TIER_100K = "TIER_100K", "100,000 / 24 h"
        TIER_UNLIMITED = "TIER_UNLIMITED", "Unlimited"

    class VerificationStatus(models.TextChoices):
        NOT_VERIFIED = "not_verified", "Not verified"
        PENDING = "pending", "Official Business Account pending"
        VERIFIED = "verified", "Official Business Account"

    phone_number_id = models.CharField(max_length=64, unique=True)
    waba_id = models.CharField("WhatsApp Business Account id", max_length=64, db_index=True)
    display_phone_number = models.CharField(
        max_length=32, help_text="In international format, e.g. +44 20 7946 0000."
    )
    country = models.CharField(
        max_length=2, blank=True, editable=False, help_text="ISO 3166 code of the number."
    )
    label = models.CharField(max_length=120, blank=True)
    is_sandbox = models.BooleanField(default=False, help_text="Served by the built-in Meta sandbox.")
    recording_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Days a call's recording, transcript and summary are kept; empty: kept until erased.",
    )
    messaging_limit_tier = models.CharField(
        max_length=16, choices=MessagingLimitTier.choices, default=MessagingLimitTier.TIER_2K
    )
    is_coexistence = models.BooleanField(
        default=False,
        help_text="Also used in the WhatsApp Business app (coexistence): no business-initiated calls.",
    )
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.NOT_VERIFIED
    )
    calling_settings = models.JSONField(default=dict, blank=True)
    calling_settings_updated_at = models.DateTimeField(null=True, blank=True)
    restrictions = models.JSONField(default=list, blank=True)
    last_violation = models.CharField(max_length=64, blank=True)
    account_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["display_phone_number"]

    def __str__(self) -> str:
        return f"{self.label or 'Number'} ({self.display_phone_number})"

    def clean(self) -> None:
        self.country = country_of(self.display_phone_number)

    @property
    def is_calling_enabled(self) -> bool:
        return self.calling_settings.get("status") == "ENABLED"

    @property
    def digits(self) -> str:
        """The number as Meta writes it in webhooks: digits only, no '+'."""
        return "".join(character for character in self.display_phone_number if character.isdigit())


def country_of(number: str) -> str:
    """ISO 3166 alpha-2 code of an international phone number; ValidationError if it is not one."""
    text = number if number.startswith("+") else f"+{number}"
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as error:
        raise ValidationError(f"{number!r} is not an international phone number: {error}") from None
    region = phonenumbers.region_code_for_number(parsed)
    if not region or region == "ZZ":
        raise ValidationError(f"{number!r} belongs to no country.")
    return region


class WebhookDelivery(models.Model):
    """One signed POST from Meta, stored byte for byte for audit and replay."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        MALFORMED = "malformed", "Malformed"

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    body = models.BinaryField()
    status = models.CharField(max_length=16, choices=Status.choices)
    problems = models.JSONField(default=list, blank=True)
    event_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"Delivery {self.pk} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class WebhookEvent(models.Model):
    """One event out of a delivery, stored once however often Meta delivers it."""

    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        QUEUED = "queued", "Stored, waiting for the worker"
        HANDLED = "handled", "Handled"
        UNHANDLED = "unhandled", "No handler"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected: invalid content, not applied"

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=48, db_index=True)
    idempotency_key = models.CharField(max_length=255, unique=True)
    waba_id = models.CharField(max_length=64, blank=True)
    phone_number_id = models.CharField(max_length=64, blank=True, db_index=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="What the event means, when Switchboard only stores it.")

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class CallingSettingsChange(models.Model):
    """One attempt to set a number's calling settings at Meta (POST /<PHONE_NUMBER_ID>/settings,
    WHATSAPP_API.md §4.1): who sent what, and what Meta answered. Written for every attempt,
    accepted or refused; never changed."""

    business_number = models.ForeignKey(
        BusinessNumber, on_delete=models.CASCADE, related_name="calling_settings_changes"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent = models.JSONField(help_text="The `calling` object sent to Meta.")
    is_accepted = models.BooleanField()
    answer = models.JSONField(help_text="Meta's answer: its body, or its error's code, message and details.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        outcome = "accepted" if self.is_accepted else "refused"
        return f"Calling settings of {self.business_number} {outcome} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def sent_json(self) -> str:
        """What was sent, as it went on the wire."""
        return json.dumps({"calling": self.sent}, ensure_ascii=False)
