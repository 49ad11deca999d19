"""Thin, idempotent tasks: timers of the call lifecycle and Graph API calls that may be retried."""

import logging
from collections.abc import Callable

from celery import shared_task

from calls.models import Call
from calls.outbound import PENDING_PREFIX
from messaging.services import message_send_now
from whatsapp.client import GraphClient, GraphRequest, call_button_message_request, text_message_request
from whatsapp.errors import GraphAPIError, GraphTransportError

logger = logging.getLogger(__name__)


@shared_task(name="calls.expire_offer", acks_late=True)
def expire_offer(*, call_id: int, agent_id: int) -> bool:
    """The agent let the call ring out: back to the queue (no-op if answered or already gone)."""
    from calls.routing import offer_decline

    return offer_decline(agent_id=agent_id, call_id=call_id, has_rung_out=True) is not None


@shared_task(name="calls.expire_offers", acks_late=True)
def expire_offers(*, offers: list[list[int]]) -> int:
    """`expire_offer` for the offers of one routing round ([call id, agent id] each): how many rang out."""
    return sum(expire_offer(call_id=call_id, agent_id=agent_id) for call_id, agent_id in offers)


@shared_task(name="calls.end_overdue_waits", acks_late=True)
def end_overdue_waits(*, call_ids: list[int]) -> int:
    """`end_overdue_wait` for calls that joined their queue together: how many waited too long."""
    return sum(end_overdue_wait(call_id=call_id) for call_id in call_ids)


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


GRAPH_RETRY = {
    "acks_late": True,
    "autoretry_for": (GraphTransportError,),
    "retry_backoff": True,
    "max_retries": 3,
}
CALL_US_TEXT = "Sorry we could not take your call just now. Tap below to call us again, or reply here."
CALL_DROPPED_TEXT = "Sorry, we lost your call on our side. Tap below to call us again, or reply here."


def _graph_for_call(call_id: int, what: str, operation: Callable[[GraphClient, Call], str | None]) -> str:
    """Run one Graph API operation about a call. Meta's refusals are logged, not retried (the
    call has usually moved on); transport errors are raised for the task's bounded retries."""
    call = Call.objects.select_related("business_number", "contact", "queue").filter(pk=call_id).first()
    if call is None or call.wa_call_id.startswith(PENDING_PREFIX):
        return ""  # gone, or never named by Meta (a late webhook naming it ends it on Meta then)
    with GraphClient() as graph:
        try:
            return operation(graph, call) or ""
        except GraphAPIError as error:
            if isinstance(error, GraphTransportError):
                raise
            logger.info("%s for call %s refused by Meta: %s", what, call.wa_call_id, error)
            return ""


def _send_about(call: Call, request: GraphRequest, *, text: str, graph: GraphClient) -> str:
    """A message about a call, recorded in the customer's thread and sent at once: its `wamid`."""
    return message_send_now(
        business_number=call.business_number, contact=call.contact, request=request, text=text, graph=graph
    ).wa_message_id


def _ids(call: Call) -> dict[str, str]:
    return {"phone_number_id": call.business_number.phone_number_id, "call_id": call.wa_call_id}


@shared_task(name="calls.terminate_on_meta", **GRAPH_RETRY)
def terminate_on_meta(*, call_id: int) -> None:
    """Tell Meta a call we ended is over (Meta asks for it even after media stopped, for pricing)."""
    _graph_for_call(call_id, "terminate", lambda graph, call: graph.call_terminate(**_ids(call)))


@shared_task(name="calls.reject_on_meta", **GRAPH_RETRY)
def reject_on_meta(*, call_id: int) -> None:
    """Tell Meta we will not take a call we rejected (capacity, closed, no queue)."""
    _graph_for_call(call_id, "reject", lambda graph, call: graph.call_reject(**_ids(call)))


@shared_task(name="calls.send_call_us_button", **GRAPH_RETRY)
def send_call_us_button(*, call_id: int, is_dropped: bool = False) -> str:
    """After a caller waited in vain, or (`is_dropped`) their call was lost on our side: a WhatsApp
    message with a call button (their call opened the customer-service window, so a free-form
    message is allowed). Returns the message id."""
    text = CALL_DROPPED_TEXT if is_dropped else CALL_US_TEXT

    def send(graph: GraphClient, call: Call) -> str:
        request = call_button_message_request(
            phone_number_id=call.business_number.phone_number_id,
            to=call.contact.wa_id,
            body_text=text,
            display_text="Call us",
            payload=f"callback:{call.pk}",
        )
        return _send_about(call, request, text=text, graph=graph)

    return _graph_for_call(call_id, "call-us button", send)


@shared_task(name="calls.send_closed_message", **GRAPH_RETRY)
def send_closed_message(*, call_id: int) -> str:
    """A call outside opening hours: the queue's closed message, on WhatsApp (the call opened the
    customer-service window). Returns the message id."""

    def send(graph: GraphClient, call: Call) -> str | None:
        if call.queue is None or not call.queue.closed_message:
            return None
        request = text_message_request(
            phone_number_id=call.business_number.phone_number_id,
            to=call.contact.wa_id,
            body=call.queue.closed_message,
        )
        return _send_about(call, request, text=call.queue.closed_message, graph=graph)

    return _graph_for_call(call_id, "closed message", send)
