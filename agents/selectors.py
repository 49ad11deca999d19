import datetime
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from agents.models import Agent, Queue
from whatsapp.models import BusinessNumber


def agent_for_user(*, user: AbstractBaseUser) -> Agent | None:
    """The agent profile of a signed-in user, or None for users who do not take calls."""
    return Agent.objects.select_related("user").filter(user_id=user.pk).first()


def agent_presence(*, agent: Agent) -> dict:
    """The presence frame sent to an agent's browser tabs."""
    return {
        "type": "agent.status",
        "agent_id": agent.pk,
        "status": agent.status,
        "changed_at": agent.status_changed_at.isoformat(),
    }


def numbers_for_agent(*, agent_id: int) -> QuerySet[BusinessNumber]:
    """The business numbers an agent calls customers from: those of the agent's queues."""
    return (
        BusinessNumber.objects.filter(queues__memberships__agent_id=agent_id)
        .distinct()
        .order_by("display_phone_number")
    )


def queue_for_number(*, phone_number_id: str) -> Queue | None:
    """The queue that takes the number's calls and conversations (the first by name when several do)."""
    return (
        Queue.objects.filter(business_numbers__phone_number_id=phone_number_id).order_by("name", "pk").first()
    )


@dataclass(frozen=True)
class AgentDay:
    """An agent's own figures for today (their dashboard and the inbox's softphone dock)."""

    calls_taken: int
    chats_closed: int
    status_seconds: dict[str, float]  # status -> seconds in it today, in Agent.Status order

    @property
    def status_rows(self) -> list[tuple[str, str, float]]:
        """(status, label, seconds) for each status the agent spent time in today, offline left out."""
        labels = dict(Agent.Status.choices)
        return [
            (status, labels[status], seconds)
            for status, seconds in self.status_seconds.items()
            if status != Agent.Status.OFFLINE
        ]


def agent_day(*, agent_id: int, now: datetime.datetime | None = None) -> AgentDay:
    """Today's figures of one agent, "today" being the local day (settings.TIME_ZONE) up to now: calls
    connected to them, conversations closed that they held, and time in each status from their status
    history (calls.kpis.agent_status_seconds, as the wallboard counts it). Four queries."""
    from calls.kpis import agent_status_seconds  # calls.kpis reads agents' models: imported when used
    from calls.models import Call
    from messaging.models import Conversation

    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = agent_status_seconds(agent_ids=[agent_id], since=start, until=now, now=now).get(agent_id, {})
    calls = Call.objects.filter(agent_id=agent_id, connected_at__gte=start, connected_at__lt=now)
    return AgentDay(
        calls_taken=calls.count(),
        chats_closed=Conversation.objects.filter(
            agent_id=agent_id, state=Conversation.State.CLOSED, closed_at__gte=start, closed_at__lt=now
        ).count(),
        status_seconds={status: seconds[status] for status in Agent.Status.values if seconds.get(status)},
    )
