"""Business-initiated calls (DESIGN.md §4, outbound): dialing → ringing → connected → ended.

The compliance engine decides first and every refusal says why. Placing a call takes one of the
number's outbound slots and records the call in one transaction, with the pair's permission row
locked, so that two agents cannot both call the customer; a media process then makes the SDP offer
and sends Meta's `connect` (after commit). Meta's webhooks move the call on: `connect` carries
the customer's SDP answer (it can come before the real pick-up, so it connects nothing), status
RINGING, ACCEPTED (connected) or REJECTED, and `terminate` ends it. How a call ended counts for
the customer's permission: a connected call clears the strikes, an unanswered or declined one is
a strike (the 4th in a row revokes).
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from agents.services import agent_transition
from calls import routing
from calls.models import Call, CallEvent
from calls.services import MEDIA_CHANNEL, _move, _wallboard_changed, capacity_claim
from compliance.decisions import Decision, call_decide
from compliance.models import CallPermission
from compliance.services import (
    permission_reconcile_meta_error,
    permission_record_call_outcome,
    permission_record_call_placed,
)
from core.jobs import enqueue_on_commit
from core.realtime import broadcast_on_commit, send_on_commit
from messaging.models import Contact
from messaging.services import call_charge_record, contact_get_or_create, windows_customer_wrote
from whatsapp.events import CallConnect, CallStatus, CallTerminate
from whatsapp.models import BusinessNumber

logger = logging.getLogger(__name__)

PENDING_PREFIX = "pending."  # a placed call's id until Meta names it
CALLBACK_PREFIX = "switchboard-call:"  # biz_opaque_callback_data: Meta echoes it in the call's webhooks
# An agent places calls when not ringing or on another one (wrap-up ends by placing a call).
AGENT_CAN_DIAL_FROM = frozenset({Agent.Status.AVAILABLE, Agent.Status.AWAY, Agent.Status.WRAP_UP})
# Meta's own codes that our permission state should have foreseen (WHATSAPP_API.md §7).
RECONCILED_CODES = frozenset({138006, 138009, 138012})


class CallRefused(Exception):
    """The compliance engine refused the call: `decision` holds every reason and the fallback."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(" ".join(refusal.reason for refusal in decision.refusals))
        self.decision = decision


def call_place_outbound(
    *,
    business_number: BusinessNumber,
    contact: Contact,
    agent_id: int | None = None,
    user_id: int | None = None,
) -> Call:
    """Place a business-initiated call to `contact`, for the agent who will talk (`agent_id`).

    Raises CallRefused before anything is written or sent when a rule refuses it (ValidationError
    `busy`, saying why, when the agent is offline, ringing or on another call); otherwise the call
    is `dialing`, holds an outbound slot, counts as placed for the permission, its agent is on the
    call, and a media process is asked to dial it. `contact` may be unsaved (a customer we never
    spoke to): it is saved only with a placed call, so a refusal writes nothing.
    """
    with transaction.atomic():
        # The pair's permission row serialises placements, strikes and replies: the decision is
        # taken with it locked, so nothing changes the permission between deciding and placing.
        CallPermission.objects.select_for_update().filter(
            business_number=business_number, contact_id=contact.pk
        ).first()
        decision = call_decide(business_number=business_number, contact=contact)
        if not decision.is_allowed:
            raise CallRefused(decision)
        if not capacity_claim(business_number_id=business_number.pk, direction=Call.Direction.OUTBOUND):
            raise CallRefused(call_decide(business_number=business_number, contact=contact))
        if agent_id is not None and not agent_transition(
            agent_id=agent_id, allowed_from=AGENT_CAN_DIAL_FROM, to_status=Agent.Status.ON_CALL
        ):
            raise ValidationError(_cannot_dial_reason(agent_id), code="busy")
        if contact.pk is None:
            contact = contact_get_or_create(wa_id=contact.wa_id)
        now = timezone.now()
        call = Call.objects.create(
            wa_call_id=f"{PENDING_PREFIX}{uuid.uuid4().hex}",
            business_number=business_number,
            contact=contact,
            direction=Call.Direction.OUTBOUND,
            status=Call.Status.DIALING,
            agent_id=agent_id,
            started_at=now,
        )
        CallEvent.objects.create(
            call=call, from_status="", to_status=Call.Status.DIALING, at=now, agent_id=agent_id
        )
        permission_record_call_placed(
            business_number_id=business_number.pk, contact_id=contact.pk, at=now, actor_id=user_id
        )
        send_on_commit(MEDIA_CHANNEL, {"type": "call.dial", "call_id": call.pk})
        _wallboard_changed(call.pk)
    return call


