"""What the calls app does with Meta's call webhooks and with the agents' call frames."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from agents.models import Agent
from agents.presence import wrap_up_draft_delete, wrap_up_draft_save
from agents.selectors import numbers_for_agent, queue_for_number
from calls import routing, selectors
from calls.models import Call
from calls.outbound import (
    CallRefused,
    call_cancel_outbound,
    call_place_outbound,
    outbound_connect_received,
    outbound_terminate_received,
)
from calls.services import (
    InboundCall,
    call_create_inbound,
    call_hold_set,
    call_is_too_late,
    call_record_early_terminate,
    call_record_late_connect,
    calls_queue_inbound_many,
)
from compliance.decisions import Decision, call_decide
from compliance.services import fallback_send
from core.realtime import broadcast_on_commit, channel_send
from messaging.models import Contact
from messaging.selectors import contact_or_unsaved
from messaging.services import CallTalk, call_charges_record, customer_wa_id_from_text
from whatsapp.events import CallConnect, CallTerminate
from whatsapp.models import BusinessNumber


def call_connect_received(event: CallConnect) -> None:
    """A customer's call (Meta's offer): record it, hand it to a media process to answer, and ring
    an agent at once if one is free (the agent's ring does not wait for Meta's answer round trips).

    A connect delivered after Meta's accept window (a retried delivery) is recorded as ended
    `too_late` and nothing else. Business-initiated calls' connect webhooks carry the customer's
    answer (calls.outbound).
    """
    if event.direction != "USER_INITIATED":
        outbound_connect_received(event)
        return
    if _record_if_too_late(event, received_at=timezone.now()):
        return
    queue = queue_for_number(phone_number_id=event.phone_number_id)
    is_open = queue is not None and selectors.queue_is_open(queue=queue, at=timezone.now())
    call = call_create_inbound(inbound=_inbound(event), queue_id=queue.pk if queue else None, is_open=is_open)
    if call is not None and call.status == Call.Status.QUEUED:
        routing.call_waits(call_id=call.pk)


def calls_connect_received(events: list[CallConnect]) -> None:
    """Many connect webhooks received together (a burst of callers): what `call_connect_received`
    does for each, with the calls to an open queue recorded in bulk and routed in one pass."""
    by_number: dict[str, list[CallConnect]] = {}
    received_at = timezone.now()
    for event in events:
        if event.direction == "USER_INITIATED":
            if _record_if_too_late(event, received_at=received_at):
                continue
            by_number.setdefault(event.phone_number_id, []).append(event)
        else:
            outbound_connect_received(event)
    for phone_number_id, connects in by_number.items():
        queue = queue_for_number(phone_number_id=phone_number_id)
        if queue is None or not selectors.queue_is_open(queue=queue, at=timezone.now()):
            for event in connects:
                call_connect_received(event)  # rejected, each with its reason
            continue
        calls, beyond_capacity = calls_queue_inbound_many(
            inbounds=[_inbound(event) for event in connects], queue_id=queue.pk
        )
        for inbound in beyond_capacity:
            call_create_inbound(inbound=inbound, queue_id=queue.pk, is_open=True)
        if calls:
            routing.calls_wait_many(queue=queue, call_ids=[call.pk for call in calls])


def _record_if_too_late(event: CallConnect, *, received_at: datetime) -> bool:
    """A customer's call that was over before it reached us: recorded as such (True), or fresh."""
    if not call_is_too_late(connected_at=event.occurred_at, received_at=received_at):
        return False
    call_record_late_connect(inbound=_inbound(event), connected_at=event.occurred_at, received_at=received_at)
    return True


def _inbound(event: CallConnect) -> InboundCall:
    return InboundCall(
        wa_call_id=event.call_id,
        phone_number_id=event.phone_number_id,
        from_number=event.from_number,
        contact_name=event.contact_name,
        sdp_offer=event.sdp,
        cta_payload=event.cta_payload,
        deeplink_payload=event.deeplink_payload,
    )


def call_terminate_received(event: CallTerminate) -> None:
    """Meta says the call is over: end it with the reason its state implies, and free its agent.

    A terminate that arrives before its connect is recorded as an ended call, so that the
    connect, when it comes, does nothing.
    """
    calls_terminate_received([event])


