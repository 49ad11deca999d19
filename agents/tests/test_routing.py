"""The ACD's matching: what an agent can take now, and a chat place claimed only under the limit."""

import pytest

from agents.models import Agent
from agents.routing import Capacity, Work, agent_chat_release, agent_claim, can_take, capacity_of
from agents.tests.factories import AgentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


@pytest.mark.parametrize("status", Agent.Status.values)
def test_what_an_agent_can_take_is_read_as_it_is_claimed(status):
    free, full = AgentFactory(status=status, chat_count=1), AgentFactory(status=status, chat_count=3)

    capacities = (capacity_of(free), capacity_of(full))

    is_available = status == Agent.Status.AVAILABLE
    assert capacities == (
        Capacity(calls=int(is_available), chats=2 * is_available),
        Capacity(int(is_available), 0),
    )
    for agent, capacity in zip((free, full), capacities, strict=True):
        assert Agent.objects.filter(can_take(Work.CALL), pk=agent.pk).exists() == (capacity.calls > 0)
        assert Agent.objects.filter(can_take(Work.CHAT), pk=agent.pk).exists() == (capacity.chats > 0)


def test_a_chat_place_is_claimed_only_under_the_limit_and_given_back_once():
    agent = AgentFactory(status=Agent.Status.AVAILABLE, chat_limit=2)

    claims = [agent_claim(agent_id=agent.pk, work=Work.CHAT) for _ in range(3)]
    releases = [agent_chat_release(agent_id=agent.pk) for _ in range(3)]

    agent.refresh_from_db()
    assert (claims, releases, agent.chat_count, agent.status) == (
        [True, True, False],
        [True, True, False],
        0,
        "available",
    )
