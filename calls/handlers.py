"""What the calls app does with Meta's call webhooks and with the agents' call frames."""

from django.core.exceptions import ValidationError
from django.utils import timezone

from calls import routing, selectors
from calls.models import Call
from calls.services import InboundCall, call_create_inbound, call_record_early_terminate
from whatsapp.events import CallConnect, CallTerminate


def call_connect_received(event: CallConnect) -> None:
    """A customer's call (Meta's offer): record it and hand it to a media process.

    Business-initiated calls' connect webhooks carry Meta's answer; they belong to outbound
    calling, which is not handled here yet, and are left as they are.
    """
    if event.direction != "USER_INITIATED":
        return
    queue = selectors.queue_for_number(phone_number_id=event.phone_number_id)
    is_open = queue is not None and selectors.queue_is_open(queue=queue, at=timezone.now())
    call_create_inbound(
        inbound=InboundCall(
            wa_call_id=event.call_id,
            phone_number_id=event.phone_number_id,
            from_number=event.from_number,
            contact_name=event.contact_name,
            sdp_offer=event.sdp,
            cta_payload=event.cta_payload,
            deeplink_payload=event.deeplink_payload,
        ),
        queue_id=queue.pk if queue else None,
        is_open=is_open,
    )


def call_terminate_received(event: CallTerminate) -> None:
    """Meta says the call is over: end it with the reason its state implies, and free its agent.

    A terminate that arrives before its connect is recorded as an ended call, so that the
    connect, when it comes, does nothing.
    """
    if event.direction != "USER_INITIATED":
        return
    call = Call.objects.filter(wa_call_id=event.call_id).first()
    if call is None:
        call_record_early_terminate(
            wa_call_id=event.call_id,
            phone_number_id=event.phone_number_id,
            from_number=event.from_number,
            reason=Call.EndReason.ABANDONED if event.status == "COMPLETED" else Call.EndReason.FAILED,
        )
        return
    if call.status == Call.Status.CONNECTED:
        reason = Call.EndReason.COMPLETED
    elif call.status == Call.Status.RINGING and event.status == "FAILED":
        reason = Call.EndReason.FAILED
    else:
        reason = Call.EndReason.ABANDONED
    detail = "; ".join(f"{error.code} {error.message or error.title}".strip() for error in event.errors)
    routing.call_finish(call_id=call.pk, reason=reason, detail=detail or f"Meta: {event.status.lower()}")


def _call_id(frame: dict) -> int:
    call_id = frame.get("call_id")
    if not isinstance(call_id, int) or isinstance(call_id, bool) or call_id < 1:
        raise ValidationError("'call_id' must be a call's id.", code="invalid_call")
    return call_id


def accept_frame(*, agent_id: int, frame: dict) -> dict:
    """`{"type": "call.accept", "call_id": …}` from the agent's browser."""
    call_id = _call_id(frame)
    call = routing.offer_accept(agent_id=agent_id, call_id=call_id)
    return {"type": "call.accept.result", "call_id": call_id, "is_won": call is not None}


def decline_frame(*, agent_id: int, frame: dict) -> dict:
    """`{"type": "call.decline", "call_id": …}` from the agent's browser."""
    call_id = _call_id(frame)
    call = routing.offer_decline(agent_id=agent_id, call_id=call_id)
    return {"type": "call.decline.result", "call_id": call_id, "is_done": call is not None}
