from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from djmoney.models.fields import MoneyField

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


class BillingCurrency(models.Model):
    """The currency Meta bills a WhatsApp Business Account in, from a date on.

    An account with no row is billed in USD. Meta moves some markets to local currency (India in INR
    from 2026-01-01, Brazil in BRL from the second half of 2026; WHATSAPP_API.md §5.3): a row says so.
    """

    waba_id = models.CharField("WhatsApp Business Account id", max_length=64)
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. INR.")
    effective_from = models.DateField()

    class Meta:
        ordering = ["waba_id", "-effective_from"]
        verbose_name_plural = "billing currencies"
        constraints = [
            models.UniqueConstraint(
                fields=["waba_id", "effective_from"], name="one_billing_currency_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.waba_id}: {self.currency} from {self.effective_from}"


class RateRegion(models.Model):
    """A market of Meta's rate card that groups countries ("Rest of Asia Pacific"): a rate card row for
    the region prices each of its countries that has no row of its own."""

    name = models.CharField(max_length=64, unique=True)
    countries = models.JSONField(default=list, help_text='ISO 3166 codes, e.g. ["SG", "TH"].')

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RateCard(models.Model):
    """What Meta charges for one unit of a category in a market, in a currency, over a span of dates.

    The unit is a delivered message for the message categories and a minute for ``call`` (billed in
    6-second pulses, WHATSAPP_API.md §5.3). The market is a country's ISO code, a ``RateRegion``'s
    name, or ``OTHER`` (every country without a row of its own or of its region). ``effective_to`` is
    the last day the price applies (open-ended when empty); rows of one category, market and currency
    never overlap (``messaging.services.rate_card_save`` refuses it).
    """

    class Category(models.TextChoices):
        MARKETING = "marketing", "Marketing template"
        MARKETING_LITE = "marketing_lite", "Marketing lite template"
        UTILITY = "utility", "Utility template"
        AUTHENTICATION = "authentication", "Authentication template"
        AUTHENTICATION_INTERNATIONAL = "authentication_international", "Authentication (international)"
        SERVICE = "service", "Service message"
        CALL = "call", "Business-initiated call (per minute)"

    OTHER_MARKET = "OTHER"

    category = models.CharField(max_length=32, choices=Category.choices)
    market = models.CharField(
        max_length=64, help_text="An ISO 3166 country code, a rate region's name, or OTHER for the rest."
    )
    price = MoneyField(max_digits=12, decimal_places=4, default_currency=None)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="The last day; empty: until replaced.")
    source = models.CharField(max_length=200, blank=True, help_text="Where the price comes from.")

    class Meta:
        ordering = ["category", "market", "price_currency", "-effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(effective_to__isnull=True)
                | models.Q(effective_to__gte=models.F("effective_from")),
                name="rate_card_ends_after_it_starts",
            ),
        ]
        indexes = [models.Index(fields=["category", "market", "price_currency", "effective_from"])]

    def __str__(self) -> str:
        until = f" to {self.effective_to}" if self.effective_to else ""
        return f"{self.get_category_display()}, {self.market}: {self.price} from {self.effective_from}{until}"

    def clean(self) -> None:
        if self.effective_to is not None and self.effective_from and self.effective_to < self.effective_from:
            raise ValidationError({"effective_to": "The last day comes before the first."})
        overlapping = self.overlapping()
        if overlapping:
            raise ValidationError(
                f"Overlaps {overlapping[0]}: rows of one category, market and currency cannot share a day.",
                code="overlap",
            )

    def overlapping(self) -> list["RateCard"]:
        """Other rows of this category, market and currency that share a day with this one."""
        if not self.effective_from:
            return []
        others = RateCard.objects.filter(
            category=self.category, market=self.market, price_currency=str(self.price_currency)
        ).exclude(pk=self.pk)
        if self.effective_to is not None:
            others = others.filter(effective_from__lte=self.effective_to)
        return list(
            others.filter(
                models.Q(effective_to__isnull=True) | models.Q(effective_to__gte=self.effective_from)
            )
        )


