from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

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
