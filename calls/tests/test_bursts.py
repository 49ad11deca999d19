"""A burst of callers (a campaign's customers all tapping Call at once), received together: what
each call would get alone, in a few statements, and still no agent booked twice under a race."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.db.models import F
from django.utils import timezone

from agents.models import Agent, AgentStatusEvent
from agents.tests.factories import AgentFactory
from calls import routing, services
from calls.models import Call, CallEvent, LiveCallCount
from calls.selectors import previous_calls_of
from calls.services import capacity_claim_many, capacity_lock_for_events
from calls.tests.factories import CallFactory, ContactFactory
from calls.tests.test_races import in_thread, setup_floor
from core.realtime import flush
from core.tests.test_realtime import listen, receive_or_none
from messaging.models import Charge
from whatsapp import dispatch
from whatsapp.events import parse_delivery
from whatsapp.models import WebhookEvent
from whatsapp.services import (
    webhook_deliveries_receive,
    webhook_deliveries_store,
    webhook_events_handle_claimed,
)
from whatsapp.tests import payloads
from whatsapp.tests.test_intake import body_of


def connects(count: int, *, first: int = 0) -> list[bytes]:
    return [
        body_of(payloads.user_call_connect(f"wacid.burst-{index}", **{"from": f"4477009{index:05d}"}))
        for index in range(first, first + count)
    ]


@pytest.mark.django_db
def test_a_burst_queues_every_call_and_rings_one_free_agent_each_longest_idle_first(
    queue, make_agent, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    now = timezone.now()
    agents = [make_agent(status_changed_at=now - timedelta(minutes=minutes)) for minutes in range(1, 21)]

    with django_capture_on_commit_callbacks(execute=False) as callbacks, django_assert_max_num_queries(34):
        webhook_deliveries_receive(bodies=connects(30))

    calls = list(Call.objects.order_by("pk"))
    offered = [call for call in calls if call.status == Call.Status.OFFERED]
    assert [call.status for call in calls] == [Call.Status.OFFERED] * 20 + [Call.Status.QUEUED] * 10
    # The first caller rings the agent idle the longest, and so on down the floor.
    assert [call.offered_to_id for call in offered] == [agent.pk for agent in reversed(agents)]
    assert set(Agent.objects.values_list("status", flat=True)) == {Agent.Status.RINGING}
    assert AgentStatusEvent.objects.filter(status=Agent.Status.RINGING).count() == 20
    assert [event.to_status for event in CallEvent.objects.filter(call=offered[0]).order_by("pk")] == [
        Call.Status.RINGING,
        Call.Status.QUEUED,
        Call.Status.OFFERED,
    ]
    assert LiveCallCount.objects.get().live == 30
    assert {call.contact.wa_id for call in calls} == {f"4477009{index:05d}" for index in range(30)}
    # 30 media hand-offs, 20 rings (each with the agent's new presence), wallboard nudges, and one
    # timer per kind.
    assert 50 <= len(callbacks) <= 56


@pytest.mark.django_db(transaction=True)
def test_a_burst_rings_each_agent_with_one_message_its_status_then_the_call(queue, make_agent):
    agents = [make_agent() for _ in range(3)]
    listening = [async_to_sync(listen)(f"agent.{agent.pk}") for agent in agents]

    webhook_deliveries_receive(bodies=connects(3))
    flush()

    for agent, (layer, channel) in zip(agents, listening, strict=True):
        message = async_to_sync(receive_or_none)(layer, channel)
        assert message["type"] == "agent.frames"
        status, ring = message["frames"]
        assert (status["type"], status["agent_id"], status["status"]) == ("agent.status", agent.pk, "ringing")
        assert (ring["type"], ring["call_id"]) == (
            "call.offered",
            Call.objects.get(offered_to_id=agent.pk).pk,
        )
        assert async_to_sync(receive_or_none)(layer, channel, 0.2) is None


@pytest.mark.django_db
def test_a_burst_beyond_capacity_rejects_the_rest_each_with_its_reason(queue, make_agent, settings):
    settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 5
    make_agent()

    webhook_deliveries_receive(bodies=connects(8))

    statuses = list(Call.objects.order_by("pk").values_list("status", "end_detail"))
    assert statuses == [("offered", "")] + [("queued", "")] * 4 + [("ended", "capacity")] * 3
    assert LiveCallCount.objects.get().live == 5


@pytest.mark.django_db
def test_a_burst_redelivered_creates_nothing_new(queue, make_agent):
    make_agent()
    webhook_deliveries_receive(bodies=connects(3))

    webhook_deliveries_receive(bodies=connects(3) + connects(2, first=3))

    assert Call.objects.count() == 5
    assert LiveCallCount.objects.get().live == 5


@pytest.mark.django_db
def test_a_call_just_missed_by_an_agent_goes_to_another_while_that_agent_takes_the_next(queue, make_agent):
    first, second = make_agent(), make_agent()
    webhook_deliveries_receive(bodies=connects(1))
    declined = Call.objects.get()
    routing.offer_decline(agent_id=declined.offered_to_id, call_id=declined.pk)
    Agent.objects.update(status=Agent.Status.AVAILABLE)
    Call.objects.filter(status=Call.Status.OFFERED).update(status=Call.Status.QUEUED, offered_to=None)
    missed_by = CallEvent.objects.filter(call=declined, to_status="queued").latest("pk").agent_id

    webhook_deliveries_receive(bodies=connects(1, first=1))

    newest = Call.objects.exclude(pk=declined.pk).get()
    declined.refresh_from_db()
    assert declined.offered_to_id == ({first.pk, second.pk} - {missed_by}).pop()
    assert newest.offered_to_id == missed_by


@pytest.mark.django_db
def test_the_callers_last_calls_in_two_queries_and_first_time_callers_in_one(django_assert_num_queries):
    regular, newcomers = ContactFactory(), [ContactFactory(), ContactFactory()]
    now = timezone.now()
    ended = {"contact": regular, "status": Call.Status.ENDED, "end_reason": Call.EndReason.COMPLETED}
    ended["agent"] = AgentFactory()
    CallFactory(**ended, ended_at=now - timedelta(days=3), wrap_up_notes="old")
    CallFactory(**ended, ended_at=now - timedelta(days=1), wrap_up_notes="newest")
    CallFactory(contact=newcomers[0], status=Call.Status.ENDED, end_reason=Call.EndReason.ABANDONED)

    with django_assert_num_queries(2):
        last = previous_calls_of(contact_ids={regular.pk, *(newcomer.pk for newcomer in newcomers)})
    with django_assert_num_queries(1):
        nothing = previous_calls_of(contact_ids={newcomer.pk for newcomer in newcomers})

    assert list(last) == [regular.pk]
    assert last[regular.pk].wrap_up_notes == "newest"
    assert nothing == {}


@pytest.mark.django_db(transaction=True)
def test_slots_claimed_many_at_a_time_never_exceed_the_cap(settings):
    settings.MAX_CONCURRENT_CALLS_PER_DIRECTION = 50
    number, _, _, _ = setup_floor(calls=0, agents=0)
    start = threading.Barrier(8)

    @in_thread
    def claim(count):
        start.wait()
        return capacity_claim_many(business_number_id=number.pk, direction="inbound", count=count)

    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(claim, [9, 9, 9, 9, 9, 9, 9, 9]))

    assert sum(taken) == 50
    assert LiveCallCount.objects.get(business_number=number).live == 50


@pytest.mark.skipif(connection.vendor != "postgresql", reason="rounds lock rows on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_routing_rounds_racing_on_postgresql_book_no_agent_twice():
    _, queue, floor, waiting = setup_floor(calls=60, agents=25)
    start = threading.Barrier(4)

    @in_thread
    def route():
        start.wait()
        return routing.route_queue(queue_id=queue.pk)

    with ThreadPoolExecutor(4) as pool:
        offered = [
            call_id for round_offered in pool.map(lambda _: route(), range(4)) for call_id in round_offered
        ]

    assert len(offered) == len(set(offered)) == 25
    rung = list(Call.objects.filter(status=Call.Status.OFFERED).values_list("offered_to_id", flat=True))
    assert sorted(rung) == sorted(agent.pk for agent in floor)
    assert Agent.objects.filter(status=Agent.Status.RINGING).count() == 25
    assert CallEvent.objects.filter(to_status=Call.Status.OFFERED).count() == 25
    # The 25 longest-waiting calls were the ones rung.
    assert set(offered) == {call.pk for call in waiting[:25]}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and deadlocks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_call_connecting_in_one_worker_while_a_batch_ends_it_in_another_does_not_deadlock(queue, caplog):
    """Meta's connect and terminate for one call can reach two web workers at once, one of them
    in the middle of a batch that holds the number's live-call counter."""
    start = threading.Barrier(2)

    @in_thread
    def batch(round_):
        bodies = [body_of(payloads.user_call_connect(f"wacid.r{round_}-{index}")) for index in range(10)]
        start.wait()
        return webhook_deliveries_receive(
            bodies=[*bodies, body_of(payloads.call_terminate(f"wacid.r{round_}"))]
        )

    @in_thread
    def alone(round_):
        start.wait()
        return webhook_deliveries_receive(bodies=[body_of(payloads.user_call_connect(f"wacid.r{round_}"))])

    for round_ in range(8):
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(batch, round_), pool.submit(alone, round_)]
            outcomes = [outcome for job in jobs for outcome in job.result()]
        assert all(outcome.is_accepted for outcome in outcomes)

    assert "deadlock" not in caplog.text and "failed as one" not in caplog.text
    assert Call.objects.filter(wa_call_id__regex=r"^wacid\.r[0-9]$", status=Call.Status.ENDED).count() == 8
    assert LiveCallCount.objects.get().live == Call.objects.exclude(status=Call.Status.ENDED).count()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no row locks to take")
