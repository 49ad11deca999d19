import pytest

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from whatsapp.tests.factories import BusinessNumberFactory


@pytest.fixture
def number(db):
    return BusinessNumberFactory(phone_number_id="436666719526789", display_phone_number="+1 317-555-1399")


@pytest.fixture
def queue(number):
    queue = QueueFactory(
        name="Care", ring_timeout_s=20, max_wait_s=180, wrap_up_s=30, missed_offers_before_away=2
    )
    queue.business_numbers.add(number)
    return queue


@pytest.fixture
def make_agent(queue):
    def make(*, status: str = Agent.Status.AVAILABLE, priority: int = 1, **fields) -> Agent:
        agent = AgentFactory(status=status, **fields)
        QueueMembership.objects.create(queue=queue, agent=agent, priority=priority)
        return agent

    return make