class Charge(models.Model):
    """One billable event, once: a delivered template message or a connected call.

    ``amount`` is in the account's billing currency on ``billed_on``; it is zero for what Meta does not
    charge (a service-window utility template, anything in a free entry point window, an inbound call)
    and empty when no rate card row prices it yet (``rate`` is then empty too: an unpriced charge).
    """

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        CALL = "call", "Call"

    class PricingType(models.TextChoices):
        REGULAR = "regular", "Charged"
        FREE_CUSTOMER_SERVICE = "free_customer_service", "Free: customer-service window"
        FREE_ENTRY_POINT = "free_entry_point", "Free: free entry point window"
        FREE_USER_INITIATED = "free_user_initiated", "Free: the customer called"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    reference = models.CharField(max_length=128, help_text="The WhatsApp message id or call id.")
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="charges"
    )
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 code of the customer's number.")
    category = models.CharField(max_length=48, choices=RateCard.Category.choices, blank=True)
    pricing_type = models.CharField(max_length=48, choices=PricingType.choices)
    billed_on = models.DateField()
    quantity = models.PositiveIntegerField(default=1, help_text="Messages, or a call's 6-second pulses.")
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    amount = MoneyField(max_digits=14, decimal_places=4, default_currency=None, null=True, blank=True)
    rate = models.ForeignKey(RateCard, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-billed_on", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "reference"], name="one_charge_per_event")]
        indexes = [models.Index(fields=["billed_on", "category", "country"])]

    def __str__(self) -> str:
        amount = "unpriced" if self.amount is None else self.amount
        return f"{self.get_kind_display()} {self.reference}: {amount}"


class Template(TimeStampedModel):
    """A message template of a WhatsApp Business Account, as Meta reviewed it (entered in admin, or
    registered through the Graph API). Only an approved template can be sent."""

    class Status(models.TextChoices):
        APPROVED = "APPROVED", "Approved"
        PENDING = "PENDING", "Pending review"
        REJECTED = "REJECTED", "Rejected"
        PAUSED = "PAUSED", "Paused"
        DISABLED = "DISABLED", "Disabled"

    waba_id = models.CharField("WhatsApp Business Account id", max_length=64)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16, help_text="Meta's language code, e.g. en_US.")
    category = models.CharField(
        max_length=32,
        choices=[
            (RateCard.Category.MARKETING, "Marketing"),
            (RateCard.Category.UTILITY, "Utility"),
            (RateCard.Category.AUTHENTICATION, "Authentication"),
        ],
    )
    components = models.JSONField(
        default=list, blank=True, help_text="Meta's components: header, body, buttons."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)

    class Meta:
        ordering = ["waba_id", "name", "language"]
        constraints = [
            models.UniqueConstraint(fields=["waba_id", "name", "language"], name="one_template_per_language")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


# Types a browser shows or plays itself without running anything (no SVG, no HTML): served inline.
INLINE_MEDIA_TYPES = frozenset(
    {
        "image/jpeg", "image/png", "image/webp", "image/gif",
        "audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/amr", "audio/webm",
        "video/mp4", "video/3gpp", "video/webm",
    }
)  # fmt: skip


class Message(TimeStampedModel):
    """A WhatsApp message of a contact's thread with one of the business's numbers, either way.

    An outbound message is recorded (``pending``) before it is sent, under an idempotency key, so a
    retried request sends it once; Meta's status webhooks then move it on (sent, delivered, read, or
    failed with Meta's error). ``request`` is the Graph API body sent, exactly.

    A customer's message of any type is kept (WHATSAPP_API.md §10.3): ``text`` says what the thread
    shows of it, ``note`` what could not be read, ``error`` why Meta could not show it (``unsupported``).
    A file the customer sent is fetched from Meta by a worker (``media_status``) into ``media``; a
    reaction names the message it is on (``reacts_to``; an empty ``emoji`` takes it back).
    """

    class Direction(models.TextChoices):
        INBOUND = "inbound", "From the customer"
        OUTBOUND = "outbound", "From the business"

    class Status(models.TextChoices):
        PENDING = "pending", "Recorded, not sent yet"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        RECEIVED = "received", "Received"

    class MediaStatus(models.TextChoices):
        PENDING = "pending", "Being fetched from WhatsApp"
        STORED = "stored", "Stored"
        FAILED = "failed", "Could not be fetched"

    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="messages"
    )
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="messages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    message_type = models.CharField(max_length=32, help_text="Meta's type: text, template, interactive...")
    text = models.TextField(blank=True, help_text="What the thread shows: the text, or the template's name.")
    template = models.ForeignKey(Template, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    wa_message_id = models.CharField(
        "WhatsApp message id", max_length=128, unique=True, null=True, blank=True
    )
    idempotency_key = models.CharField(max_length=64, unique=True, null=True, blank=True)
    request = models.JSONField(null=True, blank=True)
    raw = models.JSONField(null=True, blank=True, help_text="The customer's message as Meta delivered it.")
    referral = models.JSONField(null=True, blank=True, help_text="The ad the customer wrote from.")
    status = models.CharField(max_length=16, choices=Status.choices)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    send_claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker last took it to send."
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_from_assistant = models.BooleanField(
        default=False, help_text="Sent by the number's automated assistant, not by a person."
    )
    note = models.CharField(max_length=255, blank=True, help_text="What could not be read of the message.")
    media_id = models.CharField(max_length=128, blank=True, help_text="Meta's id of the file sent.")
    mime_type = models.CharField(max_length=128, blank=True)
    media_sha256 = models.CharField(max_length=128, blank=True, help_text="Meta's checksum of the file.")
    media_filename = models.CharField(max_length=255, blank=True, help_text="The document's name.")
    media = models.FileField(upload_to="whatsapp/media/%Y/%m/", max_length=255, blank=True)
    media_size = models.PositiveBigIntegerField(null=True, blank=True)
    media_status = models.CharField(max_length=8, choices=MediaStatus.choices, blank=True)
    media_error = models.CharField(max_length=255, blank=True)
    reacts_to = models.CharField(
        max_length=128, blank=True, help_text="A reaction: the WhatsApp id of the message it is on."
    )
    emoji = models.CharField(max_length=32, blank=True, help_text="A reaction's emoji; empty: taken back.")

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["contact", "business_number", "created_at"], name="message_thread")]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.message_type} to/from {self.contact}: {self.status}"

    @property
    def media_shown_as(self) -> str:
        """How the stored file is shown: ``image``, ``audio`` or ``video`` inline when its type is one a
        browser plays safely, else ``download`` (a document, and anything else a customer sent)."""
        mime_type = self.mime_type.split(";")[0].strip().lower()
        return mime_type.split("/")[0] if mime_type in INLINE_MEDIA_TYPES else "download"