@pytest.mark.django_db
def test_a_batch_locks_its_numbers_counters_in_one_statement_once_they_exist(
    queue, django_assert_num_queries
):
    events = [
        parse_delivery(payloads.user_call_connect(f"wacid.lock-{index}")).events[0] for index in range(3)
    ]
    capacity_lock_for_events(events)  # the number's first call: its counter is created
    assert LiveCallCount.objects.filter(direction=Call.Direction.INBOUND).count() == 1

    with django_assert_num_queries(1):
        capacity_lock_for_events(events)


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 3])
def test_after_commit_the_rings_leave_before_the_timers_are_sent_to_the_broker(
    queue, make_agent, django_capture_on_commit_callbacks, monkeypatch, count
):
    for _ in range(count):
        make_agent()
    order = []
    monkeypatch.setattr(
        "core.realtime._post", lambda is_group, target, message, level: order.append(message["type"])
    )
    for task in ("end_overdue_wait", "end_overdue_waits", "expire_offer", "expire_offers"):
        monkeypatch.setattr(
            f"calls.tasks.{task}.apply_async", lambda task=task, **options: order.append(task)
        )

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_receive(bodies=connects(count), take_more=lambda: [])

    assert order.count("agent.frames") == count
    last_ring = len(order) - order[::-1].index("agent.frames")
    assert {"end_overdue_wait", "end_overdue_waits"} & set(order[last_ring:])
    assert not {"end_overdue_wait", "end_overdue_waits"} & set(order[:last_ring])