def calls_terminate_received(events: list[CallTerminate]) -> None:
    """Many terminate webhooks received together (a burst of calls ending): what
    `call_terminate_received` does for each, with the customers' calls read in one query and ended
    together (calls.routing.calls_finish_many)."""
    inbound = []
    for event in events:
        if event.direction == "USER_INITIATED":
            inbound.append(event)
        else:
            outbound_terminate_received(event)
    if not inbound:
        return
    calls = {
        call.wa_call_id: call
        for call in Call.objects.filter(wa_call_id__in={event.call_id for event in inbound}).select_related(
            "business_number", "contact"
        )
    }
    ends: dict[Call, tuple[str, str]] = {}
    for event in inbound:
        call = calls.get(event.call_id)
        if call is None:
            call_record_early_terminate(
                wa_call_id=event.call_id,
                phone_number_id=event.phone_number_id,
                from_number=event.from_number,
                reason=Call.EndReason.ABANDONED if event.status == "COMPLETED" else Call.EndReason.FAILED,
            )
            continue
        # A customer leaving a connected call completes it (call_end decides that).
        is_failed = call.answered_at is None and event.status == "FAILED"
        reason = Call.EndReason.FAILED if is_failed else Call.EndReason.ABANDONED
        detail = "; ".join(f"{error.code} {error.message or error.title}".strip() for error in event.errors)
        ends.setdefault(call, (reason, detail or f"Meta: {event.status.lower()}"))
    routing.calls_finish_many(ends=ends)
    # Meta's own duration of each answered customer's call, whoever ended it and whenever we heard:
    # the inbound minutes of the ROI report (free; what it would have cost as a business call).
    talks = [
        CallTalk(
            wa_call_id=call.wa_call_id,
            business_number=call.business_number,
            customer_wa_id=call.contact.wa_id,
            is_business_initiated=False,
            talk_seconds=event.duration_s,
            ended_at=event.ended_at or timezone.now(),
        )
        for event in inbound
        if (call := calls.get(event.call_id)) is not None
        and event.was_answered
        and event.duration_s is not None
    ]
    call_charges_record(talks=talks, is_metas_duration=True)


# The business numbers a socket acts for: None for all the agent's, a call widget's key's numbers
# for the widget's socket (agents.consumers).
Within = frozenset[int] | None


def _call_id(frame: dict, within: Within) -> int:
    call_id = frame.get("call_id")
    if not isinstance(call_id, int) or isinstance(call_id, bool) or call_id < 1:
        raise ValidationError("'call_id' must be a call's id.", code="invalid_call")
    if within is not None and not Call.objects.filter(pk=call_id, business_number_id__in=within).exists():
        raise ValidationError(
            "That call is of a business number this widget does not serve.", code="not_your_call"
        )
    return call_id


def accept_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.accept", "call_id": …}` from the agent's browser."""
    call_id = _call_id(frame, within)
    call = routing.offer_accept(agent_id=agent_id, call_id=call_id)
    return {"type": "call.accept.result", "call_id": call_id, "is_won": call is not None}


def _connected_call(agent_id: int, frame: dict, within: Within) -> Call:
    call = Call.objects.filter(
        pk=_call_id(frame, within), agent_id=agent_id, status=Call.Status.CONNECTED
    ).first()
    if call is None:
        raise ValidationError("That call is not connected to you.", code="not_your_call")
    return call


def _send_to_media(call: Call, message: dict) -> None:
    if not call.media_channel:
        # A media process takes a call within moments of its arrival; an agent can be quicker.
        raise ValidationError("The call's audio is not ready yet: try again.", code="media_not_ready")
    channel_send(call.media_channel, message)


def media_offer_frame(*, agent_id: int, frame: dict, within: Within = None) -> None:
    """`{"type": "call.media_offer", "call_id": …, "sdp": …}`: the softphone's WebRTC offer.

    Goes to the media process holding the call; its answer comes back as `call.media_answer`.
    """
    call = _connected_call(agent_id, frame, within)
    sdp = frame.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > 20_000:
        raise ValidationError("'sdp' must be an SDP offer.", code="invalid_sdp")
    _send_to_media(call, {"type": "call.agent_offer", "call_id": call.pk, "agent_id": agent_id, "sdp": sdp})