# Why an agent in each status cannot place a call (the API answers them as `busy`, with this detail).
CANNOT_DIAL_REASONS = {
    Agent.Status.OFFLINE: "You are offline: go available or away to place calls.",
    Agent.Status.RINGING: "A call is ringing for you: accept or decline it before placing one.",
    Agent.Status.ON_CALL: "Finish the call you are on first.",
}


def _cannot_dial_reason(agent_id: int) -> str:
    status = Agent.objects.filter(pk=agent_id).values_list("status", flat=True).first()
    if status is None:
        return "There is no such agent to place the call for."
    return CANNOT_DIAL_REASONS.get(status, "Your status changed meanwhile: try again.")


def callback_data_for(call: Call) -> str:
    return f"{CALLBACK_PREFIX}{call.pk}"


def call_outbound_dialed(*, call_id: int, wa_call_id: str) -> bool:
    """Meta took the `connect` and named the call: its webhooks will carry this id."""
    return bool(
        Call.objects.filter(pk=call_id, wa_call_id__startswith=PENDING_PREFIX).update(
            wa_call_id=wa_call_id, updated_at=timezone.now()
        )
    )


def outbound_dial_failed(*, call_id: int, error: Exception) -> None:
    """The media process could not dial: Meta refused the `connect` (its reason reconciles the
    permission where it should have been foreseen) or the offer could not be made. No strike:
    the customer's phone never rang."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return
    code = getattr(error, "code", None)
    if code in RECONCILED_CODES:
        permission_reconcile_meta_error(
            business_number_id=call.business_number_id, contact_id=call.contact_id, code=code,
            message=getattr(error, "message", ""), error_data=getattr(error, "error_data", None),
        )  # fmt: skip
    routing.call_finish(call_id=call_id, reason=Call.EndReason.FAILED, detail=f"not dialled: {error}"[:255])


def _outbound_call(call_id: str, callback_data: str) -> Call | None:
    """The call a webhook is about: by Meta's id, or by our own id echoed in the callback data (a
    webhook can overtake the media process recording Meta's id)."""
    call = Call.objects.filter(wa_call_id=call_id, direction=Call.Direction.OUTBOUND).first()
    if call is None and callback_data.startswith(CALLBACK_PREFIX):
        pk = callback_data.removeprefix(CALLBACK_PREFIX)
        call = Call.objects.filter(
            pk=int(pk) if pk.isdigit() else 0, direction=Call.Direction.OUTBOUND
        ).first()
        if call is not None and call_outbound_dialed(call_id=call.pk, wa_call_id=call_id):
            call.wa_call_id = call_id
            if not call.is_live:
                # We gave the call up before Meta named it (the connect timed out, the agent
                # hung up): Meta placed it all the same, so end it there too.
                from calls.tasks import terminate_on_meta

                enqueue_on_commit(terminate_on_meta, call_id=call.pk)
    return call


def outbound_connect_received(event: CallConnect) -> None:
    """Meta's `connect` for our call carries the customer's SDP answer: to the media process that
    dialled it. Not a pick-up: the call connects on status ACCEPTED."""
    call = _outbound_call(event.call_id, event.biz_opaque_callback_data)
    if call is None or not call.is_live:
        return
    if not call.media_channel:
        logger.warning("answer for outbound call %s arrived before a media process held it", call.pk)
        return
    send_on_commit(call.media_channel, {"type": "call.customer_answer", "call_id": call.pk, "sdp": event.sdp})


