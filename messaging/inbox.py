"""What agents do in an open conversation besides taking, handing on and closing it
(messaging.conversations): private notes, and what the customer sees of the agent (their message
read, a reply being typed).

Notes are never sent to the customer: every tab of the agent who has the conversation (and of the
agent who wrote the note) hears `conversation.note` on `agent.<id>` after commit. Read receipts and
the typing indicator go to Meta from a worker (messaging.tasks.send_read_receipt), never holding up
the agent's request; the typing indicator at most once per TYPING_EVERY_S a conversation (Meta shows
it for up to 25 s, or until the reply).
"""

from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import transaction

from core.jobs import enqueue_on_commit
from core.realtime import broadcast_on_commit
from messaging.models import Conversation, ConversationNote, Message

NOTE_MAX_LENGTH = 2000
TYPING_EVERY_S = 20


@transaction.atomic
def conversation_note_add(
    *, conversation: Conversation, author, author_agent_id: int | None, text: str
) -> ConversationNote:
    """Leave a private note on a conversation (ValidationError for an empty or too long one). The
    agent who has it and the note's author (`author_agent_id`: their agent, None for a supervisor)
    hear `conversation.note` in every tab, after commit."""
    text = text.strip()
    if not text:
        raise ValidationError("Write the note first.", code="empty")
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationError(f"A note is at most {NOTE_MAX_LENGTH} characters.", code="too_long")
    note = ConversationNote.objects.create(conversation=conversation, author=author, text=text)
    agent_ids = {conversation.agent_id, author_agent_id} - {None}
    for agent_id in sorted(agent_ids):
        broadcast_on_commit(
            f"agent.{agent_id}",
            {"type": "conversation.note", "conversation_id": conversation.pk, "note_id": note.pk},
        )
    return note


def _latest_from_customer(conversation: Conversation) -> Message | None:
    return (
        Message.objects.filter(
            contact_id=conversation.contact_id,
            business_number_id=conversation.business_number_id,
            direction=Message.Direction.INBOUND,
            created_at__gte=conversation.opened_at,
        )
        .exclude(wa_message_id__isnull=True)
        .exclude(wa_message_id="")
        .order_by("-created_at", "-pk")
        .only("pk")
        .first()
    )


def customer_read_receipt_send(*, conversation: Conversation) -> int | None:
    """The agent read the conversation: the customer's latest message of it shows as read on their
    phone (sent by a worker after commit). The id of that message, None when there is none."""
    from messaging.tasks import send_read_receipt

    message = _latest_from_customer(conversation)
    if message is None:
        return None
    enqueue_on_commit(send_read_receipt, message_id=message.pk, is_typing=False)
    return message.pk


def customer_typing_show(*, conversation: Conversation) -> bool:
    """The agent is typing a reply: the customer sees "typing…" (and their latest message read), at
    most once per TYPING_EVERY_S for the conversation whoever types and in however many tabs.
    Whether it was sent now."""
    from messaging.tasks import send_read_receipt

    message = _latest_from_customer(conversation)
    if message is None:
        return False
    # One atomic SET NX in Redis: only the first of the agent's keystrokes in the period wins.
    if not caches["api"].add(f"inbox:typing:{conversation.pk}", message.pk, timeout=TYPING_EVERY_S):
        return False
    enqueue_on_commit(send_read_receipt, message_id=message.pk, is_typing=True)
    return True