def switch_frame(*, agent_id: int, frame: dict, within: Within = None) -> None:
    """`{"type": "call.hold" | "call.mute", "call_id": …, "is_on": true | false}` from the softphone.

    The media process switches the audio; a hold is also recorded on the call once the media
    process has been told (hold time counts in the handle time that supervisors read).
    """
    call = _connected_call(agent_id, frame, within)
    is_on = frame.get("is_on")
    if not isinstance(is_on, bool):
        raise ValidationError("'is_on' must be true or false.", code="invalid_switch")
    _send_to_media(call, {"type": frame["type"], "call_id": call.pk, "is_on": is_on})
    if frame["type"] == "call.hold":
        call_hold_set(call_id=call.pk, agent_id=agent_id, is_on=is_on)
    broadcast_on_commit(
        f"agent.{agent_id}", {"type": f"{frame['type']}.changed", "call_id": call.pk, "is_on": is_on}
    )


def hang_up_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.hangup", "call_id": …}`: the agent ends the call (and Meta is told), or
    gives up a call of theirs that the customer has not picked up yet."""
    if call_cancel_outbound(call_id=_call_id(frame, within), agent_id=agent_id):
        return {"type": "call.hangup.result", "call_id": frame["call_id"], "is_done": True}
    call = _connected_call(agent_id, frame, within)
    ended = routing.call_finish(
        call_id=call.pk, reason=Call.EndReason.COMPLETED, detail="the agent hung up", is_ended_by_us=True
    )
    return {"type": "call.hangup.result", "call_id": call.pk, "is_done": ended is not None}


def decline_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.decline", "call_id": …}` from the agent's browser."""
    call_id = _call_id(frame, within)
    call = routing.offer_decline(agent_id=agent_id, call_id=call_id)
    return {"type": "call.decline.result", "call_id": call_id, "is_done": call is not None}