@pytest.mark.django_db
def test_callers_hanging_up_between_each_others_calls_still_ring_as_one_burst(queue, make_agent, monkeypatch):
    """Connects and terminates of different calls arrive interleaved: the connects still go to the
    handler of many together, and each call's own events keep their order (a terminate delivered
    before its connect still makes the connect do nothing)."""
    make_agent()
    bursts = []
    connects_received = dispatch.many_handler_for("call.connect")

    def counted(events):
        bursts.append([event.call_id for event in events])
        connects_received(events)

    monkeypatch.setitem(dispatch._many_handlers, "call.connect", counted)
    bodies = [body_of(payloads.call_terminate("wacid.early", answered=False))]
    for index in range(3):
        bodies += connects(1, first=index)
        bodies.append(body_of(payloads.call_terminate(f"wacid.burst-{index}", answered=False)))
    bodies += [body_of(payloads.user_call_connect("wacid.early"))]

    webhook_deliveries_receive(bodies=bodies)

    # (The late connect alone, after its terminate, also takes the bulk path, as one event.)
    assert bursts == [["wacid.burst-0", "wacid.burst-1", "wacid.burst-2"], ["wacid.early"]]
    assert dict(Call.objects.values_list("wa_call_id", "status")) == {
        "wacid.early": Call.Status.ENDED,
        **{f"wacid.burst-{index}": Call.Status.ENDED for index in range(3)},
    }
    assert Agent.objects.get().status == Agent.Status.AVAILABLE
    assert LiveCallCount.objects.get().live == 0


