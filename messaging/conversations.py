"""The shared inbox: a customer's conversation with a business number, from the message that opens
it until it is closed, and who has it: services (writes) and the routing of waiting conversations.

Waiting conversations are offered to the agents of their queue by the ACD's matching
(agents.routing), the same tiers, skills and strategies as calls, each chat counted against the
agent's chat limit, and none while a call takes the agent. Every change of state is one
conditional UPDATE whose row count says who won; a chat place is taken by one conditional UPDATE
of the agent row (agents.routing.agent_claim), so no agent is ever given more than their limit.

Locks are taken in one order: the conversation row first, then agent rows (in id order when there
are two), as call routing takes the call, then the agent. On PostgreSQL the oldest waiting
conversation is locked with SKIP LOCKED, so concurrent routers work on different ones; SQLite has
one writer at a time.

Realtime (after commit, ids and a type only): the agent who has a conversation hears of it on
`agent.<id>` (`conversation.assigned`, `.message`, `.read`, `.released`, `.closed`); the waiting
list on `supervisors` and on its queue's `queue.<id>` (`conversation.waiting`, `conversation.taken`).
The CRM's webhooks get `conversation.waiting`, `conversation.assigned` and `conversation.closed`
(core.events).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from agents.models import Agent, Queue
from agents.routing import (
    Work,
    agent_chat_release,
    agent_claim,
    agent_claim_best,
    can_take,
    capacity_of,
    free_agents,
)
from agents.selectors import numbers_for_agent, queue_for_number
from core.events import event_publish
from core.realtime import broadcast_on_commit
from messaging.models import Conversation, Message

WAITING_LIST_GROUP = "supervisors"
State = Conversation.State


@dataclass(frozen=True)
class FirstResponder:
    """Who answers a new conversation before the agents (the assistant app registers itself here:
    messaging never imports it). `answers(message, queue)`: whether it takes the conversation this customer
    message opens; `message_joined(conversation, message)`: a customer's message joined a
    conversation it has (called inside the transaction; it answers after commit)."""

    answers: Callable[[Message, Queue | None], bool]
    message_joined: Callable[[Conversation, Message], None]


_first_responders: list[FirstResponder] = []


def first_responder_register(responder: FirstResponder) -> None:
    if responder not in _first_responders:
        _first_responders.append(responder)


def _first_responder_for(message: Message, queue: Queue | None) -> FirstResponder | None:
    return next((responder for responder in _first_responders if responder.answers(message, queue)), None)


# --- Messages join conversations ------------------------------------------------------------


@transaction.atomic
def conversation_message_received(*, message: Message, may_open: bool = True) -> Conversation | None:
    """A customer's new message joins their open conversation with the number, or opens one
    (unless not `may_open`: then None): with the number's first responder (the assistant) when one
    answers now, else waiting for an agent in the number's queue. Either way its unread count and
    last message time move on. The agent who has it hears `conversation.message`; the assistant
    that has it answers after commit; a new waiting one is routed after commit.

    Two first messages at once open one conversation (the database allows one open per customer
    and number): the second joins what the first opened.
    """
    at = message.created_at
    thread = _open_one_of(message)
    for _ in range(2):
        joined = thread.update(
            unread_count=F("unread_count") + 1,
            last_message_at=Greatest(F("last_message_at"), Value(at)),
            updated_at=timezone.now(),
        )
        if joined:
            conversation = thread.get()  # ours until commit: the UPDATE locked it
            if conversation.state == State.ASSIGNED:
                _tell_agent(conversation, "conversation.message", message_id=message.pk)
            elif conversation.state == State.ASSISTANT:
                for responder in _first_responders:
                    responder.message_joined(conversation, message)
            return conversation
        if not may_open:
            return None
        try:
            with transaction.atomic():
                return _open(message=message, at=at)
        except IntegrityError:
            continue  # opened meanwhile by the customer's other message: join it
    raise RuntimeError(f"no open conversation for message {message.pk}, and none could be opened")


def _open_one_of(message: Message):
    return Conversation.objects.filter(
        contact_id=message.contact_id,
        business_number_id=message.business_number_id,
        state__in=Conversation.OPEN_STATES,
    )


def _open(*, message: Message, at) -> Conversation:
    queue = queue_for_number(phone_number_id=message.business_number.phone_number_id)
    responder = _first_responder_for(message, queue)
    conversation = Conversation.objects.create(
        contact_id=message.contact_id,
        business_number_id=message.business_number_id,
        state=State.WAITING if responder is None else State.ASSISTANT,
        queue=queue,
        unread_count=1,
        last_message_at=at,
        opened_at=at,
        waiting_since=at if responder is None else None,
    )
    if responder is None:
        _starts_waiting(conversation)
    else:
        responder.message_joined(conversation, message)
    return conversation


@transaction.atomic
def conversation_message_sent(*, message: Message) -> Conversation | None:
    """A message of the business (an agent's reply, a template, a fallback) joins the customer's
    open conversation with the number, if one is open: its last message time moves on and the
    agent who has it hears `conversation.message` (every tab shows the reply). None when none is
    open."""
    thread = _open_one_of(message)
    if not thread.update(
        last_message_at=Greatest(F("last_message_at"), Value(message.created_at)), updated_at=timezone.now()
    ):
        return None
    conversation = thread.get()
    if conversation.state == State.ASSIGNED:
        _tell_agent(conversation, "conversation.message", message_id=message.pk)
    return conversation


@transaction.atomic
def conversation_hand_over(*, conversation_id: int) -> Conversation | None:
    """The assistant hands its conversation to the agents: it waits in its queue, routed after
    commit. None, changing nothing, when the assistant no longer has it (an agent stepped in, or
    it was closed)."""
    now = timezone.now()
    if not Conversation.objects.filter(pk=conversation_id, state=State.ASSISTANT).update(
        state=State.WAITING, waiting_since=now, updated_at=now
    ):
        return None
    conversation = Conversation.objects.get(pk=conversation_id)
    _starts_waiting(conversation)
    return conversation


# --- Agents take, hand on and close conversations --------------------------------------------


@transaction.atomic
def conversation_claim(*, conversation_id: int, agent_id: int) -> Conversation | None:
    """An agent takes a waiting conversation of a number they serve, or steps in for the
    assistant. Exactly one claimant wins; the others get None (it is no longer waiting).

    ValidationError, changing nothing, when the agent does not serve the number (`not_yours`) or
    cannot take a chat now (`chat_limit`: as many as the agent may hold; `busy`: a call takes the
    agent, or the agent is away).
    """
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or conversation.state not in (State.WAITING, State.ASSISTANT):
        return None
    _check_serves(agent_id=agent_id, conversation=conversation)
    now = timezone.now()
    won = Conversation.objects.filter(pk=conversation_id, state=conversation.state).update(
        state=State.ASSIGNED, agent_id=agent_id, assigned_at=now, updated_at=now
    )
    if won != 1:
        return None
    _take_chat_place(agent_id)
    was_waiting = conversation.state == State.WAITING
    conversation.refresh_from_db()
    _assigned(conversation, was_waiting=was_waiting)
    return conversation


@transaction.atomic
def conversation_transfer(
    *,
    conversation_id: int,
    from_agent_id: int | None,
    to_agent_id: int | None = None,
    to_queue_id: int | None = None,
) -> Conversation | None:
    """Hand a conversation to another agent, or to a queue to wait for its next agent.

    `from_agent_id` is who has it as the caller saw it (None: it is waiting); None is returned,
    changing nothing, when that changed meanwhile (claimed, closed, handed on: someone else won).
    To an agent who serves the number and can take a chat now; to a queue that serves the number
    (ValidationError otherwise, and for anything but exactly one of the two). The agent who had it
    gets the chat place back, and the queues that agent serves are routed after commit.
    """
    if (to_agent_id is None) == (to_queue_id is None):
        raise ValidationError("Transfer to an agent or to a queue.", code="invalid_transfer")
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return None
    if to_agent_id is not None:
        if to_agent_id == from_agent_id:
            raise ValidationError("The conversation is this agent's already.", code="invalid_transfer")
        _check_serves(agent_id=to_agent_id, conversation=conversation)
    elif not Queue.objects.filter(pk=to_queue_id, business_numbers=conversation.business_number_id).exists():
        raise ValidationError("That queue does not serve the conversation's number.", code="not_yours")
    was_waiting = from_agent_id is None
    now = timezone.now()
    held = Conversation.objects.filter(
        pk=conversation_id,
        state=State.WAITING if was_waiting else State.ASSIGNED,
        agent_id=from_agent_id,
    )
    if to_agent_id is not None:
        won = held.update(state=State.ASSIGNED, agent_id=to_agent_id, assigned_at=now, updated_at=now)
    else:
        won = held.update(
            state=State.WAITING, agent=None, queue_id=to_queue_id, waiting_since=now, updated_at=now
        )
    if won != 1:
        return None
    # Agent rows in id order: two transfers between the same agents wait for each other, not deadlock.
    for agent_id in sorted(pk for pk in (from_agent_id, to_agent_id) if pk is not None):
        if agent_id == from_agent_id:
            agent_chat_release(agent_id=agent_id)
        else:
            _take_chat_place(agent_id)
    conversation.refresh_from_db()
    if not was_waiting:
        _tell_agent(conversation, "conversation.released", agent_id=from_agent_id)
        _chat_place_freed(from_agent_id)
    if to_agent_id is not None:
        _assigned(conversation, was_waiting=was_waiting)
    else:
        _starts_waiting(conversation)  # (from another queue: the waiting list hears its new queue)
    return conversation


@transaction.atomic
def conversation_close(*, conversation_id: int, agent_id: int | None) -> Conversation | None:
    """Close an open conversation: the one the agent `agent_id` has, or with None one nobody has
    (waiting, or with the assistant). None, changing nothing, when it is not so any more (someone
    else closed, took or handed it on). The agent gets the chat place back and the queues the agent
    serves are routed after commit; the customer's next message opens a new conversation."""
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None or conversation.state == State.CLOSED or conversation.agent_id != agent_id:
        return None
    now = timezone.now()
    held = Conversation.objects.filter(pk=conversation_id, state=conversation.state, agent_id=agent_id)
    closed = held.update(state=State.CLOSED, closed_at=now, updated_at=now)
    if closed != 1:
        return None
    was_waiting = conversation.state == State.WAITING
    conversation.refresh_from_db()
    if agent_id is not None:
        agent_chat_release(agent_id=agent_id)
        _tell_agent(conversation, "conversation.closed")
        _chat_place_freed(agent_id)
    if was_waiting:
        _tell_waiting_list(conversation, "conversation.taken")
    _publish("conversation.closed", conversation)
    return conversation


def conversation_mark_read(*, conversation_id: int, agent_id: int) -> bool:
    """The agent who has the conversation read it: its unread count goes to 0, and every tab of
    the agent hears `conversation.read`. Whether there was anything unread."""
    with transaction.atomic():
        read = Conversation.objects.filter(
            pk=conversation_id, state=State.ASSIGNED, agent_id=agent_id, unread_count__gt=0
        ).update(unread_count=0, updated_at=timezone.now())
        if read == 1:
            broadcast_on_commit(
                f"agent.{agent_id}",
                {"type": "conversation.read", "conversation_id": conversation_id, "agent_id": agent_id},
            )
    return read == 1


def _check_serves(*, agent_id: int, conversation: Conversation) -> None:
    if not numbers_for_agent(agent_id=agent_id).filter(pk=conversation.business_number_id).exists():
        raise ValidationError("That agent does not serve the conversation's number.", code="not_yours")


def _take_chat_place(agent_id: int) -> None:
    """Take one of the agent's chat places, or raise ValidationError (the transaction rolls back)."""
    if agent_claim(agent_id=agent_id, work=Work.CHAT):
        return
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is not None and agent.status == Agent.Status.AVAILABLE and capacity_of(agent).chats == 0:
        raise ValidationError(
            f"Already {agent.chat_count} conversations open: the most this agent may hold.", code="chat_limit"
        )
    raise ValidationError("Not available for chats now (a call, or away).", code="busy")


# --- Routing: waiting conversations to free agents ---------------------------------------------


def conversations_route(*, queue_id: int) -> list[int]:
    """Assign the queue's waiting conversations, longest-waiting first, each to the queue's best
    agent with a free chat place, until one side runs out: the ids of the conversations assigned.
    Safe to run concurrently from any process."""
    queue = Queue.objects.filter(pk=queue_id).first()
    if queue is None or not free_agents(queue, work=Work.CHAT).exists():
        return []  # (a place freed later routes again): in a burst, no conversation locked for nothing
    assigned: list[int] = []
    while (conversation_id := _assign_next(queue)) is not None:
        assigned.append(conversation_id)
    return assigned


def _assign_next(queue: Queue) -> int | None:
    with transaction.atomic():
        conversation = _next_waiting(queue)
        if conversation is None:
            return None
        agent_id = agent_claim_best(queue=queue, work=Work.CHAT)
        if agent_id is None:
            return None
        now = timezone.now()
        if not Conversation.objects.filter(pk=conversation.pk, state=State.WAITING).update(
            state=State.ASSIGNED, agent_id=agent_id, assigned_at=now, updated_at=now
        ):
            transaction.set_rollback(True)  # not on PostgreSQL (locked) nor SQLite (one writer)
            return None
        conversation.state, conversation.agent_id, conversation.assigned_at = State.ASSIGNED, agent_id, now
        _assigned(conversation, was_waiting=True)
    return conversation.pk


def _next_waiting(queue: Queue) -> Conversation | None:
    """The queue's longest-waiting conversation, locked. On PostgreSQL one that no other router or
    claim holds; when every one is held, the first let go: the router holding it may have found no
    agent before a chat place came free, and must not leave it waiting while this one gives up."""
    waiting = Conversation.objects.filter(queue_id=queue.pk, state=State.WAITING).order_by(
        "waiting_since", "pk"
    )
    if not connection.features.has_select_for_update_skip_locked:
        return waiting.first()  # SQLite: one writer at a time
    return waiting.select_for_update(skip_locked=True).first() or waiting.select_for_update().first()


def conversations_route_for_agent(agent_id: int) -> None:
    """An agent became available, or has a chat place free again: look for waiting conversations in
    each of the agent's queues, best tier first, while the agent can take one."""
    for queue_id in (
        Queue.objects.filter(memberships__agent_id=agent_id, conversations__state=State.WAITING)
        .order_by("memberships__priority", "pk")
        .values_list("pk", flat=True)
        .distinct()
    ):
        if not Agent.objects.filter(can_take(Work.CHAT), pk=agent_id).exists():
            return
        conversations_route(queue_id=queue_id)


def conversations_route_waiting() -> int:
    """The sweep's pass: route every queue with waiting conversations (a routing after commit that
    did not run, a chat limit raised in admin). How many were assigned."""
    queue_ids = (
        Queue.objects.filter(conversations__state=State.WAITING).values_list("pk", flat=True).distinct()
    )
    return sum(len(conversations_route(queue_id=queue_id)) for queue_id in list(queue_ids))


# --- Who hears what -----------------------------------------------------------------------------


def _starts_waiting(conversation: Conversation) -> None:
    """The conversation waits for an agent: the waiting list and the CRM hear it, and its queue is
    routed once this commits (a failed routing is logged; the sweep routes again)."""
    _tell_waiting_list(conversation, "conversation.waiting")
    _publish("conversation.waiting", conversation)
    queue_id = conversation.queue_id
    if queue_id is not None:
        transaction.on_commit(lambda: conversations_route(queue_id=queue_id), robust=True)


def _assigned(conversation: Conversation, *, was_waiting: bool) -> None:
    _tell_agent(conversation, "conversation.assigned")
    if was_waiting:
        _tell_waiting_list(conversation, "conversation.taken")
    _publish("conversation.assigned", conversation)


def _chat_place_freed(agent_id: int) -> None:
    transaction.on_commit(lambda: conversations_route_for_agent(agent_id), robust=True)


def _tell_agent(
    conversation: Conversation, event_type: str, *, agent_id: int | None = None, **ids: int
) -> None:
    agent_id = agent_id or conversation.agent_id
    broadcast_on_commit(
        f"agent.{agent_id}",
        {"type": event_type, "conversation_id": conversation.pk, "agent_id": agent_id, **ids},
    )


def _tell_waiting_list(conversation: Conversation, event_type: str) -> None:
    """The supervisors hear it, and the agents of the conversation's queue (their inbox's waiting list)."""
    event = {"type": event_type, "conversation_id": conversation.pk, "queue_id": conversation.queue_id}
    broadcast_on_commit(WAITING_LIST_GROUP, event)
    if conversation.queue_id is not None:
        broadcast_on_commit(Queue(pk=conversation.queue_id).group_name, event)


def _publish(kind: str, conversation: Conversation) -> None:
    event_publish(
        kind,
        business_number_id=conversation.business_number_id,
        data={
            "conversation_id": conversation.pk,
            "contact_id": conversation.contact_id,
            "state": conversation.state,
            "agent_id": conversation.agent_id,
            "queue_id": conversation.queue_id,
        },
    )
