from celery import shared_task

from assistant.services import assistant_hand_over_overdue, assistant_reply
from core.jobs import enqueue_on_commit
from messaging.services import message_send_recorded
from messaging.tasks import send_message
from whatsapp.client import GraphClient
from whatsapp.errors import GraphTransportError

SEND_RETRY_S = 5.0


@shared_task(name="assistant.answer", acks_late=True)
def answer(*, conversation_id: int, message_id: int) -> str:
    """Answer a customer's message in a conversation the assistant has, and send the answer at once
    (in this worker: the customer is waiting). The sent message's `wamid`, or "" when there was
    nothing to send; an answer Meta could not be reached for is sent again by messaging's task."""
    reply = assistant_reply(conversation_id=conversation_id, message_id=message_id)
    if reply is None:
        return ""
    with GraphClient() as graph:
        try:
            return message_send_recorded(message_id=reply.pk, graph=graph)
        except GraphTransportError:
            enqueue_on_commit(send_message, countdown=SEND_RETRY_S, message_id=reply.pk)
            return ""


@shared_task(name="assistant.hand_over_overdue")
def hand_over_overdue() -> int:
    """The sweep: conversations whose customer waited on the assistant for a minute go to the agents."""
    return assistant_hand_over_overdue()