def terminates(count: int, *, first: int = 0, answered: bool = False) -> list[bytes]:
    return [
        body_of(payloads.call_terminate(f"wacid.burst-{index}", answered=answered))
        for index in range(first, first + count)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [5, 30])
def test_terminates_received_together_end_their_calls_in_as_many_statements_however_many(
    queue, count, django_assert_max_num_queries
):
    webhook_deliveries_receive(bodies=connects(count))  # no agent: every call waits in the queue

    with django_assert_max_num_queries(20):
        webhook_deliveries_receive(bodies=terminates(count, answered=True))

    assert set(Call.objects.values_list("status", "end_reason")) == {(Call.Status.ENDED, "abandoned")}
    assert CallEvent.objects.filter(to_status=Call.Status.ENDED).count() == count
    assert LiveCallCount.objects.get().live == 0
    assert Charge.objects.filter(kind=Charge.Kind.CALL, duration_seconds=120).count() == count


@pytest.mark.django_db
def test_terminates_received_together_end_each_call_as_it_would_be_ended_alone(
    queue, make_agent, django_capture_on_commit_callbacks
):
    ringing, talking = make_agent(), make_agent()
    webhook_deliveries_receive(bodies=connects(3))
    on_call = Call.objects.get(offered_to=talking)
    routing.offer_accept(agent_id=talking.pk, call_id=on_call.pk)
    Call.objects.filter(pk=on_call.pk).update(status=Call.Status.CONNECTED, connected_at=timezone.now())
    bodies = [
        *terminates(2, answered=True),  # a ringing call and the connected one, in some order
        *terminates(1, first=2),  # the call still waiting in the queue
        terminates(1, first=2)[0].replace(b'"COMPLETED"', b'"FAILED"'),  # the same call's again
        *terminates(1, first=9),  # a call whose connect has not come yet
    ]

    with django_capture_on_commit_callbacks(execute=False):
        outcomes = webhook_deliveries_receive(bodies=bodies)

    assert all(outcome.is_accepted for outcome in outcomes)
    ended = {call.wa_call_id: call for call in Call.objects.all()}
    assert {key: call.end_reason for key, call in ended.items()} == {
        "wacid.burst-0": "abandoned",
        "wacid.burst-1": "abandoned",
        "wacid.burst-2": "abandoned",
        "wacid.burst-9": "abandoned",
    } | {on_call.wa_call_id: "completed"}
    assert set(ended.values()) == set(Call.objects.filter(status=Call.Status.ENDED))
    assert CallEvent.objects.filter(to_status=Call.Status.ENDED).count() == 4
    ringing.refresh_from_db()
    talking.refresh_from_db()
    assert (ringing.status, talking.status) == (Agent.Status.AVAILABLE, Agent.Status.WRAP_UP)
    assert LiveCallCount.objects.get().live == 0
    # Meta's own durations of the two answered calls: their inbound minutes, free.
    charges = Charge.objects.filter(kind=Charge.Kind.CALL).order_by("reference")
    assert [(charge.reference, charge.duration_seconds) for charge in charges] == [
        ("wacid.burst-0", 120),
        ("wacid.burst-1", 120),
    ]


