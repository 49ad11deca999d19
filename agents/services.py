from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from agents.models import Agent, AgentStatusEvent, Queue, QueueMembership
from agents.selectors import agent_presence
from core.realtime import broadcast_on_commit
from whatsapp.models import BusinessNumber
from whatsapp.sandbox.meta import ENABLED_CALLING_SETTINGS


@transaction.atomic
def agent_set_status(*, agent_id: int, status: str) -> Agent:
    """Set an agent's own presence (available, away or offline).

    Records an AgentStatusEvent and, after commit, pushes the new presence to every open tab
    of the agent (group `agent.<id>`). Setting the status the agent already has changes
    nothing and sends nothing. Raises ValidationError for a status an agent cannot choose.
    """
    if status not in Agent.PRESENCE_STATUSES:
        raise ValidationError(f"{status!r} is not a presence an agent can choose.", code="invalid_status")
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    if agent.status == status:
        return agent
    previous_status = agent.status
    agent.status = status
    agent.status_changed_at = timezone.now()
    agent.save(update_fields=["status", "status_changed_at", "updated_at"])
    AgentStatusEvent.objects.create(
        agent=agent, previous_status=previous_status, status=status, changed_at=agent.status_changed_at
    )
    broadcast_on_commit(agent.group_name, agent_presence(agent=agent))
    return agent


DEMO_SUPERVISOR = "supervisor"
DEMO_AGENTS = [("agent1", "Amira", "Haddad"), ("agent2", "Bruno", "Costa"), ("agent3", "Chen", "Wei")]
DEMO_QUEUE = "Customer care"
DEMO_NUMBER = {
    "phone_number_id": "100000000000001",
    "waba_id": "200000000000001",
    "display_phone_number": "+44 20 7946 0000",
    "label": "Sandbox line",
}
SUPERVISOR_GROUP = "supervisor"


@transaction.atomic
def demo_data_create() -> dict[str, str]:
    """Create the demo organisation once: a supervisor, three agents, a queue, a sandbox number.

    Returns the new users' passwords by username; returns {} when the demo data exists already,
    so running it again changes nothing.
    """
    user_model = get_user_model()
    if user_model.objects.filter(username=DEMO_SUPERVISOR).exists():
        return {}
    passwords: dict[str, str] = {}

    supervisors, _ = Group.objects.get_or_create(name=SUPERVISOR_GROUP)
    supervisors.permissions.set(Permission.objects.filter(content_type__app_label__in=["agents", "whatsapp"]))
    passwords[DEMO_SUPERVISOR] = get_random_string(14)
    supervisor = user_model.objects.create_user(
        username=DEMO_SUPERVISOR, password=passwords[DEMO_SUPERVISOR], first_name="Sam", last_name="Okafor",
        is_staff=True,
    )  # fmt: skip
    supervisor.groups.add(supervisors)

    number = BusinessNumber(**DEMO_NUMBER, is_sandbox=True, calling_settings=dict(ENABLED_CALLING_SETTINGS))
    number.full_clean()
    number.save()
    queue = Queue.objects.create(name=DEMO_QUEUE)
    queue.business_numbers.add(number)
    for username, first_name, last_name in DEMO_AGENTS:
        passwords[username] = get_random_string(14)
        user = user_model.objects.create_user(
            username=username, password=passwords[username], first_name=first_name, last_name=last_name
        )
        agent = Agent.objects.create(user=user)
        QueueMembership.objects.create(queue=queue, agent=agent, priority=1)
    return passwords