def outbound_status_received(event: CallStatus) -> None:
    """RINGING: the customer's phone rings. ACCEPTED: the customer picked up (connected; the
    permission's strikes clear). REJECTED: declined (a strike; Meta's terminate follows)."""
    call = _outbound_call(event.call_id, event.biz_opaque_callback_data)
    if call is None:
        return
    now = timezone.now()
    if event.status == "RINGING":
        if _move(call, to=Call.Status.RINGING, allowed={Call.Status.DIALING}) and call.agent_id:
            broadcast_on_commit(
                f"agent.{call.agent_id}", {"type": "call.outbound_ringing", "call_id": call.pk}
            )
    elif event.status == "ACCEPTED":
        if _move(call, to=Call.Status.CONNECTED, allowed={Call.Status.DIALING, Call.Status.RINGING},
                 by_agent_id=call.agent_id, connected_at=now, answered_at=now):  # fmt: skip
            permission_record_call_outcome(
                business_number_id=call.business_number_id,
                contact_id=call.contact_id,
                is_connected=True,
                at=now,
            )
            windows_customer_wrote(
                business_number_id=call.business_number_id, contact_ids=[call.contact_id], at=now
            )
            _wallboard_changed(call.pk)
            if call.agent_id:
                broadcast_on_commit(
                    f"agent.{call.agent_id}",
                    {"type": "call.outbound_connected", "call_id": call.pk, "caller": str(call.contact)},
                )
            if call.media_channel:
                send_on_commit(call.media_channel, {"type": "call.customer_accepted", "call_id": call.pk})
    elif event.status == "REJECTED":
        _end_unconnected(call, reason=Call.EndReason.REJECTED, detail="the customer declined")


def outbound_terminate_received(event: CallTerminate) -> None:
    """Meta ended the call: completed if it had connected, else unanswered (a strike) or failed.
    Meta's refusals that our permission state should have known are reconciled with it."""
    call = _outbound_call(event.call_id, event.biz_opaque_callback_data)
    if call is None:
        return
    for error in event.errors:
        if error.code in RECONCILED_CODES:
            permission_reconcile_meta_error(
                business_number_id=call.business_number_id, contact_id=call.contact_id,
                code=error.code, message=error.message or error.title,
            )  # fmt: skip
    if call.status == Call.Status.CONNECTED:
        routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED, detail="Meta: completed")
    elif event.was_answered and call.is_live:
        # Picked up, though ACCEPTED has not arrived (it can come after the terminate): connected.
        connected_at = event.started_at or timezone.now()
        if routing.call_finish(call_id=call.pk, reason=Call.EndReason.COMPLETED, detail="Meta: completed"):
            permission_record_call_outcome(
                business_number_id=call.business_number_id, contact_id=call.contact_id,
                is_connected=True, at=connected_at,
            )  # fmt: skip
            windows_customer_wrote(
                business_number_id=call.business_number_id, contact_ids=[call.contact_id], at=connected_at
            )
    elif event.errors:
        detail = "; ".join(f"{error.code} {error.message or error.title}".strip() for error in event.errors)
        routing.call_finish(call_id=call.pk, reason=Call.EndReason.FAILED, detail=detail)
    else:
        _end_unconnected(call, reason=Call.EndReason.UNANSWERED, detail="the customer did not answer")
    if event.was_answered and event.duration_s is not None:
        # What Meta bills: its own duration of the call, whoever ended it and whenever we heard.
        call_charge_record(
            wa_call_id=call.wa_call_id,
            business_number=call.business_number,
            customer_wa_id=call.contact.wa_id,
            is_business_initiated=True,
            talk_seconds=event.duration_s,
            ended_at=event.ended_at or timezone.now(),
            is_metas_duration=True,
        )


