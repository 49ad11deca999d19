"""Concurrency of the assistant: two workers answering one conversation at once send one answer,
and an agent stepping in while the assistant answers leaves the conversation the agent's. Each thread
plays one process, with its own database connection."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from assistant.demo import demo_assistant_create
from assistant.services import assistant_reply
from calls.tests.test_races import in_thread
from messaging.conversations import conversation_claim
from messaging.models import Conversation, Message
from messaging.tests.conftest import customer_writes
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]


@pytest.fixture
def queue():
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    demo_assistant_create(phone_number_id=number.phone_number_id)
    queue = QueueFactory(name="Sales")
    queue.business_numbers.add(number)
    return queue


def test_workers_answering_one_message_at_once_send_one_answer(queue):
    customer_writes("447700900123", "wamid.race1", text="How much does the Pro plan cost?")
    conversation, message = Conversation.objects.get(), Message.objects.get()
    start = threading.Barrier(4)

    @in_thread
    def answer(_):
        start.wait()
        return assistant_reply(conversation_id=conversation.pk, message_id=message.pk)

    with ThreadPoolExecutor(4) as pool:
        replies = [reply for reply in pool.map(answer, range(4)) if reply is not None]

    assert len(replies) == 1
    assert Message.objects.filter(direction="outbound", is_from_assistant=True).count() == 1


def test_an_agent_stepping_in_while_the_assistant_answers_keeps_the_conversation(queue):
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    for round_ in range(5):
        customer_writes(f"44770090{round_:04d}", f"wamid.step{round_}", text="I want to talk to someone")
    conversations = list(Conversation.objects.order_by("pk"))
    start = threading.Barrier(2 * len(conversations))

    @in_thread
    def act(work):
        kind, conversation = work
        start.wait()
        if kind == "assistant":
            message = Message.objects.filter(contact_id=conversation.contact_id).get()
            return assistant_reply(conversation_id=conversation.pk, message_id=message.pk)
        return conversation_claim(conversation_id=conversation.pk, agent_id=agent.pk)

    work = [(kind, conversation) for conversation in conversations for kind in ("assistant", "agent")]
    agent.chat_limit = len(conversations)
    agent.save()
    with ThreadPoolExecutor(len(work)) as pool:
        list(pool.map(act, work))

    for conversation in conversations:
        conversation.refresh_from_db()
        # Either the agent stepped in first (the assistant then said nothing), or the assistant handed
        # it over first (the claim, reading the assistant's state, lost): assigned to the agent or
        # waiting for the queue, never held by two, and the agent's chat count true.
        assert (conversation.state, conversation.agent_id) in {("assigned", agent.pk), ("waiting", None)}
        answered = Message.objects.filter(contact_id=conversation.contact_id, direction="outbound").count()
        assert answered <= 1
    agent.refresh_from_db()
    assert agent.chat_count == Conversation.objects.filter(state="assigned", agent=agent).count()
