"""The shared inbox: a customer's messages open and join conversations, routing gives them to the
queue's agents within their chat limits (none while a call takes the agent), agents claim, hand on,
close and read them, and the lists, the agents' tabs and the CRM follow."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, QueueMembership
from agents.services import agent_transition
from agents.tests.factories import AgentFactory, QueueFactory, UserFactory
from agents.tests.test_consumers import open_socket
from calls import routing as call_routing
from calls.models import Call, LiveCallCount
from calls.tests.factories import CallFactory
from calls.tests.test_wallboard import open_wallboard
from core.access import viewer_of_user
from integrations import webhooks
from integrations.models import OutgoingEvent, WebhookSubscription
from messaging.conversations import (
    conversation_claim,
    conversation_close,
    conversation_mark_read,
    conversation_transfer,
    conversations_route,
)
from messaging.models import Conversation, Message
from messaging.selectors import (
    InboxCounts,
    conversations_all,
    conversations_mine,
    conversations_waiting,
    inbox_counts,
)
from messaging.services import message_send_text
from messaging.tests.conftest import customer_writes
from messaging.tests.factories import ConversationFactory
from whatsapp.services import webhook_delivery_receive
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

CUSTOMER = "447700900123"


def reload(conversation: Conversation) -> Conversation:
    conversation.refresh_from_db()
    return conversation


def chats_of(agent: Agent) -> int:
    agent.refresh_from_db()
    return agent.chat_count


def claimed(conversation: Conversation, agent: Agent) -> Conversation:
    return conversation_claim(conversation_id=conversation.pk, agent_id=agent.pk)


# --- Messages open and join conversations ------------------------------------------------------


def test_a_customers_first_message_opens_a_conversation_waiting_in_the_numbers_queue(inbox_queue):
    customer_writes(CUSTOMER, "wamid.1")

    conversation = Conversation.objects.get()
    first = Message.objects.get(wa_message_id="wamid.1")
    assert (conversation.state, conversation.queue, conversation.agent, conversation.unread_count) == (
        "waiting", inbox_queue, None, 1,
    )  # fmt: skip
    assert conversation.contact == first.contact
    assert (
        conversation.opened_at
        == conversation.waiting_since
        == conversation.last_message_at
        == first.created_at
    )


def test_the_customers_next_messages_join_it_as_unread_once_each(inbox_queue):
    customer_writes(CUSTOMER, "wamid.1")
    customer_writes(CUSTOMER, "wamid.2")
    customer_writes(CUSTOMER, "wamid.2")  # Meta's redelivery
    customer_writes("447700900999", "wamid.3")  # another customer

    conversation = Conversation.objects.get(contact__wa_id=CUSTOMER)
    assert Conversation.objects.count() == 2
    assert conversation.unread_count == 2
    assert conversation.last_message_at == Message.objects.get(wa_message_id="wamid.2").created_at


def test_an_answer_to_a_call_permission_request_joins_an_open_conversation_and_opens_none(inbox_queue):
    answer = json.dumps(payloads.permission_reply("wamid.answer1")).encode()
    webhook_delivery_receive(body=answer)
    opened_by_answer = Conversation.objects.count()
    customer_writes(payloads.CUSTOMER, "wamid.1")

    webhook_delivery_receive(body=json.dumps(payloads.permission_reply("wamid.answer2")).encode())

    assert opened_by_answer == 0
    assert Conversation.objects.get().unread_count == 2  # the text, then the second answer
    assert Message.objects.filter(wa_message_id__startswith="wamid.answer").count() == 2


def test_after_closing_the_customers_next_message_opens_a_new_conversation(inbox_queue):
    customer_writes(CUSTOMER, "wamid.1")
    first = Conversation.objects.get()
    conversation_close(conversation_id=first.pk, agent_id=None)

    customer_writes(CUSTOMER, "wamid.2")

    second = Conversation.objects.exclude(pk=first.pk).get()
    assert (reload(first).state, second.state, second.unread_count) == ("closed", "waiting", 1)


def test_a_reply_to_the_customer_joins_the_open_conversation_unread_count_unchanged(make_agent, inbox_number):
    customer_writes(CUSTOMER, "wamid.1")
    conversation = Conversation.objects.get()

    reply = message_send_text(business_number=inbox_number, contact=conversation.contact, text="Hello Ada")

    assert (reload(conversation).last_message_at, conversation.unread_count) == (reply.created_at, 1)


def test_the_database_holds_one_open_conversation_per_customer_and_number_and_an_agent_when_assigned(
    make_conversation,
):
    open_one = make_conversation()
    make_conversation(contact=open_one.contact, state="closed", closed_at=timezone.now())
    ConversationFactory(contact=open_one.contact)  # with another number

    with pytest.raises(IntegrityError), transaction.atomic():
        make_conversation(contact=open_one.contact)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_conversation(state="assigned")


# --- Routing ------------------------------------------------------------------------------------


def test_a_waiting_conversation_goes_to_the_first_tier_agent_holding_fewest_chats(
    make_agent, django_capture_on_commit_callbacks
):
    make_agent(chat_count=2, status_changed_at=timezone.now() - timedelta(hours=1))  # longest idle, busier
    lighter = make_agent(chat_count=1)
    make_agent(priority=2)  # free, but of the second tier

    with django_capture_on_commit_callbacks(execute=True):
        customer_writes(CUSTOMER, "wamid.1")

    conversation = Conversation.objects.get()
    assert (conversation.state, conversation.agent, conversation.assigned_at is not None) == (
        "assigned", lighter, True,
    )  # fmt: skip
    assert chats_of(lighter) == 2


def test_routing_gives_an_agent_no_more_than_the_chat_limit_and_a_closed_chat_frees_a_place(
    make_agent, make_conversation, inbox_queue, django_capture_on_commit_callbacks
):
    agent = make_agent(chat_limit=2)
    oldest, older, newest = (
        make_conversation(waiting_since=timezone.now() - timedelta(minutes=minutes)) for minutes in (3, 2, 1)
    )

    assigned = conversations_route(queue_id=inbox_queue.pk)

    assert assigned == [oldest.pk, older.pk]
    assert (chats_of(agent), reload(newest).state) == (2, "waiting")
    with django_capture_on_commit_callbacks(execute=True):
        conversation_close(conversation_id=oldest.pk, agent_id=agent.pk)
    assert (reload(newest).state, newest.agent, chats_of(agent)) == ("assigned", agent, 2)


@pytest.mark.parametrize("status", [Agent.Status.RINGING, Agent.Status.ON_CALL, Agent.Status.WRAP_UP])
def test_a_call_takes_the_agent_whole_no_new_chat_until_the_agent_is_available_again(
    status, make_agent, make_conversation, inbox_queue, django_capture_on_commit_callbacks
):
    agent = make_agent(status=status)
    conversation = make_conversation()

    assert conversations_route(queue_id=inbox_queue.pk) == []
    with pytest.raises(ValidationError) as refused:
        claimed(conversation, agent)
    assert (refused.value.code, reload(conversation).state, chats_of(agent)) == ("busy", "waiting", 0)
    with django_capture_on_commit_callbacks(execute=True):
        agent_transition(agent_id=agent.pk, allowed_from={status}, to_status=Agent.Status.AVAILABLE)
    assert (reload(conversation).state, conversation.agent) == ("assigned", agent)


def test_a_call_still_rings_an_agent_holding_as_many_chats_as_allowed(make_agent, inbox_queue, inbox_number):
    agent = make_agent(chat_count=3)
    LiveCallCount.objects.create(business_number=inbox_number, direction="inbound", live=1)
    call = CallFactory(queue=inbox_queue, business_number=inbox_number, media_channel="media.test!1")

    call_routing.call_waits(call_id=call.pk)

    assert Call.objects.get(pk=call.pk).offered_to == agent


def test_the_sweep_routes_conversations_left_waiting(make_agent, make_conversation):
    conversation = make_conversation()  # its routing after commit never ran
    agent = make_agent()

    counts = call_routing.sweep()

    assert (counts["conversations_assigned"], reload(conversation).agent) == (1, agent)


# --- Claims, transfers, closes, reads ------------------------------------------------------------


def test_an_agent_claims_a_waiting_conversation_and_a_second_claim_loses(make_agent, make_conversation):
    first, second = make_agent(), make_agent()
    conversation = make_conversation()

    won = claimed(conversation, first)
    lost = claimed(conversation, second)

    assert (won.state, won.agent, won.assigned_at is not None) == ("assigned", first, True)
    assert lost is None
    assert (chats_of(first), chats_of(second)) == (1, 0)


def test_a_claim_beyond_the_chat_limit_is_refused_and_changes_nothing(make_agent, make_conversation):
    agent = make_agent(chat_limit=1)
    claimed(make_conversation(), agent)
    wanted = make_conversation()

    with pytest.raises(ValidationError) as refused:
        claimed(wanted, agent)

    assert (refused.value.code, reload(wanted).state, wanted.agent, chats_of(agent)) == (
        "chat_limit", "waiting", None, 1,
    )  # fmt: skip


def test_an_agent_cannot_claim_a_conversation_of_a_number_they_do_not_serve(make_conversation):
    outsider = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=QueueFactory(), agent=outsider)
    conversation = make_conversation()

    with pytest.raises(ValidationError) as refused:
        claimed(conversation, outsider)

    assert (refused.value.code, reload(conversation).state, chats_of(outsider)) == ("not_yours", "waiting", 0)


def test_a_transfer_to_a_colleague_moves_the_chat_place_and_a_stale_one_loses(
    make_agent, make_conversation, inbox_queue
):
    first, colleague = make_agent(), make_agent()
    conversation = claimed(make_conversation(), first)

    moved = conversation_transfer(
        conversation_id=conversation.pk, from_agent_id=first.pk, to_agent_id=colleague.pk
    )
    stale = conversation_transfer(
        conversation_id=conversation.pk, from_agent_id=first.pk, to_queue_id=inbox_queue.pk
    )

    assert (moved.state, moved.agent) == ("assigned", colleague)
    assert stale is None
    assert (chats_of(first), chats_of(colleague)) == (0, 1)


def test_a_transfer_to_a_queue_waits_there_for_that_queues_agents(
    make_agent, make_conversation, inbox_number, django_capture_on_commit_callbacks
):
    first = make_agent()
    sales = QueueFactory(name="Sales")
    sales.business_numbers.add(inbox_number)
    seller = make_agent(queue=sales)
    conversation = claimed(make_conversation(), first)

    with django_capture_on_commit_callbacks(execute=True):
        moved = conversation_transfer(
            conversation_id=conversation.pk, from_agent_id=first.pk, to_queue_id=sales.pk
        )

    assert (moved.state, moved.queue, moved.agent) == ("waiting", sales, None)  # then routed, after commit
    assert (reload(conversation).state, conversation.queue, conversation.agent) == ("assigned", sales, seller)
    assert (chats_of(first), chats_of(seller)) == (0, 1)


def test_a_transfer_to_a_busy_agent_or_another_numbers_queue_is_refused_and_changes_nothing(
    make_agent, make_conversation
):
    first, on_call = make_agent(), make_agent(status=Agent.Status.ON_CALL)
    conversation = claimed(make_conversation(), first)

    with pytest.raises(ValidationError) as to_busy:
        conversation_transfer(conversation_id=conversation.pk, from_agent_id=first.pk, to_agent_id=on_call.pk)
    with pytest.raises(ValidationError) as elsewhere:
        conversation_transfer(
            conversation_id=conversation.pk, from_agent_id=first.pk, to_queue_id=QueueFactory().pk
        )

    assert (to_busy.value.code, elsewhere.value.code) == ("busy", "not_yours")
    assert (reload(conversation).agent, chats_of(first), chats_of(on_call)) == (first, 1, 0)


def test_only_the_agent_who_has_a_conversation_closes_it_once(make_agent, make_conversation):
    agent, colleague = make_agent(), make_agent()
    conversation = claimed(make_conversation(), agent)

    by_colleague = conversation_close(conversation_id=conversation.pk, agent_id=colleague.pk)
    as_unassigned = conversation_close(conversation_id=conversation.pk, agent_id=None)
    closed = conversation_close(conversation_id=conversation.pk, agent_id=agent.pk)
    again = conversation_close(conversation_id=conversation.pk, agent_id=agent.pk)

    assert (by_colleague, as_unassigned, again) == (None, None, None)
    assert (closed.state, closed.agent, closed.closed_at is not None) == ("closed", agent, True)
    assert chats_of(agent) == 0


def test_reading_clears_the_unread_count_for_the_agent_who_has_the_conversation(
    make_agent, make_conversation
):
    agent, colleague = make_agent(), make_agent()
    conversation = claimed(make_conversation(unread_count=3), agent)

    by_colleague = conversation_mark_read(conversation_id=conversation.pk, agent_id=colleague.pk)
    read = conversation_mark_read(conversation_id=conversation.pk, agent_id=agent.pk)
    again = conversation_mark_read(conversation_id=conversation.pk, agent_id=agent.pk)

    assert (by_colleague, read, again) == (False, True, False)
    assert reload(conversation).unread_count == 0


# --- The lists ----------------------------------------------------------------------------------


def test_the_inbox_lists_are_one_query_each_within_the_viewers_numbers(
    make_agent, make_conversation, django_assert_num_queries
):
    agent, colleague = make_agent(), make_agent()
    mine = claimed(make_conversation(unread_count=2), agent)
    theirs = claimed(make_conversation(), colleague)
    longest, shorter = (
        make_conversation(waiting_since=timezone.now() - timedelta(minutes=minutes)) for minutes in (2, 1)
    )
    closed = make_conversation(state="closed", closed_at=timezone.now())
    elsewhere = ConversationFactory()  # of another number
    viewer, supervisor = viewer_of_user(agent.user), viewer_of_user(UserFactory(is_staff=True))

    with django_assert_num_queries(4):
        listed = {
            "mine": conversations_mine(viewer=viewer),
            "waiting": conversations_waiting(viewer=viewer),
            "open": conversations_all(viewer=viewer),
            "every": conversations_all(viewer=supervisor, is_open=False),
        }
        shown = [(row.contact.name, row.business_number.label, row.queue, row.agent and row.agent.name)
                 for rows in listed.values() for row in rows]  # fmt: skip

    assert len(shown) == 1 + 2 + 4 + 6
    assert [row.pk for row in listed["mine"]] == [mine.pk]
    assert [row.pk for row in listed["waiting"]] == [longest.pk, shorter.pk]
    assert {row.pk for row in listed["open"]} == {mine.pk, theirs.pk, longest.pk, shorter.pk}
    assert {row.pk for row in listed["every"]} == {
        mine.pk,
        theirs.pk,
        longest.pk,
        shorter.pk,
        closed.pk,
        elsewhere.pk,
    }
    with django_assert_num_queries(1):
        counts = inbox_counts(viewer=viewer)
    assert counts == InboxCounts(mine=1, unread=2, waiting=2)
    assert inbox_counts(viewer=viewer_of_user(UserFactory())) == InboxCounts(mine=0, unread=0, waiting=0)


# --- Who hears it -------------------------------------------------------------------------------


def test_the_crm_hears_a_conversation_wait_get_assigned_and_close(
    make_agent, inbox_number, django_capture_on_commit_callbacks
):
    kinds = ["conversation.waiting", "conversation.assigned", "conversation.closed"]
    subscription = WebhookSubscription.objects.create(
        name="CRM", url="https://crm.example/in", secret="s", event_types=kinds
    )
    subscription.business_numbers.add(inbox_number)
    webhooks.subscriptions_changed()
    agent = make_agent()

    try:
        with django_capture_on_commit_callbacks(execute=True):
            customer_writes(CUSTOMER, "wamid.1")
        conversation = Conversation.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            conversation_close(conversation_id=conversation.pk, agent_id=agent.pk)
    finally:
        webhooks.subscriptions_changed()

    ids = {
        "conversation_id": conversation.pk,
        "contact_id": conversation.contact_id,
        "queue_id": conversation.queue_id,
    }
    assert list(OutgoingEvent.objects.order_by("occurred_at").values_list("kind", "data")) == [
        ("conversation.waiting", {**ids, "state": "waiting", "agent_id": None}),
        ("conversation.assigned", {**ids, "state": "assigned", "agent_id": agent.pk}),
        ("conversation.closed", {**ids, "state": "closed", "agent_id": agent.pk}),
    ]


def _agent_of_the_inbox() -> Agent:
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    return agent


@pytest.mark.django_db(transaction=True)
async def test_the_agents_tabs_hear_a_conversation_wait_in_their_queue_be_given_to_them_and_close():
    agent = await sync_to_async(_agent_of_the_inbox)()
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence

    await sync_to_async(customer_writes)(CUSTOMER, "wamid.1")
    waiting = await communicator.receive_json_from(timeout=2)  # the waiting list of the agent's queue
    assigned = await communicator.receive_json_from(timeout=2)
    taken = await communicator.receive_json_from(timeout=2)
    await sync_to_async(customer_writes)(CUSTOMER, "wamid.2")
    message = await communicator.receive_json_from(timeout=2)
    conversation = await sync_to_async(Conversation.objects.get)()
    await sync_to_async(conversation_close)(conversation_id=conversation.pk, agent_id=agent.pk)
    closed = await communicator.receive_json_from(timeout=2)

    ids = {"conversation_id": conversation.pk, "agent_id": agent.pk}
    second = await sync_to_async(Message.objects.get)(wa_message_id="wamid.2")
    queue = {"conversation_id": conversation.pk, "queue_id": conversation.queue_id}
    assert (waiting, taken) == (
        {"type": "conversation.waiting", **queue},
        {"type": "conversation.taken", **queue},
    )
    assert assigned == {"type": "conversation.assigned", **ids}
    assert message == {"type": "conversation.message", **ids, "message_id": second.pk}
    assert closed == {"type": "conversation.closed", **ids}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_supervisors_hear_the_waiting_list_change():
    supervisor = await sync_to_async(UserFactory)(is_staff=True)
    await sync_to_async(BusinessNumberFactory)(
        phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID
    )
    communicator = await open_wallboard(supervisor)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # the floor's snapshot

    await sync_to_async(customer_writes)(CUSTOMER, "wamid.1")
    waiting = await communicator.receive_json_from(timeout=2)
    conversation = await sync_to_async(Conversation.objects.get)()
    await sync_to_async(conversation_close)(conversation_id=conversation.pk, agent_id=None)
    taken = await communicator.receive_json_from(timeout=2)

    assert waiting == {"type": "conversation.waiting", "conversation_id": conversation.pk, "queue_id": None}
    assert taken == {"type": "conversation.taken", "conversation_id": conversation.pk, "queue_id": None}
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_agent_of_another_queue_does_not_hear_the_waiting_list():
    await sync_to_async(_agent_of_the_inbox)()
    outsider = await sync_to_async(AgentFactory)(status=Agent.Status.AVAILABLE)
    await sync_to_async(QueueMembership.objects.create)(
        queue=await sync_to_async(QueueFactory)(), agent=outsider
    )
    communicator = await open_socket(outsider.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence

    await sync_to_async(customer_writes)(CUSTOMER, "wamid.1")

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()
