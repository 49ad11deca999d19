import logging
from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from messaging.models import Message
from messaging.services import (
    SEND_LEASE,
    message_media_failed,
    message_media_fetch,
    message_send_recorded,
    templates_sync,
)
from whatsapp.client import GraphClient
from whatsapp.errors import GraphAPIError, GraphTransportError
from whatsapp.models import BusinessNumber

logger = logging.getLogger(__name__)

MAX_SEND_ATTEMPTS = 5  # after this many attempts a message that could not be sent is failed


@shared_task(
    name="messaging.send_message", autoretry_for=(GraphTransportError,), retry_backoff=True, max_retries=3
)
def send_message(*, message_id: int) -> str:
    """Send a recorded message (messaging.services.message_send_recorded); a transport error is
    retried."""
    with GraphClient() as graph:
        return message_send_recorded(message_id=message_id, graph=graph)


@shared_task(name="messaging.send_pending")
def send_pending() -> int:
    """Safety sweep: queue again the sends of messages still pending a minute after they were recorded
    or taken (a task lost with the broker, a worker that stopped); fail those tried too often. A
    campaign's messages are left to its sender (paced, paused, slowed down by Meta's throughput)."""
    now = timezone.now()
    # A campaign's messages are its own sender's to send, at its pace (campaigns.services).
    stale = Message.objects.filter(status=Message.Status.PENDING, campaign_recipient__isnull=True).filter(
        Q(send_claimed_at__isnull=True, created_at__lt=now - SEND_LEASE)
        | Q(send_claimed_at__lt=now - SEND_LEASE)
    )
    stale.filter(send_attempts__gte=MAX_SEND_ATTEMPTS).update(
        status=Message.Status.FAILED, failed_at=now, error=f"not sent after {MAX_SEND_ATTEMPTS} attempts"
    )
    pending = list(stale.filter(send_attempts__lt=MAX_SEND_ATTEMPTS).values_list("pk", flat=True)[:500])
    for message_id in pending:
        send_message.delay(message_id=message_id)
    return len(pending)


@shared_task(
    name="messaging.sync_templates", autoretry_for=(GraphTransportError,), retry_backoff=True, max_retries=3
)
def sync_templates() -> int:
    """Keep every account's templates in step with Meta's list (hourly, and `manage.py sync_templates`):
    how many were added, updated or disabled."""
    waba_ids = BusinessNumber.objects.values_list("waba_id", flat=True).distinct()
    changed = 0
    with GraphClient() as graph:
        for waba_id in waba_ids:
            try:
                changed += sum(templates_sync(waba_id=waba_id, graph=graph))
            except GraphTransportError:
                raise
            except GraphAPIError as error:
                logger.warning("templates of account %s not synced: %s", waba_id, error)
    return changed


MEDIA_FETCH_RETRIES = 5
MEDIA_RETRY_DELAY_S = 10  # doubled each retry: about 5 minutes in all


@shared_task(bind=True, name="messaging.fetch_media", max_retries=MEDIA_FETCH_RETRIES, acks_late=True)
def fetch_media(self, *, message_id: int) -> bool:
    """Fetch and keep the file of a customer's message (`message_media_fetch`): True when stored now,
    False when there was nothing to fetch or Meta refused it (marked on the message). While Meta
    cannot be reached or throttles, retried with backoff; after the last retry the message is marked
    failed."""
    with GraphClient() as graph:
        try:
            return message_media_fetch(message_id=message_id, graph=graph)
        except GraphAPIError as error:  # a transient one: the service marks the others
            if self.request.retries >= self.max_retries:
                message_media_failed(
                    message_id=message_id,
                    error=f"WhatsApp could not be reached, {self.max_retries} retries: {error}",
                )
                return False
            raise self.retry(exc=error, countdown=MEDIA_RETRY_DELAY_S * 2**self.request.retries) from None


MEDIA_SWEEP_AFTER = timedelta(minutes=10)  # longer than a fetch's retries take
MEDIA_SWEEP_WITHIN = timedelta(days=7)


@shared_task(name="messaging.fetch_pending_media")
def fetch_pending_media() -> int:
    """Safety sweep: queue again the fetches of files still pending ten minutes after their message
    arrived (a task lost with the broker, a worker that stopped); how many."""
    now = timezone.now()
    pending = list(
        Message.objects.filter(
            media_status=Message.MediaStatus.PENDING,
            created_at__lt=now - MEDIA_SWEEP_AFTER,
            created_at__gt=now - MEDIA_SWEEP_WITHIN,
        ).values_list("pk", flat=True)[:500]
    )
    for message_id in pending:
        fetch_media.delay(message_id=message_id)
    return len(pending)


@shared_task(name="messaging.send_read_receipt")
def send_read_receipt(*, message_id: int, is_typing: bool = False) -> bool:
    """Tell the customer their message was read by an agent (blue ticks) and, with `is_typing`, that a
    reply is being typed (messaging.inbox): whether Meta took it. Nothing is retried (a later read or
    keystroke sends again) and a refusal is logged, never shown to the agent."""
    message = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.INBOUND)
        .exclude(wa_message_id__isnull=True)
        .select_related("business_number")
        .first()
    )
    if message is None or not message.wa_message_id:
        return False
    with GraphClient() as graph:
        try:
            graph.message_mark_read(
                phone_number_id=message.business_number.phone_number_id,
                message_id=message.wa_message_id,
                is_typing=is_typing,
            )
        except GraphAPIError as error:
            logger.warning("read receipt for message %s not taken by Meta: %s", message_id, error)
            return False
    return True
