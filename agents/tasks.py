from celery import shared_task

from agents import presence
from agents.services import agent_offline_if_gone, agents_gone_offline


@shared_task(name="agents.offline_if_gone")
def offline_if_gone(*, agent_id: int) -> bool:
    """The agent's last dashboard closed a grace period ago: offline, unless one is open again."""
    return agent_offline_if_gone(agent_id=agent_id)


@shared_task(name="agents.gone_offline")
def gone_offline() -> int:
    """Every few seconds (beat): agents with nothing of theirs present any more go offline; none
    while Redis, restarted, is still being told of the open sockets (`presence.is_rebuilding`)."""
    if presence.is_rebuilding():
        return 0
    return agents_gone_offline()
