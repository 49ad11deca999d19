from django.db import models
from django.db.models import Q

from core.models import TimeStampedModel


class Call(TimeStampedModel):
    """One WhatsApp call, inbound or outbound, from the first webhook to its end.

    Every status change is one conditional UPDATE (calls.services) and leaves a CallEvent.
    """

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Inbound (customer called)"
        OUTBOUND = "outbound", "Outbound (business called)"

    class Status(models.TextChoices):
        RINGING = "ringing", "Ringing"  # inbound: Meta's offer received, not yet taken or rejected
        QUEUED = "queued", "Queued"  # taken: waiting for an agent while a media process answers it
        OFFERED = "offered", "Offered"  # ringing one agent's browser
        DIALING = "dialing", "Dialing"  # outbound: connect sent to Meta
        CONNECTED = "connected", "Connected"
        ENDED = "ended", "Ended"

    class EndReason(models.TextChoices):
        COMPLETED = "completed", "Completed"
        ABANDONED = "abandoned", "Abandoned (caller left while waiting)"
        NO_AGENT = "no_agent", "No agent (maximum wait reached)"
        REJECTED = "rejected", "Rejected"
        UNANSWERED = "unanswered", "Unanswered"
        FAILED = "failed", "Failed"
        TOO_LATE = "too_late", "Too late (Meta delivered the call after it was over)"
        DROPPED = "dropped", "Dropped (the customer's media stopped during the conversation)"

    class Disposition(models.TextChoices):
        RESOLVED = "resolved", "Resolved"
        FOLLOW_UP = "follow_up", "Needs a follow-up"
        ESCALATED = "escalated", "Escalated"
        WRONG_NUMBER = "wrong_number", "Wrong number"
        OTHER = "other", "Other"

    LIVE_STATUSES = frozenset(
        {Status.RINGING, Status.QUEUED, Status.OFFERED, Status.DIALING, Status.CONNECTED}
    )

    wa_call_id = models.CharField("WhatsApp call id", max_length=128, unique=True)
    business_number = models.ForeignKey(
        "whatsapp.BusinessNumber", on_delete=models.PROTECT, related_name="calls"
    )
    contact = models.ForeignKey("messaging.Contact", on_delete=models.PROTECT, related_name="calls")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    status = models.CharField(max_length=16, choices=Status.choices, db_index=True)
    queue = models.ForeignKey(
        "agents.Queue", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls",
        help_text="The agent who took the call.",
    )  # fmt: skip
    offered_to = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The agent being rung right now.",
    )  # fmt: skip
    offer_count = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(help_text="When Meta's first webhook for the call arrived.")
    queued_at = models.DateTimeField(null=True, blank=True)
    offered_at = models.DateTimeField(null=True, blank=True)
    offer_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(
        null=True, blank=True, help_text="When the media process answered the customer's leg on Meta."
    )
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    end_detail = models.CharField(max_length=255, blank=True)
    talk_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Connected time, from the agent's answer to the end (hold included)."
    )
    hold_seconds = models.PositiveIntegerField(
        default=0,
        help_text="Of the connected time, how long the agent held the customer (part of talk_seconds).",
    )
    held_since = models.DateTimeField(
        null=True, blank=True, help_text="On hold since then; empty when the customer is not on hold."
    )
    disposition = models.CharField(max_length=16, choices=Disposition.choices, blank=True)
    wrap_up_notes = models.TextField(blank=True)
    media_channel = models.CharField(
        max_length=200, blank=True, help_text="Channel-layer name of the media process holding the call."
    )
    conversation = models.ForeignKey(
        "messaging.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls",
        help_text="The customer's chat with the number the call came from (open, or closed in the last day).",
    )  # fmt: skip
    cta_payload = models.CharField(max_length=512, blank=True)
    deeplink_payload = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            # One agent never holds two calls: at most one live call offered to or taken by an agent.
            models.UniqueConstraint(
                fields=["offered_to"], condition=Q(status="offered"), name="one_offer_per_agent"
            ),
            models.UniqueConstraint(
                fields=["agent"], condition=Q(status="connected"), name="one_call_per_agent"
            ),
        ]
        indexes = [models.Index(fields=["queue", "status", "queued_at"], name="call_queue_wait")]
        permissions = [
            ("view_kpis", "Can see the contact centre's KPIs and export them (every queue)"),
            ("read_colleagues_notes", "Can read other agents' wrap-up notes (masked without raw text)"),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} call {self.wa_call_id}"

    @property
    def is_live(self) -> bool:
        return self.status in self.LIVE_STATUSES


class CallEvent(models.Model):
    """One transition of a call: the timeline supervisors read and reports count from."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, choices=Call.Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Call.Status.choices)
    at = models.DateTimeField(db_index=True)
    agent = models.ForeignKey(
        "agents.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.call_id}: {self.from_status or '-'} → {self.to_status}"


class LiveCallCount(models.Model):
    """Live calls per business number and direction: Meta's concurrency cap, counted atomically.

    Taken with `UPDATE … SET live = live + 1 WHERE live < cap` and given back exactly once, by
    the transition that ends the call.
    """

    business_number = models.ForeignKey("whatsapp.BusinessNumber", on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=8, choices=Call.Direction.choices)
    live = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["business_number", "direction"], name="one_count_per_number_direction"
            ),
            models.CheckConstraint(condition=Q(live__gte=0), name="live_count_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.business_number} {self.direction}: {self.live}"
