import copy
import json
import time

import pytest

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from messaging.tests.factories import ConversationFactory
from whatsapp.services import webhook_delivery_receive
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory


@pytest.fixture
def inbox_number(db):
    """The number Meta's test payloads write to."""
    return BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)


@pytest.fixture
def inbox_queue(inbox_number):
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(inbox_number)
    return queue


@pytest.fixture
def make_agent(inbox_queue):
    """An agent of the inbox's queue (available unless told), with the default chat limit."""

    def make(*, status: str = Agent.Status.AVAILABLE, priority: int = 1, queue=None, **fields) -> Agent:
        agent = AgentFactory(status=status, **fields)
        QueueMembership.objects.create(queue=queue or inbox_queue, agent=agent, priority=priority)
        return agent

    return make


@pytest.fixture
def make_conversation(inbox_number, inbox_queue):
    """A conversation of the inbox's number, waiting in its queue unless told."""

    def make(**fields):
        return ConversationFactory(business_number=inbox_number, queue=inbox_queue, **fields)

    return make


def customer_writes(customer: str, message_id: str, text: str = "Hello") -> None:
    """The customer's text reaches the inbox's number now, as Meta delivers it (stored and handled
    as the webhook view does, in one transaction)."""
    payload = copy.deepcopy(payloads.text_message(message_id, body=text))
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from"] = value["contacts"][0]["wa_id"] = customer
    value["messages"][0]["timestamp"] = str(int(time.time()))
    webhook_delivery_receive(body=json.dumps(payload).encode())
