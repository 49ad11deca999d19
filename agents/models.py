from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import TimeStampedModel

# The days of a queue's weekly hours, Monday first (datetime's weekday() indexes them).
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


class Agent(TimeStampedModel):
    """A person who answers calls in the browser dashboard."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        RINGING = "ringing", "Ringing"
        ON_CALL = "on_call", "On a call"
        WRAP_UP = "wrap_up", "Wrap-up"
        AWAY = "away", "Away"
        OFFLINE = "offline", "Offline"

    # The states an agent may choose for themselves on the dashboard, and those they may leave
    # that way (not while a call rings for them or is connected to them).
    PRESENCE_STATUSES = frozenset({Status.AVAILABLE, Status.AWAY, Status.OFFLINE})
    SELF_SERVICE_STATUSES = frozenset({Status.AVAILABLE, Status.WRAP_UP, Status.AWAY, Status.OFFLINE})

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    display_name = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFLINE, db_index=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    skills = models.ManyToManyField("Skill", related_name="agents", blank=True)
    missed_offers = models.PositiveSmallIntegerField(
        default=0, help_text="Offers in a row the agent let ring out or declined."
    )
    last_offered_at = models.DateTimeField(null=True, blank=True)
    chat_limit = models.PositiveSmallIntegerField(
        default=3, help_text="Conversations the agent may hold at once (0: the agent takes no chats)."
    )
    chat_count = models.PositiveSmallIntegerField(
        default=0, help_text="Conversations assigned to the agent now (kept by the inbox, never edited)."
    )

    class Meta:
        ordering = ["display_name", "pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.user.get_full_name() or self.user.get_username()

    @property
    def group_name(self) -> str:
        return f"agent.{self.pk}"


class AgentStatusEvent(models.Model):
    """One change of an agent's status: the history behind occupancy and availability reports."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="status_events")
    previous_status = models.CharField(max_length=16, choices=Agent.Status.choices)
    status = models.CharField(max_length=16, choices=Agent.Status.choices)
    changed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["changed_at", "pk"]
        # Occupancy and wrap-up read each agent's history in time order (calls.kpis).
        indexes = [models.Index(fields=["agent", "changed_at"], name="status_event_agent_time")]

    def __str__(self) -> str:
        return f"{self.agent}: {self.previous_status} → {self.status} at {self.changed_at:%Y-%m-%d %H:%M:%S}"


class Skill(models.Model):
    name = models.CharField(max_length=80, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Queue(TimeStampedModel):
    """Where waiting calls line up for the agents who are members of it."""

    class Strategy(models.TextChoices):
        LONGEST_IDLE = "longest_idle", "Longest idle agent"
        ROUND_ROBIN = "round_robin", "Round robin"

    name = models.CharField(max_length=120, unique=True)
    business_numbers = models.ManyToManyField("whatsapp.BusinessNumber", related_name="queues", blank=True)
    members = models.ManyToManyField(Agent, through="QueueMembership", related_name="queues", blank=True)
    required_skills = models.ManyToManyField(Skill, related_name="queues", blank=True)
    strategy = models.CharField(max_length=16, choices=Strategy.choices, default=Strategy.LONGEST_IDLE)
    ring_timeout_s = models.PositiveSmallIntegerField(default=20)
    max_wait_s = models.PositiveIntegerField(default=180)
    wrap_up_s = models.PositiveSmallIntegerField(default=30)
    missed_offers_before_away = models.PositiveSmallIntegerField(default=2)
    timezone = models.CharField(max_length=64, default="UTC")
    weekly_hours = models.JSONField(
        default=list,
        blank=True,
        help_text='Open hours: [{"day": "MONDAY", "open": "09:00", "close": "17:00"}]; none: always.',
    )
    holidays = models.JSONField(default=list, blank=True, help_text='Closed dates: ["2026-12-25", ...].')
    language = models.CharField(
        max_length=8,
        default="en",
        help_text="Language of the recorded notice and closing message callers hear (static/audio).",
    )
    closed_message = models.TextField(
        blank=True,
        default="We are closed now. Please call us again during our opening hours.",
        help_text="Sent on WhatsApp to callers outside opening hours.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        """The realtime group of the queue's agents: its waiting list (messaging.conversations)."""
        return f"queue.{self.pk}"


class QueueMembership(models.Model):
    """An agent's place in a queue; tier 1 agents are offered calls before tier 2 and so on."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="memberships")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="memberships")
    priority = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["queue", "priority", "agent"]
        constraints = [models.UniqueConstraint(fields=["queue", "agent"], name="unique_queue_member")]

    def __str__(self) -> str:
        return f"{self.agent} in {self.queue} (tier {self.priority})"
