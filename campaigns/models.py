"""Campaigns: one approved template sent from one number to a list of customers, paced so that the
calls it brings fit the number's 1,000-call cap and the agents on duty (WHATSAPP_API.md §4.4, §5.1,
§10.1, §10.2)."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import TimeStampedModel


class Campaign(TimeStampedModel):
    """A broadcast of one template from one business number.

    The operator's guesses (`expected_*`) feed the capacity plan before sending; once replies and
    calls come in, the campaign's own measured rates replace them. `plan` keeps the plan the campaign
    was started with (figures and the formula that made them), `send_rate_per_second` the pace the
    sender keeps (never above the number's messaging throughput).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200)
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="campaigns"
    )
    template = models.ForeignKey("messaging.Template", on_delete=models.PROTECT, related_name="campaigns")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # The payload of the template's voice-call button (§4.4): Meta echoes it as the call's
    # `cta_payload`, which is how a call is known to come from this campaign.
    call_button_payload = models.CharField(max_length=512, blank=True, db_index=True)
    expected_tap_rate = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.02"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of recipients expected to tap the call button (0.02 = 2 %).",
    )
    expected_call_seconds = models.PositiveIntegerField(
        default=180, validators=[MinValueValidator(1)], help_text="Expected length of a call it brings."
    )
    expected_tap_delay_seconds = models.PositiveIntegerField(
        default=600,
        validators=[MinValueValidator(1)],
        help_text="Expected time from delivery to the tap, on average (spreads the calls out).",
    )
    target_service_level = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.8"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of calls to answer within the target answer time (0.8 = 80 %).",
    )
    target_answer_seconds = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1)])
    agents_on_duty = models.PositiveIntegerField(
        null=True, blank=True, help_text="Agents expected to take its calls; empty: those signed in now."
    )
    send_rate_per_second = models.DecimalField(
        max_digits=8, decimal_places=3, null=True, blank=True, help_text="The pace the sender keeps."
    )
    plan = models.JSONField(default=dict, blank=True)
    parameters = models.JSONField(
        default=list,
        blank=True,
        help_text="The template body's parameters, in order (the same for everyone).",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The sender backs off on Meta's throughput error 130429 until then (never fails the campaign).
    throttled_until = models.DateTimeField(null=True, blank=True)
    # The one sender at work on the campaign, alive until then (it renews this as it goes); a sender
    # that died is replaced by the beat sweep once it passes.
    sender_token = models.CharField(max_length=32, blank=True)
    sender_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(
        max_length=300, blank=True, help_text="The last refusal that slowed it down."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        return f"campaign.{self.pk}"


class Recipient(models.Model):
    """One line of a campaign's list: who, whether they are excluded and why, and how far the
    campaign got with them (its message's statuses, their reply, their call)."""

    class Status(models.TextChoices):
        EXCLUDED = "excluded", "Excluded"
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"

    class Exclusion(models.TextChoices):
        INVALID_NUMBER = "invalid_number", "Not a valid phone number"
        DUPLICATE = "duplicate", "Listed more than once"
        SANCTIONED_COUNTRY = "sanctioned_country", "WhatsApp is not offered in the country"
        MARKETING_STOPPED = "marketing_stopped", "Stopped marketing messages from this number"
        NO_OPT_IN = "no_opt_in", "Never agreed to hear from the business"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    # As listed (a CSV line, a filter's row, an API item): kept even when it is not a number.
    listed_as = models.CharField(max_length=64)
    wa_id = models.CharField(max_length=32, blank=True, db_index=True)
    contact = models.ForeignKey(
        "messaging.Contact",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="campaign_recipients",
    )
    country = models.CharField(max_length=2, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    exclusion = models.CharField(max_length=32, choices=Exclusion.choices, blank=True)
    exclusion_detail = models.CharField(max_length=300, blank=True)
    message = models.OneToOneField(
        "messaging.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="campaign_recipient",
    )
    error = models.CharField(max_length=300, blank=True)
    # Claimed by a sender until then (a sender that died leaves it to the next one after it passes).
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    tapped_call_at = models.DateTimeField(null=True, blank=True)
    call = models.ForeignKey(
        "calls.Call", null=True, blank=True, on_delete=models.SET_NULL, related_name="campaign_recipients"
    )

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "wa_id"],
                condition=~models.Q(wa_id="") & ~models.Q(exclusion="duplicate"),
                name="one_line_per_customer",
            )
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="recipient_campaign_status")]

    def __str__(self) -> str:
        return f"{self.listed_as} ({self.get_status_display()})"


class OptIn(models.Model):
    """A customer's agreement to hear from a business number, recorded where it was given (a form, a
    shop's till, the CRM). A customer who wrote to or called the number has agreed too (they started
    the conversation); everyone else is excluded from campaigns as `no_opt_in`."""

    class Source(models.TextChoices):
        API = "api", "The CRM, through the API"
        IMPORT = "import", "An imported list"
        ADMIN = "admin", "Entered in the back office"

    business_number = models.ForeignKey("whatsapp.BusinessNumber", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("messaging.Contact", on_delete=models.CASCADE, related_name="opt_ins")
    at = models.DateTimeField(help_text="When the customer agreed.")
    source = models.CharField(max_length=16, choices=Source.choices)
    detail = models.CharField(max_length=300, blank=True, help_text="Where and how, e.g. the form's name.")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["business_number", "contact"], name="one_opt_in_per_number")
        ]

    def __str__(self) -> str:
        return f"{self.contact} agreed on {self.at:%Y-%m-%d}"