@transaction.atomic
def _end_unconnected(call: Call, *, reason: str, detail: str, is_ended_by_us: bool = False) -> bool:
    """End a call that never connected; the first to end it counts the strike (in one transaction)."""
    ended = routing.call_finish(call_id=call.pk, reason=reason, detail=detail, is_ended_by_us=is_ended_by_us)
    if ended is None or ended.previous_status == Call.Status.CONNECTED:
        return False
    permission_record_call_outcome(
        business_number_id=call.business_number_id, contact_id=call.contact_id, is_connected=False,
        at=timezone.now(), detail=detail,
    )  # fmt: skip
    return True


def call_customer_media_ended(*, call_id: int, is_silent: bool = False) -> None:
    """The customer's media leg ended. A call we placed that has not been picked up is left for
    Meta's terminate to end: only Meta knows whether it went unanswered (a strike) or failed; the
    ring-out sweep ends it if Meta never says. A conversation whose customer's media stopped
    (`is_silent`: their network, most likely) ends as dropped: Meta is told to end it too, and the
    agent goes to wrap-up. Any other call ends as the customer leaving it (a hang-up whose media
    closed before Meta's terminate arrived, say)."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return
    if call.direction == Call.Direction.OUTBOUND and call.status in (
        Call.Status.DIALING,
        Call.Status.RINGING,
    ):
        logger.info("call %s: the customer's media ended before pick-up; Meta's terminate decides", call_id)
        return
    if is_silent and call.status == Call.Status.CONNECTED:
        routing.call_finish(
            call_id=call_id,
            reason=Call.EndReason.DROPPED,
            detail="the customer's media stopped",
            is_ended_by_us=True,
        )
        return
    routing.call_finish(call_id=call_id, reason=Call.EndReason.ABANDONED, detail="the customer's media ended")


def call_cancel_outbound(*, call_id: int, agent_id: int) -> bool:
    """The agent hangs up a call the customer has not picked up: Meta is told, and it counts as
    unanswered (as Meta counts it)."""
    call = Call.objects.filter(
        pk=call_id, agent_id=agent_id, direction=Call.Direction.OUTBOUND,
        status__in=[Call.Status.DIALING, Call.Status.RINGING],
    ).first()  # fmt: skip
    if call is None:
        return False
    if call.wa_call_id.startswith(PENDING_PREFIX):
        # Not placed on Meta yet, as far as we know: no strike; a late webhook naming it ends it there.
        ended = routing.call_finish(
            call_id=call.pk, reason=Call.EndReason.FAILED, detail="the agent gave up dialling"
        )
        return ended is not None
    return _end_unconnected(
        call, reason=Call.EndReason.UNANSWERED, detail="the agent hung up before the customer answered",
        is_ended_by_us=True,
    )  # fmt: skip


def end_outbound_calls_never_picked_up() -> int:
    """Sweep: outbound calls still dialling or ringing after OUTBOUND_RING_TIMEOUT_S end as
    unanswered (a strike) and Meta is told to end them; calls no media process dialled within
    MEDIA_ANSWER_TIMEOUT_S end as failed (no strike: the customer never heard them)."""
    now = timezone.now()
    ended = 0
    never_dialled = Call.objects.filter(
        direction=Call.Direction.OUTBOUND,
        status=Call.Status.DIALING,
        wa_call_id__startswith=PENDING_PREFIX,
        started_at__lt=now - timedelta(seconds=settings.MEDIA_ANSWER_TIMEOUT_S + settings.WHATSAPP_TIMEOUT_S),
    )
    for call_id in list(never_dialled.values_list("pk", flat=True)):
        if routing.call_finish(
            call_id=call_id, reason=Call.EndReason.FAILED, detail="no media process dialled"
        ):
            ended += 1
    rang_out = Call.objects.filter(
        direction=Call.Direction.OUTBOUND,
        status__in=[Call.Status.DIALING, Call.Status.RINGING],
        started_at__lt=now - timedelta(seconds=settings.OUTBOUND_RING_TIMEOUT_S),
    ).exclude(wa_call_id__startswith=PENDING_PREFIX)
    for call in list(rang_out):
        if _end_unconnected(call, reason=Call.EndReason.UNANSWERED, detail="rang out", is_ended_by_us=True):
            ended += 1
    return ended