class ConversationWindow(models.Model):
    """The windows Meta prices a number's messages to a contact by (WHATSAPP_API.md §5.3-5.4).

    Customer service: 24 h from the customer's last message or call, refreshed by each; free-form
    messages only inside it. Free entry point: 72 h from the business's first reply within 24 h to a
    customer who wrote from a click-to-WhatsApp ad; every message is free inside it (a free-form one
    still needs the customer-service window).
    """

    business_number = models.ForeignKey("whatsapp.BusinessNumber", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="windows")
    customer_service_until = models.DateTimeField(null=True, blank=True)
    referral_at = models.DateTimeField(
        null=True, blank=True, help_text="When the customer last wrote from an ad."
    )
    free_entry_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["business_number", "contact"], name="one_window_per_thread")
        ]

    def __str__(self) -> str:
        return f"{self.contact} with {self.business_number_id}"


class Conversation(TimeStampedModel):
    """A customer's conversation with one business number in the shared inbox: the span of their
    thread from the message that opened it until it is closed (the thread's messages in between are
    its messages), with who has it now.

    With the assistant (the next step's automated answers), waiting for an agent in the number's
    queue, assigned to one agent, or closed. At most one is open per customer and number; the next
    message after closing opens another. Every change of state is one conditional UPDATE
    (messaging.conversations).
    """

    class State(models.TextChoices):
        ASSISTANT = "assistant", "With the assistant"
        WAITING = "waiting", "Waiting for an agent"
        ASSIGNED = "assigned", "Assigned"
        CLOSED = "closed", "Closed"

    OPEN_STATES = (State.ASSISTANT, State.WAITING, State.ASSIGNED)

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="conversations"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)
    queue = models.ForeignKey(
        "agents.Queue", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations",
        help_text="The queue that routes it to its agents: the number's.",
    )  # fmt: skip
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations",
        help_text="The agent who has it (assigned), or had it last (closed).",
    )  # fmt: skip
    unread_count = models.PositiveIntegerField(
        default=0, help_text="The customer's messages the agent has not read yet."
    )
    last_message_at = models.DateTimeField()
    opened_at = models.DateTimeField()
    waiting_since = models.DateTimeField(
        null=True, blank=True, help_text="When it last started waiting for an agent: the queue's order."
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "business_number"],
                condition=~models.Q(state="closed"),
                name="one_open_conversation_per_thread",
            ),
            models.CheckConstraint(
                condition=models.Q(state="assigned", agent__isnull=False)
                | models.Q(state="closed")
                | models.Q(state__in=["assistant", "waiting"], agent__isnull=True),
                name="conversation_agent_when_assigned",
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "state", "waiting_since"], name="conversation_queue_order"),
            models.Index(fields=["agent", "state"], name="conversation_agent_state"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} with {self.business_number_id}: {self.get_state_display()}"