def wrap_up_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.wrap_up", "call_id": …, "disposition": "resolved", "notes": "…",
    "next_status": "available" | "away"}`: file the call, and be available (the default) or away."""
    call_id = _call_id(frame, within)
    disposition, notes = frame.get("disposition"), frame.get("notes", "")
    if disposition not in Call.Disposition.values or not isinstance(notes, str):
        raise ValidationError("Pick a disposition; notes are text.", code="invalid_wrap_up")
    next_status = frame.get("next_status", Agent.Status.AVAILABLE)
    if next_status not in routing.NEXT_STATUSES_AFTER_FILING:
        raise ValidationError("After filing you are available or away.", code="invalid_wrap_up")
    is_filed = routing.call_wrap_up(
        agent_id=agent_id, call_id=call_id, disposition=disposition, notes=notes, next_status=next_status
    )
    if not is_filed:
        raise ValidationError("Only an ended call you took can be filed.", code="not_your_call")
    return {"type": "call.wrap_up.result", "call_id": call_id, "is_filed": True}


def wrap_up_draft_frame(*, agent_id: int, frame: dict, within: Within = None) -> None:
    """`{"type": "call.wrap_up_draft", "call_id": …, "disposition": "" | …, "notes": "…"}`: what the
    agent has typed so far, kept until the call is filed; every tab of the agent mirrors it."""
    call_id = _call_id(frame, within)
    disposition, notes = frame.get("disposition", ""), frame.get("notes", "")
    if (disposition != "" and disposition not in Call.Disposition.values) or not isinstance(notes, str):
        raise ValidationError("A draft has a disposition or none, and notes as text.", code="invalid_wrap_up")
    if selectors.call_to_file(agent_id=agent_id) != call_id:
        raise ValidationError(
            "Only your last call, ended and not filed yet, has a draft.", code="not_your_call"
        )
    draft = {"call_id": call_id, "disposition": disposition, "notes": notes[: routing.WRAP_UP_NOTES_MAX]}
    wrap_up_draft_save(agent_id=agent_id, **draft)
    if selectors.call_to_file(agent_id=agent_id) != call_id:  # filed from another tab meanwhile
        wrap_up_draft_delete(agent_id=agent_id, call_id=call_id)
        return
    broadcast_on_commit(f"agent.{agent_id}", {"type": "call.wrap_up_draft", **draft})


def _dialed(number: BusinessNumber, frame: dict) -> Contact:
    """The customer a dialer frame names, read as the API reads it (international, or national in
    the business number's country): the contact we know, or an unsaved one (nothing is written)."""
    wa_id = customer_wa_id_from_text(frame.get("customer"), business_number=number)
    return contact_or_unsaved(wa_id=wa_id)


def _with_error(answer: dict, error: ValidationError) -> dict:
    """A dialer frame refused (a number that is not one, the agent busy, WhatsApp's refusal): the
    error comes in the dialer's own answer, which shows it next to the number."""
    return {**answer, "error": {"code": error.code or "invalid", "message": " ".join(error.messages)}}


def _agent_number(agent_id: int, frame: dict, within: Within) -> BusinessNumber:
    number_id = frame.get("business_number_id")
    numbers = numbers_for_agent(agent_id=agent_id)
    if within is not None:
        numbers = numbers.filter(pk__in=within)
    number = (
        numbers.filter(pk=number_id).first()
        if isinstance(number_id, int) and not isinstance(number_id, bool)
        else None
    )
    if number is None:
        raise ValidationError("Choose one of your queues' business numbers.", code="invalid_number")
    return number


def _user_of(agent_id: int) -> int:
    return Agent.objects.filter(pk=agent_id).values_list("user_id", flat=True).get()


def decision_frame(decision: Decision) -> dict:
    """A decision as the dashboard shows it: a refused call's reasons and fallback, what an allowed
    call rests on, and the warnings either way."""
    fallback = decision.fallback
    return {
        "refusals": [
            {"code": refusal.code, "reason": refusal.reason,
             "clears_at": refusal.clears_at.isoformat() if refusal.clears_at else None}
            for refusal in decision.refusals
        ],
        "fallback": {"kind": fallback.kind, "reason": fallback.reason} if fallback else None,
        "warnings": [{"code": warning.code, "text": warning.text} for warning in decision.warnings],
        "allowed_because": decision.allowed_because,
    }  # fmt: skip


def dial_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.dial", "business_number_id": …, "customer": "+44…"}`: click-to-call. The
    compliance engine decides first; a refusal comes back with its reasons and the fallback, a
    frame that cannot be placed with its `error`. Only a placed call makes a contact."""
    answer = {"type": "call.dial.result", "is_placed": False}
    try:
        number = _agent_number(agent_id, frame, within)
        contact = _dialed(number, frame)
        answer |= {
            "customer": str(contact), "customer_number": f"+{contact.wa_id}", "business_number_id": number.pk,
        }  # fmt: skip
        call = call_place_outbound(
            business_number=number, contact=contact, agent_id=agent_id, user_id=_user_of(agent_id)
        )
    except CallRefused as refused:
        return {**answer, **decision_frame(refused.decision)}
    except ValidationError as error:
        return _with_error(answer, error)
    return {**answer, "is_placed": True, "call_id": call.pk}


def check_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.check", "check_id": n, "business_number_id": …, "customer": "+44…"}`: may the
    agent call this customer now? The decision without placing anything (nor making a contact); a
    frame that names no number to call from or no customer comes back with its `error`."""
    check_id = frame.get("check_id")
    answer = {
        "type": "call.check.result",
        "check_id": check_id if isinstance(check_id, int) and not isinstance(check_id, bool) else None,
    }
    try:
        number = _agent_number(agent_id, frame, within)
        contact = _dialed(number, frame)
    except ValidationError as error:
        return {**_with_error(answer, error), "is_allowed": False}
    decision = call_decide(business_number=number, contact=contact)
    return {
        **answer,
        "customer": str(contact),
        "customer_number": f"+{contact.wa_id}",
        "business_number_id": number.pk,
        "is_allowed": decision.is_allowed,
        **decision_frame(decision),
    }


def fallback_frame(*, agent_id: int, frame: dict, within: Within = None) -> dict:
    """`{"type": "call.fallback", "business_number_id": …, "customer": …, "kind": "permission_request" |
    "call_button"}`: send the fallback a refused call offered; what was sent (`message`), or why not
    (`error`, Meta's refusals as what they mean for the agent)."""
    kind = frame.get("kind")
    answer = {"type": "call.fallback.result", "kind": kind if isinstance(kind, str) else None}
    try:
        number = _agent_number(agent_id, frame, within)
        message = fallback_send(
            kind=kind,
            business_number=number,
            contact=_dialed(number, frame),
            requested_by_id=_user_of(agent_id),
        )
    except ValidationError as error:
        return _with_error(answer, error)
    return {**answer, "message": message}
