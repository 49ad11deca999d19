import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from agents.models import Agent, AgentStatusEvent
from agents.services import agent_set_status, demo_data_create
from agents.tests.factories import AgentFactory
from whatsapp.models import BusinessNumber


@pytest.mark.django_db
def test_agent_set_status_changes_presence_and_records_event(django_capture_on_commit_callbacks):
    agent = AgentFactory(status=Agent.Status.OFFLINE)

    with django_capture_on_commit_callbacks() as callbacks:
        agent_set_status(agent_id=agent.pk, status=Agent.Status.AVAILABLE)

    agent.refresh_from_db()
    assert agent.status == Agent.Status.AVAILABLE
    event = AgentStatusEvent.objects.get(agent=agent)
    assert (event.previous_status, event.status, event.changed_at) == (
        "offline",
        "available",
        agent.status_changed_at,
    )
    assert len(callbacks) == 4  # the presence frame, the wallboard, routing of chats and of calls


@pytest.mark.django_db
def test_agent_set_status_same_status_changes_nothing(django_capture_on_commit_callbacks):
    agent = AgentFactory(status=Agent.Status.AWAY)
    changed_at = agent.status_changed_at

    with django_capture_on_commit_callbacks() as callbacks:
        agent_set_status(agent_id=agent.pk, status=Agent.Status.AWAY)

    agent.refresh_from_db()
    assert agent.status_changed_at == changed_at
    assert AgentStatusEvent.objects.count() == 0
    assert callbacks == []


@pytest.mark.django_db
def test_agent_set_status_rejects_status_an_agent_cannot_choose(django_capture_on_commit_callbacks):
    agent = AgentFactory(status=Agent.Status.AWAY)

    with pytest.raises(ValidationError), django_capture_on_commit_callbacks() as callbacks:
        agent_set_status(agent_id=agent.pk, status="on_holiday")

    agent.refresh_from_db()
    assert agent.status == Agent.Status.AWAY
    assert AgentStatusEvent.objects.count() == 0
    assert callbacks == []


@pytest.mark.django_db
def test_demo_data_create_adds_an_administrator_to_a_demo_made_before_it():
    demo_data_create()
    get_user_model().objects.filter(username="admin").delete()

    passwords = demo_data_create()

    assert list(passwords) == ["admin"]
    assert Agent.objects.count() == 3
    assert BusinessNumber.objects.count() == 1


@pytest.mark.django_db
def test_demo_data_create_once():
    passwords = demo_data_create()
    again = demo_data_create()

    assert sorted(passwords) == ["admin", "agent1", "agent2", "agent3", "supervisor"]
    assert again == {}
    administrator = get_user_model().objects.get(username="admin")
    assert (administrator.is_superuser, administrator.is_staff) == (True, True)
    assert Agent.objects.count() == 3
    assert BusinessNumber.objects.get().is_sandbox is True
    number_queue = BusinessNumber.objects.get().queues.get()
    assert number_queue.members.count() == 3
    # The demo supervisor is in the supervisor group, which keeps exactly its own permissions.
    supervisor = get_user_model().objects.get(username="supervisor")
    assert list(supervisor.groups.values_list("name", flat=True)) == ["supervisor"]
    assert supervisor.has_perm("recordings.listen_recording")
    assert not supervisor.has_perm("recordings.view_raw_transcript") and not supervisor.has_perm(
        "recordings.add_erasure"
    )
