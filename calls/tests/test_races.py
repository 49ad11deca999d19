"""Concurrency is the product: two agents never win one call, no call is lost, no counter drifts."""

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from calls import routing
from calls.models import Call, CallEvent, LiveCallCount
from calls.services import InboundCall, call_create_inbound
from calls.tests.factories import CallFactory
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(function):
    """Each thread plays one process; it hands its connection back to the pool when done."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return run


def setup_floor(*, calls: int, agents: int):
    number = BusinessNumberFactory()
    queue = QueueFactory(ring_timeout_s=60, max_wait_s=600, wrap_up_s=0, missed_offers_before_away=1000)
    queue.business_numbers.add(number)
    floor = [AgentFactory(status=Agent.Status.AVAILABLE) for _ in range(agents)]
    for agent in floor:
        QueueMembership.objects.create(queue=queue, agent=agent)
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=calls)
    waiting = [
        CallFactory(
            queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
        )
        for _ in range(calls)
    ]
    return number, queue, floor, waiting


def test_many_agents_accepting_one_call_exactly_one_wins():
    _, _, floor, [call] = setup_floor(calls=1, agents=6)
    routing.call_waits(call_id=call.pk)
    rung = Call.objects.get(pk=call.pk).offered_to_id
    attempts = [rung] * 4 + [agent.pk for agent in floor]  # four tabs of the rung agent, and everyone
    start = threading.Barrier(len(attempts))

    @in_thread
    def accept(agent_id):
        start.wait()
        return routing.offer_accept(agent_id=agent_id, call_id=call.pk) is not None

    with ThreadPoolExecutor(len(attempts)) as pool:
        wins = list(pool.map(accept, attempts))

    call.refresh_from_db()
    assert sum(wins) == 1
    assert (call.status, call.agent_id) == ("connected", rung)
    assert list(Agent.objects.filter(status=Agent.Status.ON_CALL).values_list("pk", flat=True)) == [rung]
    assert CallEvent.objects.filter(call=call, to_status="connected").count() == 1


def test_fifty_calls_ten_agents_racing_lose_nothing_and_book_no_one_twice():
    number, queue, floor, waiting = setup_floor(calls=50, agents=10)
    rng = random.Random(5)
    abandon = set(rng.sample([call.pk for call in waiting], 8))
    deadline = time.monotonic() + 60
    double_bookings = []

    @in_thread
    def calls_arrive(call_ids):
        for call_id in call_ids:
            routing.call_waits(call_id=call_id)
            connections.close_all()  # one webhook each

    @in_thread
    def customer_hangs_up():
        while (
            time.monotonic() < deadline
            and Call.objects.filter(pk__in=abandon).exclude(status="ended").exists()
        ):
            for call_id in abandon:
                if Call.objects.filter(pk=call_id, status__in=["queued", "offered"]).exists():
                    routing.call_finish(call_id=call_id, reason=Call.EndReason.ABANDONED)
            connections.close_all()
            time.sleep(0.01)

    @in_thread
    def agent_works(agent_id, seed):
        agent_rng = random.Random(seed)
        while time.monotonic() < deadline and Call.objects.exclude(status="ended").exists():
            connections.close_all()  # each action below is one request from the agent's browser
            offer = Call.objects.filter(offered_to_id=agent_id, status="offered").first()
            if offer is None:
                routing.route_queue(queue_id=queue.pk)
                time.sleep(0.005)
                continue
            if agent_rng.random() < 0.2:
                routing.offer_decline(agent_id=agent_id, call_id=offer.pk)
                continue
            if routing.offer_accept(agent_id=agent_id, call_id=offer.pk):
                live = Call.objects.filter(agent_id=agent_id, status="connected").count()
                if live > 1:  # 0 is fine: the customer may hang up the moment the agent accepts
                    double_bookings.append((agent_id, live))
                routing.call_finish(call_id=offer.pk, reason=Call.EndReason.COMPLETED)
                routing.wrap_up_end(agent_id=agent_id)

    call_ids = [call.pk for call in waiting]
    with ThreadPoolExecutor(14) as pool:
        jobs = [pool.submit(calls_arrive, call_ids[index::3]) for index in range(3)]
        jobs.append(pool.submit(customer_hangs_up))
        jobs += [pool.submit(agent_works, agent.pk, index) for index, agent in enumerate(floor)]
        for job in jobs:
            job.result()

    calls = list(Call.objects.all())
    assert {call.status for call in calls} == {"ended"}
    assert all(call.end_reason in ("completed", "abandoned") for call in calls)
    assert sum(call.end_reason == "completed" for call in calls) >= 50 - len(abandon)
    assert double_bookings == []
    assert LiveCallCount.objects.get(business_number=number).live == 0
    assert set(Agent.objects.values_list("status", flat=True)) == {"available"}
    for call in calls:
        assert CallEvent.objects.filter(call=call, to_status="ended").count() == 1


def test_capacity_counted_atomically_under_a_burst(settings):
    settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 5
    number = BusinessNumberFactory()
    queue = QueueFactory()
    queue.business_numbers.add(number)
    start = threading.Barrier(20)

    @in_thread
    def customer_calls(index):
        start.wait()
        call = call_create_inbound(
            inbound=InboundCall(
                wa_call_id=f"wacid.burst{index}",
                phone_number_id=number.phone_number_id,
                from_number=f"44770091{index:04d}",
                contact_name="",
                sdp_offer="v=0",
            ),
            queue_id=queue.pk,
            is_open=True,
        )
        return call.status

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(customer_calls, range(20)))
    for call in Call.objects.filter(status="queued"):
        routing.call_finish(call_id=call.pk, reason=Call.EndReason.ABANDONED)

    assert sorted(statuses) == ["ended"] * 15 + ["queued"] * 5
    assert Call.objects.filter(end_detail="capacity").count() == 15
    assert LiveCallCount.objects.get(business_number=number).live == 0


@pytest.mark.parametrize("way", ["rounds", "one call at a time"])
def test_callers_chatting_with_one_agent_routed_concurrently_never_give_them_two_calls(way):
    """Routers racing over callers who all chat with one agent: each agent is rung once, the
    chatting agent too. (A queue is routed in rounds on PostgreSQL; one call at a time where rows
    cannot be locked: each way races with its own kind.)"""
    from django.utils import timezone

    from messaging.models import Conversation
    from messaging.tests.factories import ConversationFactory

    number, queue, floor, waiting = setup_floor(calls=2, agents=3)
    chatting = floor[-1]
    QueueMembership.objects.filter(agent=chatting).update(priority=9)  # last in the queue's order
    for call in waiting:
        chat = ConversationFactory(
            contact=call.contact, business_number=number, state=Conversation.State.ASSIGNED, agent=chatting,
            waiting_since=None, assigned_at=timezone.now(),
        )  # fmt: skip
        Call.objects.filter(pk=call.pk).update(conversation=chat)
    start = threading.Barrier(8)

    @in_thread
    def route(_):
        start.wait()
        if way == "rounds":
            return routing.route_queue(queue_id=queue.pk)
        offered = []
        while (call_id := routing._offer_next(queue)) is not None:
            offered.append(call_id)
        return offered

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(route, range(8)))

    offered = list(Call.objects.filter(status=Call.Status.OFFERED).values_list("offered_to_id", flat=True))
    ringing = set(Agent.objects.filter(status=Agent.Status.RINGING).values_list("pk", flat=True))
    assert sorted(offered) == sorted({floor[0].pk, chatting.pk})  # both calls rung, nobody twice
    assert ringing == {floor[0].pk, chatting.pk}