@pytest.mark.django_db
def test_a_call_that_moves_while_its_terminate_is_received_with_others_is_still_ended_once(
    queue, make_agent, monkeypatch
):
    """Should a call move between the batch's read and its update (the embedded SQLite locks no
    rows), every call of the batch is ended on its own instead."""
    make_agent()
    webhook_deliveries_receive(bodies=connects(3))
    offered = Call.objects.get(status=Call.Status.OFFERED)
    ending_of = services._ending_of

    moves = [offered.pk]

    def another_agent_declines_meanwhile(call, reason):
        if call.pk in moves:
            moves.remove(call.pk)
            Call.objects.filter(pk=call.pk).update(offer_count=F("offer_count") + 1)
        return ending_of(call, reason)

    monkeypatch.setattr(services, "_ending_of", another_agent_declines_meanwhile)

    webhook_deliveries_receive(bodies=terminates(3))

    assert Call.objects.filter(status=Call.Status.ENDED).count() == 3
    assert CallEvent.objects.filter(to_status=Call.Status.ENDED).count() == 3
    assert set(Agent.objects.values_list("status", flat=True)) == {Agent.Status.AVAILABLE}
    assert LiveCallCount.objects.get().live == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_agents_accepting_while_their_calls_terminates_are_received_together_end_consistent():
    """Each call is either taken then completed (its agent in wrap-up) or ended ringing (its agent
    free again): never an agent on a call that ended, never a slot kept."""
    number, _, _, waiting = setup_floor(calls=12, agents=12)
    routing.route_queue(queue_id=waiting[0].queue_id)
    offered = {call.pk: call.offered_to_id for call in Call.objects.filter(status=Call.Status.OFFERED)}
    assert len(offered) == 12
    start = threading.Barrier(2)

    @in_thread
    def accept_all():
        start.wait()
        return [
            routing.offer_accept(agent_id=agent_id, call_id=call_id) for call_id, agent_id in offered.items()
        ]

    @in_thread
    def terminate_all():
        bodies = [body_of(payloads.call_terminate(call.wa_call_id, answered=False)) for call in waiting]
        start.wait()
        return webhook_deliveries_receive(bodies=bodies)

    with ThreadPoolExecutor(2) as pool:
        accepted, received = pool.submit(accept_all), pool.submit(terminate_all)
        won = [call for call in accepted.result() if call is not None]
        assert all(outcome.is_accepted for outcome in received.result())

    calls = {call.pk: call for call in Call.objects.all()}
    assert {call.status for call in calls.values()} == {Call.Status.ENDED}
    statuses = dict(Agent.objects.values_list("pk", "status"))
    for call_id, agent_id in offered.items():
        taken = calls[call_id].agent_id == agent_id
        assert statuses[agent_id] == (Agent.Status.WRAP_UP if taken else Agent.Status.AVAILABLE)
    assert {call.pk for call in won} == {pk for pk, call in calls.items() if call.agent_id is not None}
    assert LiveCallCount.objects.get(business_number=number).live == 0


@pytest.mark.django_db
def test_a_burst_stored_first_and_handled_after_rings_as_one_received_at_once(
    queue, make_agent, django_assert_max_num_queries
):
    # The web server's intake answers once a batch is stored, then handles its calls' events.
    now = timezone.now()
    agents = [make_agent(status_changed_at=now - timedelta(minutes=minutes)) for minutes in range(1, 4)]
    with django_assert_max_num_queries(6):
        _, claimed = webhook_deliveries_store(bodies=connects(5))
    assert not Call.objects.exists()

    with django_assert_max_num_queries(34):
        assert webhook_events_handle_claimed(claimed) == 5

    calls = list(Call.objects.order_by("pk"))
    assert [call.status for call in calls] == [Call.Status.OFFERED] * 3 + [Call.Status.QUEUED] * 2
    assert [call.offered_to_id for call in calls[:3]] == [agent.pk for agent in reversed(agents)]
    assert LiveCallCount.objects.get().live == 5
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookEvent.Status.HANDLED}
