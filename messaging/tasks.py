import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from messaging.models import Message
from messaging.services import message_send_failed, message_sent
from whatsapp.client import GraphClient
from whatsapp.errors import GraphAPIError, GraphTransportError

logger = logging.getLogger(__name__)

PENDING_SWEEP_AFTER = timedelta(minutes=1)  # a send task lost with the broker is queued again after this


@shared_task(
    name="messaging.send_message", autoretry_for=(GraphTransportError,), retry_backoff=True, max_retries=3
)
def send_message(*, message_id: int) -> str:
    """Send a recorded message once: returns its `wamid`, or "" when there was nothing to send (gone,
    sent already) or Meta refused it (recorded on the message, not retried)."""
    message = (
        Message.objects.select_related("business_number")
        .filter(pk=message_id, status=Message.Status.PENDING, wa_message_id__isnull=True)
        .first()
    )
    if message is None:
        return ""
    with GraphClient() as graph:
        try:
            wa_message_id = graph.message_send(
                phone_number_id=message.business_number.phone_number_id, body=message.request
            )
        except GraphTransportError:
            raise
        except GraphAPIError as error:
            logger.info("message %s refused by Meta: %s", message_id, error)
            message_send_failed(message_id=message_id, error=str(error))
            return ""
    message_sent(message_id=message_id, wa_message_id=wa_message_id)
    return wa_message_id


@shared_task(name="messaging.send_pending")
def send_pending() -> int:
    """Safety sweep: queue again the sends of messages still pending a minute after they were recorded."""
    pending = Message.objects.filter(
        status=Message.Status.PENDING, created_at__lt=timezone.now() - PENDING_SWEEP_AFTER
    ).values_list("pk", flat=True)[:500]
    for message_id in pending:
        send_message.delay(message_id=message_id)
    return len(pending)