class CannedReply(TimeStampedModel):
    """A reply agents often write, kept by supervisors: offered in the reply box of a number's
    conversations (by its title, or typed as `/shortcut`) for the agent to edit before sending."""

    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", null=True, blank=True, on_delete=models.CASCADE,
        related_name="canned_replies", help_text="The number whose conversations offer it; empty: all.",
    )  # fmt: skip
    shortcut = models.SlugField(max_length=32, help_text="Typed after a slash in the reply box, e.g. refund.")
    title = models.CharField(max_length=100)
    text = models.TextField(max_length=4096)

    class Meta:
        verbose_name_plural = "canned replies"
        ordering = ["shortcut", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_number", "shortcut"], name="one_canned_reply_per_shortcut"
            ),
            models.UniqueConstraint(
                fields=["shortcut"],
                condition=models.Q(business_number__isnull=True),
                name="one_global_canned_reply_per_shortcut",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}: {self.title}"


class ConversationNote(TimeStampedModel):
    """A private note an agent or supervisor left on a conversation: never sent to the customer, shown
    in the thread to whom the notes rule allows (core.access.Viewer.conversation_note_of)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(max_length=2000)

    is_note = True  # the thread shows notes among messages

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Note on conversation {self.conversation_id}"


class MarketingPreference(TimeStampedModel):
    """Whether a customer takes marketing templates from one business number, as WhatsApp last told
    us (WHATSAPP_API.md §10.2): the `user_preferences` webhook, a system message saying the same, or
    Meta refusing a marketing template with 131050. Changed only by messaging.services, each change
    with a MarketingPreferenceChange in the same transaction.

    `news_at` is the time of the latest news applied (Meta's time of the change; our clock for a
    131050 refusal): older news arriving later changes nothing.
    """

    class Status(models.TextChoices):
        ALLOWED = "allowed", "Allowed"
        STOPPED = "stopped", "Stopped by the customer"

    class Source(models.TextChoices):
        WEBHOOK = "user_preferences", "The user_preferences webhook"
        SYSTEM_MESSAGE = "system_message", "A system message from WhatsApp"
        META_REFUSAL = "meta_refusal", "Meta refused a marketing template (131050)"

    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="marketing_preferences"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="marketing_preferences")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ALLOWED)
    since = models.DateTimeField(help_text="When the customer's present choice was made.")
    news_at = models.DateTimeField(help_text="The time of the latest news applied (Meta's).")
    source = models.CharField(max_length=16, choices=Source.choices)

    class Meta:
        ordering = ["-since", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["business_number", "contact"], name="one_marketing_preference_per_thread"
            )
        ]

    def __str__(self) -> str:
        return f"Marketing {self.get_status_display().lower()}: {self.contact} from {self.business_number_id}"

    @property
    def is_stopped(self) -> bool:
        return self.status == self.Status.STOPPED


class MarketingPreferenceChange(models.Model):
    """One change of a customer's marketing preference: from what to what, when (Meta's time), from
    which news, with WhatsApp's own words for it. Append-only."""

    preference = models.ForeignKey(MarketingPreference, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField(db_index=True)
    from_status = models.CharField(max_length=8, blank=True, help_text="Empty: first news of it.")
    to_status = models.CharField(max_length=8, choices=MarketingPreference.Status.choices)
    source = models.CharField(max_length=16, choices=MarketingPreference.Source.choices)
    detail = models.CharField(max_length=255, blank=True, help_text="WhatsApp's description of the change.")
    reference = models.CharField(
        max_length=160, blank=True, help_text="The webhook event's key, or the refused message's id."
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.from_status or 'unknown'} → {self.to_status} at {self.at:%Y-%m-%d %H:%M:%S}"
