"""Concurrency in the inbox: one conversation is won by one agent, and a burst of customers and
agents never gives an agent more chats than their limit nor leaves a customer waiting while an
agent has a place free. Each thread plays one process, with its own database connection."""

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from calls.tests.test_races import in_thread
from messaging.conversations import conversation_claim, conversation_close
from messaging.models import Conversation
from messaging.tests.conftest import customer_writes
from messaging.tests.factories import ConversationFactory
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]


def setup_floor(*, agents: int, chat_limit: int = 3):
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    floor = [AgentFactory(status=Agent.Status.AVAILABLE, chat_limit=chat_limit) for _ in range(agents)]
    QueueMembership.objects.bulk_create([QueueMembership(queue=queue, agent=agent) for agent in floor])
    return number, queue, floor


def assigned_per_agent() -> Counter:
    return Counter(Conversation.objects.filter(state="assigned").values_list("agent_id", flat=True))


def test_many_agents_claiming_one_conversation_exactly_one_wins():
    number, queue, floor = setup_floor(agents=6)
    conversation = ConversationFactory(business_number=number, queue=queue)
    attempts = [floor[0].pk] * 3 + [agent.pk for agent in floor]  # three tabs of one agent, and everyone
    start = threading.Barrier(len(attempts))

    @in_thread
    def claim(agent_id):
        start.wait()
        return conversation_claim(conversation_id=conversation.pk, agent_id=agent_id)

    with ThreadPoolExecutor(len(attempts)) as pool:
        outcomes = list(pool.map(claim, attempts))

    [won] = [outcome for outcome in outcomes if outcome is not None]
    conversation.refresh_from_db()
    assert (conversation.state, conversation.agent_id) == ("assigned", won.agent_id)
    assert dict(Agent.objects.filter(chat_count__gt=0).values_list("pk", "chat_count")) == {won.agent_id: 1}


def test_a_burst_of_customers_and_agents_never_exceeds_a_chat_limit_nor_leaves_a_place_free():
    _, _, floor = setup_floor(agents=8, chat_limit=3)  # 24 places
    customers = [f"4477009{index:05d}" for index in range(30)]
    limits = {agent.pk: agent.chat_limit for agent in floor}
    writing_done, watching_done = threading.Event(), threading.Event()
    excesses: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60

    @in_thread
    def customer_writes_in(wa_id):
        customer_writes(wa_id, f"wamid.{wa_id}")  # opens a conversation, routed after commit

    @in_thread
    def agent_claims_from_the_waiting_list(agent_id):
        while time.monotonic() < deadline and not writing_done.is_set():
            connections.close_all()  # each claim is one request from the agent's browser
            oldest = (
                Conversation.objects.filter(state="waiting")
                .order_by("waiting_since", "pk")
                .values_list("pk", flat=True)
                .first()
            )
            if oldest is None:
                time.sleep(0.002)
                continue
            try:
                conversation_claim(conversation_id=oldest, agent_id=agent_id)
            except ValidationError:
                time.sleep(0.002)  # at the limit: the next close frees a place

    @in_thread
    def supervisor_watches():
        while not watching_done.is_set():
            for agent_id, held in assigned_per_agent().items():
                if held > limits[agent_id]:
                    excesses.append((agent_id, held))
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        watcher = pool.submit(supervisor_watches)
        claimers = [pool.submit(agent_claims_from_the_waiting_list, agent.pk) for agent in floor[:2]]
        list(pool.map(customer_writes_in, customers))
        writing_done.set()
        for claimer in claimers:
            claimer.result()

        full = assigned_per_agent()
        still_waiting = set(Conversation.objects.filter(state="waiting").values_list("pk", flat=True))
        closes = [  # each agent closes one chat at once: 8 places free for the 6 still waiting
            pool.submit(
                in_thread(conversation_close),
                conversation_id=Conversation.objects.filter(state="assigned", agent=agent).values_list(
                    "pk", flat=True
                )[0],
                agent_id=agent.pk,
            )
            for agent in floor
        ]
        for close in closes:
            assert close.result() is not None
        watching_done.set()
        watcher.result()

    held = assigned_per_agent()
    counters = dict(Agent.objects.values_list("pk", "chat_count"))
    assert excesses == []
    assert (Conversation.objects.count(), full, len(still_waiting)) == (
        30,
        {agent.pk: 3 for agent in floor},
        6,
    )
    assert set(Conversation.objects.filter(state="assigned").values_list("pk", flat=True)) >= still_waiting
    assert not Conversation.objects.filter(state="waiting").exists()
    assert (sum(held.values()), max(held.values())) == (22, 3)
    assert counters == {agent.pk: held[agent.pk] for agent in floor}
