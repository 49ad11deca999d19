from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import TimeStampedModel


class Agent(TimeStampedModel):
    """A person who answers calls in the browser dashboard."""

    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        AWAY = "away", "Away"
        OFFLINE = "offline", "Offline"

    # The states an agent may choose for themselves on the dashboard.
    PRESENCE_STATUSES = frozenset({Status.AVAILABLE, Status.AWAY, Status.OFFLINE})

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    display_name = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFLINE, db_index=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

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

    def __str__(self) -> str:
        return f"{self.agent}: {self.previous_status} → {self.status} at {self.changed_at:%Y-%m-%d %H:%M:%S}"


class Queue(TimeStampedModel):
    """Where waiting calls line up for the agents who are members of it."""

    name = models.CharField(max_length=120, unique=True)
    business_numbers = models.ManyToManyField("whatsapp.BusinessNumber", related_name="queues", blank=True)
    members = models.ManyToManyField(Agent, through="QueueMembership", related_name="queues", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


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
