from celery import shared_task

from agents.services import agent_offline_if_gone


@shared_task(name="agents.offline_if_gone")
def offline_if_gone(*, agent_id: int) -> bool:
    """The agent's last dashboard closed a grace period ago: offline, unless one is open again."""
    return agent_offline_if_gone(agent_id=agent_id)
