"""What the calls app does with Meta's call webhooks and with the agents' call frames."""

from django.core.exceptions import ValidationError
from django.utils import timezone

from calls import routing, selectors
from calls.models import Call
from calls.outbound import outbound_connect_received, outbound_terminate_received
from calls.services import InboundCall, call_create_inbound, call_record_early_terminate
from core.realtime import broadcast_on_commit, channel_send
from whatsapp.events import CallConnect, CallTerminate


def call_connect_received(event: CallConnect) -> None:
    """A customer's call (Meta's offer): record it, hand it to a media process to answer, and ring
    an agent at once if one is free (the agent's ring does not wait for Meta's answer round trips).

    Business-initiated calls' connect webhooks carry the customer's answer (calls.outbound).
    """
    if event.direction != "USER_INITIATED":
        outbound_connect_received(event)
        return
    queue = selectors.queue_for_number(phone_number_id=event.phone_number_id)
    is_open = queue is not None and selectors.queue_is_open(queue=queue, at=timezone.now())
    call = call_create_inbound(
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
    if call is not None and call.status == Call.Status.QUEUED:
        routing.call_waits(call_id=call.pk)


def call_terminate_received(event: CallTerminate) -> None:
    """Meta says the call is over: end it with the reason its state implies, and free its agent.

    A terminate that arrives before its connect is recorded as an ended call, so that the
    connect, when it comes, does nothing.
    """
    if event.direction != "USER_INITIATED":
        outbound_terminate_received(event)
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
    # A customer leaving a connected call completes it (call_end decides that).
    is_failed = call.answered_at is None and event.status == "FAILED"
    reason = Call.EndReason.FAILED if is_failed else Call.EndReason.ABANDONED
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


def _connected_call(agent_id: int, frame: dict) -> Call:
    call = Call.objects.filter(pk=_call_id(frame), agent_id=agent_id, status=Call.Status.CONNECTED).first()
    if call is None:
        raise ValidationError("That call is not connected to you.", code="not_your_call")
    return call


def _send_to_media(call: Call, message: dict) -> None:
    if not call.media_channel:
        # A media process takes a call within moments of its arrival; an agent can be quicker.
        raise ValidationError("The call's audio is not ready yet: try again.", code="media_not_ready")
    channel_send(call.media_channel, message)


def media_offer_frame(*, agent_id: int, frame: dict) -> None:
    """`{"type": "call.media_offer", "call_id": …, "sdp": …}`: the softphone's WebRTC offer.

    Goes to the media process holding the call; its answer comes back as `call.media_answer`.
    """
    call = _connected_call(agent_id, frame)
    sdp = frame.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > 20_000:
        raise ValidationError("'sdp' must be an SDP offer.", code="invalid_sdp")
    _send_to_media(call, {"type": "call.agent_offer", "call_id": call.pk, "agent_id": agent_id, "sdp": sdp})


def switch_frame(*, agent_id: int, frame: dict) -> None:
    """`{"type": "call.hold" | "call.mute", "call_id": …, "is_on": true | false}` from the softphone."""
    call = _connected_call(agent_id, frame)
    is_on = frame.get("is_on")
    if not isinstance(is_on, bool):
        raise ValidationError("'is_on' must be true or false.", code="invalid_switch")
    _send_to_media(call, {"type": frame["type"], "call_id": call.pk, "is_on": is_on})
    broadcast_on_commit(
        f"agent.{agent_id}", {"type": f"{frame['type']}.changed", "call_id": call.pk, "is_on": is_on}
    )


def hang_up_frame(*, agent_id: int, frame: dict) -> dict:
    """`{"type": "call.hangup", "call_id": …}`: the agent ends the call (and Meta is told)."""
    call = _connected_call(agent_id, frame)
    ended = routing.call_finish(
        call_id=call.pk, reason=Call.EndReason.COMPLETED, detail="the agent hung up", is_ended_by_us=True
    )
    return {"type": "call.hangup.result", "call_id": call.pk, "is_done": ended is not None}


def decline_frame(*, agent_id: int, frame: dict) -> dict:
    """`{"type": "call.decline", "call_id": …}` from the agent's browser."""
    call_id = _call_id(frame)
    call = routing.offer_decline(agent_id=agent_id, call_id=call_id)
    return {"type": "call.decline.result", "call_id": call_id, "is_done": call is not None}


def wrap_up_frame(*, agent_id: int, frame: dict) -> dict:
    """`{"type": "call.wrap_up", "call_id": …, "disposition": "resolved", "notes": "…"}`."""
    call_id = _call_id(frame)
    disposition, notes = frame.get("disposition"), frame.get("notes", "")
    if disposition not in Call.Disposition.values or not isinstance(notes, str):
        raise ValidationError("Pick a disposition; notes are text.", code="invalid_wrap_up")
    is_filed = routing.call_wrap_up(agent_id=agent_id, call_id=call_id, disposition=disposition, notes=notes)
    if not is_filed:
        raise ValidationError("Only an ended call you took can be filed.", code="not_your_call")
    return {"type": "call.wrap_up.result", "call_id": call_id, "is_filed": True}
