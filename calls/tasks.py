"""Thin, idempotent tasks: timers of the call lifecycle and Graph API calls that may be retried."""

import logging

from celery import shared_task

from calls.models import Call
from whatsapp.client import GraphClient
from whatsapp.errors import GraphAPIError, GraphTransportError

logger = logging.getLogger(__name__)


@shared_task(name="calls.expire_offer", acks_late=True)
def expire_offer(*, call_id: int, agent_id: int) -> bool:
    """The agent let the call ring out: back to the queue (no-op if answered or already gone)."""
    from calls.routing import offer_decline

    return offer_decline(agent_id=agent_id, call_id=call_id, has_rung_out=True) is not None


@shared_task(name="calls.end_overdue_wait", acks_late=True)
def end_overdue_wait(*, call_id: int) -> bool:
    from calls.routing import call_wait_overdue

    return call_wait_overdue(call_id=call_id) is not None


@shared_task(name="calls.end_wrap_up", acks_late=True)
def end_wrap_up(*, agent_id: int) -> bool:
    from calls.routing import wrap_up_end

    return wrap_up_end(agent_id=agent_id, is_forced=False)


@shared_task(name="calls.sweep")
def sweep() -> dict[str, int]:
    """Safety net for the timers above (a worker restart loses countdowns)."""
    from calls.routing import sweep as routing_sweep

    return routing_sweep()


def _tell_meta(call_id: int, action: str) -> None:
    call = Call.objects.select_related("business_number").filter(pk=call_id).first()
    if call is None:
        return
    with GraphClient() as graph:
        operation = graph.call_reject if action == "reject" else graph.call_terminate
        try:
            operation(phone_number_id=call.business_number.phone_number_id, call_id=call.wa_call_id)
        except GraphAPIError as error:
            if isinstance(error, GraphTransportError):
                raise
            logger.info(
                "Meta refused to %s call %s (it has probably ended): %s", action, call.wa_call_id, error
            )


@shared_task(
    name="calls.terminate_on_meta",
    acks_late=True,
    autoretry_for=(GraphTransportError,),
    retry_backoff=True,
    max_retries=3,
)
def terminate_on_meta(*, call_id: int) -> None:
    """Tell Meta a call we ended is over (Meta asks for it even after media stopped, for pricing)."""
    _tell_meta(call_id, "terminate")


@shared_task(
    name="calls.reject_on_meta",
    acks_late=True,
    autoretry_for=(GraphTransportError,),
    retry_backoff=True,
    max_retries=3,
)
def reject_on_meta(*, call_id: int) -> None:
    """Tell Meta we will not take a call we rejected (capacity, closed, no queue)."""
    _tell_meta(call_id, "reject")


CALL_US_TEXT = "Sorry we could not take your call just now. Tap below to call us again, or reply here."


@shared_task(
    name="calls.send_call_us_button",
    acks_late=True,
    autoretry_for=(GraphTransportError,),
    retry_backoff=True,
    max_retries=3,
)
def send_call_us_button(*, call_id: int) -> str:
    """After a caller waited in vain: a WhatsApp message with a call button (their call opened the
    customer-service window, so a free-form message is allowed). Returns the message id."""
    call = Call.objects.select_related("business_number", "contact").filter(pk=call_id).first()
    if call is None:
        return ""
    with GraphClient() as graph:
        try:
            return graph.message_send_call_button(
                phone_number_id=call.business_number.phone_number_id,
                to=call.contact.wa_id,
                body_text=CALL_US_TEXT,
                display_text="Call us",
                payload=f"callback:{call.pk}",
            )
        except GraphAPIError as error:
            if isinstance(error, GraphTransportError):
                raise
            logger.info("call-us button for call %s not sent: %s", call_id, error)
            return ""


@shared_task(
    name="calls.send_closed_message",
    acks_late=True,
    autoretry_for=(GraphTransportError,),
    retry_backoff=True,
    max_retries=3,
)
def send_closed_message(*, call_id: int) -> str:
    """A call outside opening hours: the queue's closed message, on WhatsApp (the call opened the
    customer-service window). Returns the message id."""
    call = Call.objects.select_related("business_number", "contact", "queue").filter(pk=call_id).first()
    if call is None or call.queue is None or not call.queue.closed_message:
        return ""
    with GraphClient() as graph:
        try:
            return graph.message_send_text(
                phone_number_id=call.business_number.phone_number_id,
                to=call.contact.wa_id,
                body=call.queue.closed_message,
            )
        except GraphAPIError as error:
            if isinstance(error, GraphTransportError):
                raise
            logger.info("closed message for call %s not sent: %s", call_id, error)
            return ""
