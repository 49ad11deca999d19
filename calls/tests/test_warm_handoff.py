"""The warm handoff: a customer who chatted calls in; the call is linked to the chat, the ring card
shows what the assistant learnt, the agent reads the chat during the call, and the agent who has
the chat is offered the call first."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory
from assistant.models import Lead
from calls import routing
from calls.models import Call
from calls.selectors import conversations_of_callers, resume_frames_for_agent, ring_frame, ring_frames
from calls.services import InboundCall, call_record_early_terminate, calls_queue_inbound_many
from calls.tests.factories import CallFactory, ContactFactory
from core import events
from messaging.models import Conversation
from messaging.tests.factories import ConversationFactory
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


def closed(*, contact, number, hours_ago: float) -> Conversation:
    at = timezone.now() - timedelta(hours=hours_ago)
    return ConversationFactory(
        contact=contact, business_number=number, state=Conversation.State.CLOSED, closed_at=at,
        waiting_since=None, last_message_at=at,
    )  # fmt: skip


# --- The call is linked to the caller's chat ---------------------------------------------


def test_an_inbound_call_is_linked_to_the_callers_open_conversation_with_the_number(client, queue, number):
    customer = ContactFactory(wa_id=payloads.CUSTOMER)
    closed(contact=customer, number=number, hours_ago=1)
    ConversationFactory(contact=customer, business_number=BusinessNumberFactory())  # another number's
    chat = ConversationFactory(contact=customer, business_number=number, state=Conversation.State.ASSISTANT)

    post_webhook(client, payloads.user_call_connect())

    assert Call.objects.get().conversation == chat


def test_without_an_open_one_the_call_is_linked_to_the_one_closed_last_within_a_day(client, queue, number):
    customer = ContactFactory(wa_id=payloads.CUSTOMER)
    closed(contact=customer, number=number, hours_ago=5)
    last = closed(contact=customer, number=number, hours_ago=2)

    post_webhook(client, payloads.user_call_connect())

    assert Call.objects.get().conversation == last


def test_a_chat_closed_more_than_a_day_ago_is_not_linked(client, queue, number):
    customer = ContactFactory(wa_id=payloads.CUSTOMER)
    closed(contact=customer, number=number, hours_ago=25)

    post_webhook(client, payloads.user_call_connect())

    assert Call.objects.get().conversation is None


def test_a_call_whose_terminate_came_first_is_linked_too(queue, number):
    customer = ContactFactory(wa_id=payloads.CUSTOMER)
    chat = ConversationFactory(contact=customer, business_number=number)

    call = call_record_early_terminate(
        wa_call_id="wacid.EARLY", phone_number_id=number.phone_number_id, from_number=customer.wa_id,
        reason=Call.EndReason.ABANDONED,
    )  # fmt: skip

    assert call.conversation == chat


def test_calls_queued_together_are_each_linked_with_one_query(queue, number):
    chatted, silent = ContactFactory(), ContactFactory()
    chat = ConversationFactory(contact=chatted, business_number=number)
    inbounds = [
        InboundCall(
            wa_call_id=f"wacid.HANDOFF{index}",
            phone_number_id=number.phone_number_id,
            from_number=contact.wa_id,
            contact_name=contact.name,
            sdp_offer=payloads.SDP_OFFER,
        )
        for index, contact in enumerate([chatted, silent])
    ]

    with CaptureQueriesContext(connection) as queries:
        linked = conversations_of_callers(
            business_number_id=number.pk, contact_ids={chatted.pk, silent.pk}, at=timezone.now()
        )
    calls, _ = calls_queue_inbound_many(inbounds=inbounds, queue_id=queue.pk)

    assert (linked, len(queries)) == ({chatted.pk: chat.pk}, 1)
    assert {call.contact_id: call.conversation_id for call in calls} == {chatted.pk: chat.pk, silent.pk: None}


def test_the_crms_call_events_carry_the_conversation(
    client, queue, number, monkeypatch, django_capture_on_commit_callbacks
):
    heard = []
    sink = (lambda kind, _, data: heard.append((kind, data)), lambda *_: True)
    monkeypatch.setattr(events, "_sinks", [sink])
    chat = ConversationFactory(contact=ContactFactory(wa_id=payloads.CUSTOMER), business_number=number)

    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, payloads.user_call_connect())
    with django_capture_on_commit_callbacks(execute=True):
        routing.call_finish(call_id=Call.objects.get().pk, reason=Call.EndReason.ABANDONED)

    assert [(kind, data["conversation_id"]) for kind, data in heard] == [
        ("call.ringing", chat.pk),
        ("call.ended", chat.pk),
    ]


# --- The ring card shows the chat --------------------------------------------------------

SAID = "Card 4111 1111 1111 1111, mail jo@example.com"


def agent_of(queue, *permissions: str) -> Agent:
    agent = AgentFactory()
    QueueMembership.objects.create(queue=queue, agent=agent)
    agent.user.user_permissions.add(*Permission.objects.filter(codename__in=permissions))
    return agent


def call_after_chat(*, queue, number, lead: bool = True) -> Call:
    contact = ContactFactory(country="GB")
    chat = ConversationFactory(contact=contact, business_number=number, state=Conversation.State.ASSISTANT)
    if lead:
        Lead.objects.create(
            conversation=chat, score=85, sentiment=Lead.Sentiment.ANGRY, intent="upgrade",
            summary=f"Wants the enterprise plan this week. {SAID}",
            fields={"timeline": "this week", "plan": "enterprise", "team_size": "25", "budget": "",
                    "billing_contact": "jo@example.com"},
        )  # fmt: skip
    return CallFactory(contact=contact, business_number=number, queue=queue, conversation=chat)


def test_the_ring_shows_the_chat_the_call_came_from_masked_for_the_agent(queue, number):
    agent = agent_of(queue)
    ringing = call_after_chat(queue=queue, number=number)

    frame = ring_frame(call=ringing, queue=queue, agent_id=agent.pk)

    chat_id = ringing.conversation_id
    assert frame["chat"] == {
        "conversation_id": chat_id,
        "url": f"/inbox/{chat_id}/",
        "thread_url": f"/inbox/{chat_id}/thread/",
        "state": "assistant",
        "summary": "Wants the enterprise plan this week. Card [card], mail [email]",
        "fields": [
            {"name": "plan", "label": "Plan", "value": "enterprise"},
            {"name": "team_size", "label": "Team size", "value": "25"},
            {"name": "timeline", "label": "Timeline", "value": "this week"},
            {"name": "billing_contact", "label": "Billing contact", "value": "[email]"},
        ],
        "score": 85,
        "sentiment": "angry",
    }


def test_an_agent_who_reads_raw_text_sees_the_lead_as_written(queue, number):
    agent = agent_of(queue, "view_raw_transcript")
    ringing = call_after_chat(queue=queue, number=number)

    chat = ring_frame(call=ringing, queue=queue, agent_id=agent.pk)["chat"]

    assert (chat["summary"], chat["fields"][-1]["value"]) == (
        f"Wants the enterprise plan this week. {SAID}",
        "jo@example.com",
    )


def test_a_chat_without_a_lead_is_linked_with_nothing_learnt(queue, number):
    ringing = call_after_chat(queue=queue, number=number, lead=False)

    chat = ring_frame(call=ringing, queue=queue, agent_id=agent_of(queue).pk)["chat"]

    assert (chat["conversation_id"], chat["summary"], chat["fields"], chat["score"]) == (
        ringing.conversation_id,
        "",
        [],
        None,
    )


def test_the_chat_is_not_shown_to_an_agent_who_may_not_see_it(queue, number):
    outsider = AgentFactory()  # serves none of the call's numbers
    ringing = call_after_chat(queue=queue, number=number)

    frame = ring_frame(call=ringing, queue=queue, agent_id=outsider.pk)

    assert frame["chat"] is None


def test_a_call_without_a_chat_costs_the_ring_no_query_more(queue, number, django_assert_num_queries):
    agent = agent_of(queue)
    ringing = CallFactory(contact=ContactFactory(), business_number=number, queue=queue)
    ringing = Call.objects.select_related("contact").get(pk=ringing.pk)

    with django_assert_num_queries(1):  # the callers' previous calls: as before the handoff
        frame = ring_frame(call=ringing, queue=queue, agent_id=agent.pk)

    assert frame["chat"] is None


def test_rings_built_together_read_every_chat_in_one_query(queue, number):
    agents = [agent_of(queue) for _ in range(3)]
    calls = [
        Call.objects.select_related("contact").get(pk=call_after_chat(queue=queue, number=number).pk)
        for _ in agents
    ]
    offers = list(zip(calls, [agent.pk for agent in agents], strict=True))
    ring_frames(offers=offers[:1], queue=queue)  # permissions' content types cached

    with CaptureQueriesContext(connection) as one:
        ring_frames(offers=offers[:1], queue=queue)
    with CaptureQueriesContext(connection) as three:
        frames = ring_frames(offers=offers, queue=queue)

    chat_queries = [query for query in three if "messaging_conversation" in query["sql"]]
    assert (len(chat_queries), len(three)) == (1, len(one))  # the chats and the viewers: batched
    assert [frame["chat"]["conversation_id"] for frame in frames] == [call.conversation_id for call in calls]


def test_a_reloaded_tab_during_the_call_shows_the_chat_again(queue, number):
    agent = agent_of(queue)
    call = call_after_chat(queue=queue, number=number)
    Call.objects.filter(pk=call.pk).update(
        status=Call.Status.CONNECTED, agent=agent, connected_at=timezone.now()
    )

    [resumed] = resume_frames_for_agent(agent_id=agent.pk)

    assert (resumed["type"], resumed["chat"]["conversation_id"], resumed["chat"]["score"]) == (
        "call.resume",
        call.conversation_id,
        85,
    )


# --- The agent chatting with the caller is offered the call first ------------------------


def chatting_with(agent: Agent, *, number) -> Call:
    """A queued call from a customer whose conversation with `number` is assigned to `agent`."""
    contact = ContactFactory()
    chat = ConversationFactory(
        contact=contact, business_number=number, state=Conversation.State.ASSIGNED, agent=agent,
        waiting_since=None, assigned_at=timezone.now(),
    )  # fmt: skip
    return CallFactory(contact=contact, business_number=number, queue=chat_queue(number), conversation=chat)


def chat_queue(number):
    return number.queues.get()


def test_the_agent_chatting_with_the_caller_is_rung_first(queue, number, make_agent):
    make_agent(priority=1)  # first in the queue's order
    chatting = make_agent(priority=2)
    call = chatting_with(chatting, number=number)

    routing.call_waits(call_id=call.pk)

    assert Call.objects.get(pk=call.pk).offered_to_id == chatting.pk


def test_one_call_at_a_time_rings_the_agent_chatting_with_the_caller_first(queue, number, make_agent):
    make_agent(priority=1)
    chatting = make_agent(priority=2)
    call = chatting_with(chatting, number=number)

    offered = routing._offer_next(queue)

    assert (offered, Call.objects.get(pk=call.pk).offered_to_id) == (call.pk, chatting.pk)


@pytest.mark.parametrize("status", [Agent.Status.AWAY, Agent.Status.ON_CALL, Agent.Status.WRAP_UP])
def test_an_agent_chatting_with_the_caller_who_cannot_take_a_call_now_is_passed_over(
    queue, number, make_agent, status
):
    free = make_agent(priority=2)
    chatting = make_agent(priority=1, status=status)
    call = chatting_with(chatting, number=number)

    routing.call_waits(call_id=call.pk)

    assert Call.objects.get(pk=call.pk).offered_to_id == free.pk


def test_a_conversation_no_longer_assigned_gives_no_preference(queue, number, make_agent):
    first = make_agent(priority=1)
    chatting = make_agent(priority=2)
    call = chatting_with(chatting, number=number)
    Conversation.objects.filter(pk=call.conversation_id).update(state=Conversation.State.CLOSED)

    routing.call_waits(call_id=call.pk)

    assert Call.objects.get(pk=call.pk).offered_to_id == first.pk


def test_two_callers_chatting_with_one_agent_ring_them_once(queue, number, make_agent):
    other = make_agent(priority=1)
    chatting = make_agent(priority=2)
    first, second = chatting_with(chatting, number=number), chatting_with(chatting, number=number)
    Call.objects.filter(pk=second.pk).update(queued_at=first.queued_at + timedelta(seconds=1))

    routing.call_waits(call_id=first.pk)

    offered = dict(Call.objects.filter(status=Call.Status.OFFERED).values_list("pk", "offered_to_id"))
    assert offered == {first.pk: chatting.pk, second.pk: other.pk}


def test_an_agent_who_declined_the_call_is_not_rung_for_it_again_at_once(queue, number, make_agent):
    other = make_agent(priority=2)
    chatting = make_agent(priority=1)
    call = chatting_with(chatting, number=number)
    routing.call_waits(call_id=call.pk)

    routing.offer_decline(agent_id=chatting.pk, call_id=call.pk)
    routing.route_queue(queue_id=queue.pk)

    assert Call.objects.get(pk=call.pk).offered_to_id == other.pk
