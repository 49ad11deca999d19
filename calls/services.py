"""The call lifecycle (DESIGN.md §4): every transition one conditional UPDATE, every one a CallEvent.

A transition reads the call's status, then updates `WHERE pk = … AND status = <that status>`; the
row count says whether this caller won. Losing is normal (two agents clicked Accept, Meta's
terminate crossed our offer): the loser changes nothing.
"""

import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from calls.models import Call, CallEvent, LiveCallCount
from calls.selectors import conversations_of_callers
from compliance.services import permission_record_inbound_connected
from core.events import event_publish
from core.jobs import enqueue_on_commit
from core.realtime import broadcast_on_commit, send_on_commit
from messaging.services import (
    call_charge_record,
    contact_get_or_create,
    contacts_get_or_create,
    windows_customer_wrote,
)
from whatsapp.models import BusinessNumber

logger = logging.getLogger(__name__)

END_ATTEMPTS = 3  # call_end reads a call that changed under it again, this many times at most
MEDIA_CHANNEL = "media.calls"  # calls.media.SHARED_CHANNEL: any media process takes new calls here


# --- Transitions --------------------------------------------------------------------------


def _move(call: Call, *, to: str, allowed: frozenset[str] | set[str], by_agent_id: int | None = None,
          detail: str = "", **changes: Any) -> bool:  # fmt: skip
    """Conditionally move `call` (as last read) to `to`; on success update the instance and log it.

    The condition is the status read and the offer count: a call goes queued → offered → queued →
    offered again, and a move decided on one offer (ending it frees the agent it rang) must not
    land on the next one, to another agent (each offer adds one to the count).
    """
    if call.status not in allowed:
        return False
    now = timezone.now()
    updated = Call.objects.filter(pk=call.pk, status=call.status, offer_count=call.offer_count).update(
        status=to, updated_at=now, **changes
    )
    if updated != 1:
        return False
    CallEvent.objects.create(
        call=call, from_status=call.status, to_status=to, at=now, agent_id=by_agent_id, detail=detail
    )
    call.status, call.updated_at = to, now
    for name, value in changes.items():  # plain values only: an F() expression would need a reread
        setattr(call, name, value)
    _publish(call)
    return True


PUBLISHED = {  # a call's move to this status: the event the CRM's webhooks hear
    Call.Status.QUEUED: "call.ringing",  # the customer's call arrived (queued for an agent)
    Call.Status.RINGING: "call.ringing",  # a business call rings the customer's phone
    Call.Status.CONNECTED: "call.connected",
    Call.Status.ENDED: "call.ended",
}


def _publish(call: Call) -> None:
    kind = PUBLISHED.get(call.status)
    if kind is None or (call.status == Call.Status.RINGING and call.direction == Call.Direction.INBOUND):
        return
    data = {
        "call_id": call.pk, "wa_call_id": call.wa_call_id, "direction": call.direction, "status": call.status,
        "contact_id": call.contact_id, "agent_id": call.agent_id, "conversation_id": call.conversation_id,
    }  # fmt: skip
    if call.status == Call.Status.ENDED:
        data |= {"end_reason": call.end_reason, "talk_seconds": call.talk_seconds}
    event_publish(kind, business_number_id=call.business_number_id, data=data)


def _wallboard_changed(call_id: int) -> None:
    """Supervisors' wallboards count again after commit (a call's move changes their figures)."""
    broadcast_on_commit("supervisors", {"type": "wallboard.changed", "call_id": call_id})


# --- Capacity -----------------------------------------------------------------------------


def capacity_claim(*, business_number_id: int, direction: str) -> bool:
    """Take one of the number's live-call slots for `direction`; False when all are in use."""
    return capacity_claim_many(business_number_id=business_number_id, direction=direction, count=1) == 1


def capacity_claim_many(*, business_number_id: int, direction: str, count: int) -> int:
    """Take up to `count` of the number's live-call slots for `direction`: how many were taken.

    Each attempt is one conditional UPDATE; fewer than asked are taken only when fewer are free.
    """
    cap = settings.MAX_CONCURRENT_CALLS_PER_DIRECTION
    counter = LiveCallCount.objects.filter(business_number_id=business_number_id, direction=direction)
    requested, is_created = min(count, cap), False
    while requested > 0:
        if counter.filter(live__lte=cap - requested).update(live=F("live") + requested) == 1:
            return requested
        live = counter.values_list("live", flat=True).first()
        if live is None and not is_created:
            is_created = True
            try:
                with transaction.atomic():
                    LiveCallCount.objects.create(business_number_id=business_number_id, direction=direction)
            except IntegrityError:
                pass  # created by a concurrent first call: fine, claim against it
            continue
        requested = min(requested - 1, cap - (live or 0))
    return 0


def _capacity_lock(*, business_number_id: int, direction: str) -> None:
    if connection.features.has_select_for_update and connection.in_atomic_block:
        counter = LiveCallCount.objects.filter(business_number_id=business_number_id, direction=direction)
        list(counter.select_for_update().values_list("pk", flat=True))


def capacity_lock_for_events(events: list) -> None:
    """Lock the live-call counters of the numbers that call events name, in id order (a
    whatsapp.dispatch lock taker): deliveries received together then queue for them. A number's
    first inbound counter is created here too, so that no handler creates one while holding a call.
    One statement once the numbers' counters exist."""
    numbers = {event.phone_number_id for event in events if event.kind.startswith("call.")}
    if not numbers or not connection.features.has_select_for_update:
        return
    counters = LiveCallCount.objects.order_by("pk").select_for_update(of=("self",))
    locked = counters.filter(business_number__phone_number_id__in=numbers).values_list("direction", flat=True)
    if list(locked).count(Call.Direction.INBOUND) == len(numbers):
        return
    number_ids = sorted(
        BusinessNumber.objects.filter(phone_number_id__in=numbers).values_list("pk", flat=True)
    )
    # (A number's outbound counter exists from its first placed call, before any webhook about it.)
    LiveCallCount.objects.bulk_create(
        [
            LiveCallCount(business_number_id=number_id, direction=Call.Direction.INBOUND)
            for number_id in number_ids
        ],
        ignore_conflicts=True,
    )
    list(counters.filter(business_number_id__in=number_ids).values_list("pk", flat=True))


def capacity_release(*, business_number_id: int, direction: str, count: int = 1) -> None:
    """Give back `count` of the number's live-call slots for `direction` (never below none)."""
    LiveCallCount.objects.filter(
        business_number_id=business_number_id, direction=direction, live__gt=0
    ).update(live=Greatest(F("live") - count, 0))


# --- Inbound calls ------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundCall:
    """What Meta's connect webhook says about a customer's call (from whatsapp.events.CallConnect)."""

    wa_call_id: str
    phone_number_id: str
    from_number: str
    contact_name: str
    sdp_offer: str
    cta_payload: str = ""
    deeplink_payload: str = ""


def _caller(*, phone_number_id: str, wa_id: str, name: str = "", at: datetime):
    """The number called, the calling customer (recorded when new) and the id of the chat the call
    comes from (`conversations_of_callers`), for recording one customer's call."""
    number = BusinessNumber.objects.get(phone_number_id=phone_number_id)
    contact = contact_get_or_create(wa_id=wa_id, name=name)
    chats = conversations_of_callers(business_number_id=number.pk, contact_ids={contact.pk}, at=at)
    return number, contact, chats.get(contact.pk)


@transaction.atomic
def call_create_inbound(*, inbound: InboundCall, queue_id: int | None, is_open: bool) -> Call | None:
    """Record a customer's call: queue it and hand it to a media process, or reject it with a reason.

    Returns None when the call is already known (a redelivered connect, or one whose terminate
    came first). Takes a live-call slot of the number; without one, or without a queue serving
    the number, or outside opening hours, the call ends at once as `rejected` and Meta is told
    to reject it (after commit, by a task). A taken call waits in its queue from now on
    (ringing → queued): agents are rung while a media process answers the customer's leg, so
    the caller's wait and the agent's ring overlap with Meta's answer round trips.
    """
    if Call.objects.filter(wa_call_id=inbound.wa_call_id).exists():
        return None
    now = timezone.now()
    number, contact, conversation_id = _caller(
        phone_number_id=inbound.phone_number_id, wa_id=inbound.from_number, name=inbound.contact_name, at=now
    )
    try:
        with transaction.atomic():
            call = Call.objects.create(
                wa_call_id=inbound.wa_call_id,
                business_number=number,
                contact=contact,
                conversation_id=conversation_id,
                direction=Call.Direction.INBOUND,
                status=Call.Status.RINGING,
                queue_id=queue_id,
                started_at=now,
                cta_payload=inbound.cta_payload,
                deeplink_payload=inbound.deeplink_payload,
            )
    except IntegrityError:
        return None  # the same call created concurrently by a duplicate delivery
    CallEvent.objects.create(call=call, from_status="", to_status=Call.Status.RINGING, at=now)
    windows_customer_wrote(business_number_id=number.pk, contact_ids=[contact.pk], at=now)  # answered or not
    rejection = ""
    if queue_id is None:
        rejection = "no queue serves this number"
    elif not is_open:
        rejection = "closed"
    elif not capacity_claim(business_number_id=number.pk, direction=Call.Direction.INBOUND):
        rejection = "capacity"
    if rejection:
        _move(call, to=Call.Status.ENDED, allowed={Call.Status.RINGING}, detail=rejection,
              ended_at=now, end_reason=Call.EndReason.REJECTED, end_detail=rejection)  # fmt: skip
        from calls.tasks import reject_on_meta, send_closed_message

        enqueue_on_commit(reject_on_meta, call_id=call.pk)
        if rejection == "closed":
            enqueue_on_commit(send_closed_message, call_id=call.pk)
        return call
    _move(call, to=Call.Status.QUEUED, allowed={Call.Status.RINGING}, queued_at=now)
    call_hand_off(call_id=call.pk, sdp_offer=inbound.sdp_offer)
    _wallboard_changed(call.pk)
    return call


@transaction.atomic(savepoint=False)  # a handler's: its caller's savepoint undoes it
def calls_queue_inbound_many(
    *, inbounds: list[InboundCall], queue_id: int
) -> tuple[list[Call], list[InboundCall]]:
    """`call_create_inbound` for many calls to one number that its open queue takes: bulk writes
    and one capacity claim. Returns the calls queued, and the ones beyond the number's capacity
    (for `call_create_inbound` to reject, one by one). Calls already known are left out.
    """
    known = set(
        Call.objects.filter(wa_call_id__in=[inbound.wa_call_id for inbound in inbounds]).values_list(
            "wa_call_id", flat=True
        )
    )
    fresh = list(
        {inbound.wa_call_id: inbound for inbound in inbounds if inbound.wa_call_id not in known}.values()
    )
    if not fresh:
        return [], []
    number = BusinessNumber.objects.get(phone_number_id=fresh[0].phone_number_id)
    taken = capacity_claim_many(
        business_number_id=number.pk, direction=Call.Direction.INBOUND, count=len(fresh)
    )
    fresh, beyond = fresh[:taken], fresh[taken:]
    if not fresh:
        return [], beyond
    contacts = contacts_get_or_create(people={inbound.from_number: inbound.contact_name for inbound in fresh})
    now = timezone.now()
    chats = conversations_of_callers(
        business_number_id=number.pk, contact_ids={contact.pk for contact in contacts.values()}, at=now
    )
    calls = Call.objects.bulk_create(
        [
            Call(
                wa_call_id=inbound.wa_call_id,
                business_number=number,
                contact=contacts[inbound.from_number],
                conversation_id=chats.get(contacts[inbound.from_number].pk),
                direction=Call.Direction.INBOUND,
                status=Call.Status.QUEUED,
                queue_id=queue_id,
                started_at=now,
                queued_at=now,
                cta_payload=inbound.cta_payload,
                deeplink_payload=inbound.deeplink_payload,
            )
            for inbound in fresh
        ]
    )
    CallEvent.objects.bulk_create(
        [CallEvent(call=call, from_status="", to_status=Call.Status.RINGING, at=now) for call in calls]
        + [CallEvent(call=call, from_status=Call.Status.RINGING, to_status=Call.Status.QUEUED, at=now)
           for call in calls]
    )  # fmt: skip
    windows_customer_wrote(
        business_number_id=number.pk, contact_ids=[contact.pk for contact in contacts.values()], at=now
    )
    for call, inbound in zip(calls, fresh, strict=True):
        call_hand_off(call_id=call.pk, sdp_offer=inbound.sdp_offer)
        _publish(call)
    _wallboard_changed(calls[-1].pk)
    return calls, beyond


def call_hand_off(*, call_id: int, sdp_offer: str) -> None:
    """Offer a call to the media processes (after commit): the first free one claims and answers it."""
    send_on_commit(MEDIA_CHANNEL, {"type": "call.answer", "call_id": call_id, "sdp": sdp_offer})


def call_claim_media(*, call_id: int, media_channel: str) -> Call | None:
    """A media process takes a live call to answer it (once: the first process wins).

    From now on messages for the call (the agent's offer, hold, hang-up) go to `media_channel`.
    """
    is_won = (
        Call.objects.filter(pk=call_id, media_channel="", status__in=Call.LIVE_STATUSES)
        .exclude(status=Call.Status.RINGING)
        .update(media_channel=media_channel, updated_at=timezone.now())
    )
    return (
        Call.objects.select_related("business_number", "contact", "queue").get(pk=call_id) if is_won else None
    )


def call_mark_answered(*, call_id: int) -> bool:
    """The customer's leg is answered on Meta (pre_accept and accept done)."""
    now = timezone.now()
    with transaction.atomic():
        is_marked = bool(
            Call.objects.filter(pk=call_id, answered_at__isnull=True, status__in=Call.LIVE_STATUSES).update(
                answered_at=now, updated_at=now
            )
        )
        if is_marked:
            # A connected call resets the pair's permission request limits (WHATSAPP_API.md §3.6).
            number_id, contact_id = (
                Call.objects.filter(pk=call_id).values_list("business_number_id", "contact_id").get()
            )
            permission_record_inbound_connected(business_number_id=number_id, contact_id=contact_id, at=now)
    return is_marked


# --- Offers -------------------------------------------------------------------------------


def call_offer(*, call: Call, agent_id: int, ring_timeout_s: int) -> bool:
    """Ring one agent for a queued call (queued → offered). The caller has claimed the agent."""
    now = timezone.now()
    won = _move(
        call,
        to=Call.Status.OFFERED,
        allowed={Call.Status.QUEUED},
        by_agent_id=agent_id,
        offered_to_id=agent_id,
        offered_at=now,
        offer_expires_at=now + timedelta(seconds=ring_timeout_s),
        # Exact: the status condition means no other offer moved the call since it was read.
        offer_count=call.offer_count + 1,
    )
    if won:
        _wallboard_changed(call.pk)
    return won


def calls_offer_many(*, offers: list[tuple[Call, int]], ring_timeout_s: int) -> bool:
    """`call_offer` for many (call, claimed agent) pairs at once: one conditional UPDATE.

    All or none: False when any call was no longer queued, and the caller must roll back.
    """
    now = timezone.now()
    updated = Call.objects.filter(pk__in=[call.pk for call, _ in offers], status=Call.Status.QUEUED).update(
        status=Call.Status.OFFERED,
        offered_to_id=Case(*[When(pk=call.pk, then=Value(agent_id)) for call, agent_id in offers]),
        offered_at=now,
        offer_expires_at=now + timedelta(seconds=ring_timeout_s),
        offer_count=F("offer_count") + 1,
        updated_at=now,
    )
    if updated != len(offers):
        return False
    CallEvent.objects.bulk_create(
        [
            CallEvent(
                call=call,
                from_status=Call.Status.QUEUED,
                to_status=Call.Status.OFFERED,
                at=now,
                agent_id=agent_id,
            )
            for call, agent_id in offers
        ]
    )
    expires_at = now + timedelta(seconds=ring_timeout_s)
    for call, agent_id in offers:
        call.status, call.offered_to_id, call.offered_at = Call.Status.OFFERED, agent_id, now
        call.offer_expires_at, call.offer_count, call.updated_at = expires_at, call.offer_count + 1, now
    _wallboard_changed(offers[-1][0].pk)
    return True


def call_connect_agent(*, call_id: int, agent_id: int) -> Call | None:
    """The agent rung for the call accepted it (offered → connected); None if the agent lost it.

    The agent's softphone then offers its leg to the media process holding the call.
    """
    call = Call.objects.filter(pk=call_id, offered_to_id=agent_id).first()
    if call is None:
        return None
    won = _move(
        call,
        to=Call.Status.CONNECTED,
        allowed={Call.Status.OFFERED},
        by_agent_id=agent_id,
        agent_id=agent_id,
        offered_to_id=None,
        # A call back from an agent whose audio was lost (`call_take_back`) keeps its first connection:
        # the customer's wait ended then, and the talk time counts from then (the hold meanwhile too).
        connected_at=call.connected_at or timezone.now(),
        offer_expires_at=None,
    )
    if not won:
        return None
    _wallboard_changed(call.pk)
    return call


def call_return_to_queue(
    *, call_id: int, agent_id: int, detail: str, expired_only: bool = False
) -> Call | None:
    """Take an offer back from an agent (declined, or rang out): offered → queued.

    With `expired_only` the offer must have passed its expiry (a late timeout task or the sweep
    must not take back an offer that a newer one replaced).
    """
    offers = Call.objects.filter(pk=call_id, offered_to_id=agent_id, status=Call.Status.OFFERED)
    if expired_only:
        offers = offers.filter(offer_expires_at__lte=timezone.now())
    call = offers.first()
    if call is None:
        return None
    won = _move(
        call,
        to=Call.Status.QUEUED,
        allowed={Call.Status.OFFERED},
        by_agent_id=agent_id,
        detail=detail,
        offered_to_id=None,
        offer_expires_at=None,
    )
    return call if won else None


def call_take_back(*, call_id: int, agent_id: int, detail: str) -> Call | None:
    """Take a connected call back from its agent (their audio was lost): connected → queued, its
    first place in line kept (`queued_at`), the agent's hold closed. None if the call is no longer
    connected to that agent (it ended, or was taken back already)."""
    call = Call.objects.filter(pk=call_id, agent_id=agent_id, status=Call.Status.CONNECTED).first()
    if call is None:
        return None
    now = timezone.now()
    hold_seconds = call.hold_seconds + (_whole_seconds(now - call.held_since) if call.held_since else 0)
    won = _move(
        call,
        to=Call.Status.QUEUED,
        allowed={Call.Status.CONNECTED},
        by_agent_id=agent_id,
        detail=detail,
        agent_id=None,
        held_since=None,
        hold_seconds=hold_seconds,
    )
    if not won:
        return None
    _wallboard_changed(call.pk)
    return call


# --- Hold ---------------------------------------------------------------------------------


def call_hold_set(*, call_id: int, agent_id: int, is_on: bool) -> bool:
    """Record that the agent put the customer on hold, or took them off it: whether anything changed.

    Only on a call connected to the agent. Putting on hold a call already held, or taking off hold
    a call that is not, changes nothing (the softphone may send a switch twice), so each hold counts
    once. Taking a call off hold adds the hold's whole seconds to `hold_seconds`; the condition on
    the `held_since` just read means that of two concurrent releases only one adds them. A hold
    still on when the call ends is closed by `call_end`. Hold time is part of the talk time: the
    KPIs (calls.kpis) tell them apart.
    """
    now = timezone.now()
    connected = Call.objects.filter(pk=call_id, agent_id=agent_id, status=Call.Status.CONNECTED)
    if is_on:
        return connected.filter(held_since__isnull=True).update(held_since=now, updated_at=now) == 1
    held_since = connected.exclude(held_since=None).values_list("held_since", flat=True).first()
    if held_since is None:
        return False
    return (
        connected.filter(held_since=held_since).update(
            held_since=None, hold_seconds=F("hold_seconds") + _whole_seconds(now - held_since), updated_at=now
        )
        == 1
    )


def _hold_close(*, call_id: int, at: datetime) -> None:
    """Close the hold of a call that ended on hold: its seconds up to `at` count as held. Called
    by the transition that ended the call; nothing changes a hold after that (only a connected call
    can be held or released)."""
    held_since = (
        Call.objects.filter(pk=call_id).exclude(held_since=None).values_list("held_since", flat=True).first()
    )
    if held_since is not None:
        Call.objects.filter(pk=call_id, held_since=held_since).update(
            held_since=None, hold_seconds=F("hold_seconds") + _whole_seconds(at - held_since)
        )


def _whole_seconds(duration: timedelta) -> int:
    return max(0, round(duration.total_seconds()))


# --- The end ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndedCall:
    """What the transition that ended a call found: whom it rang or connected to."""

    call: Call
    offered_to_id: int | None
    agent_id: int | None
    previous_status: str


def call_end(*, call_id: int, reason: str, detail: str = "", is_farewell: bool = False) -> EndedCall | None:
    """End a live call with a reason; None if it had ended already (only one caller wins).

    A customer who leaves (`abandoned`) a call an agent had taken completes it. The winner gives
    back the number's live-call slot (exactly once per call), records talk time and what a connected
    call costs (`messaging.services.call_charge_record`), and after commit tells the media process
    holding the call to hang up its legs (`is_farewell`: after playing the closing message to the
    customer).
    """
    # A live call that moved on meanwhile (an agent accepted, the customer picked up) is read
    # again: the end must not be lost to another transition.
    for _ in range(END_ATTEMPTS):
        call = Call.objects.filter(pk=call_id).first()
        if call is None or not call.is_live:
            return None
        # The counter before the call, as webhooks take them (capacity_lock_for_events).
        _capacity_lock(business_number_id=call.business_number_id, direction=call.direction)
        ending = _ending_of(call, reason)
        previous = {"status": call.status, "offered_to_id": call.offered_to_id, "agent_id": call.agent_id}
        now = timezone.now()
        talk_seconds = round((now - call.connected_at).total_seconds()) if call.connected_at else None
        if _move(
            call,
            to=Call.Status.ENDED,
            allowed=Call.LIVE_STATUSES,
            detail=detail,
            ended_at=now,
            end_reason=ending,
            end_detail=detail[:255],
            talk_seconds=talk_seconds,
            offered_to_id=None,
            offer_expires_at=None,
        ):
            break
    else:
        return None
    _hold_close(call_id=call.pk, at=now)
    # Every call that reaches here holds a slot: it was taken before the call could go live.
    capacity_release(business_number_id=call.business_number_id, direction=call.direction)
    _ended(call, now=now, is_farewell=is_farewell)
    return EndedCall(
        call=call,
        offered_to_id=previous["offered_to_id"],
        agent_id=previous["agent_id"],
        previous_status=previous["status"],
    )


def _ending_of(call: Call, reason: str) -> str:
    """The end reason of a live call ended for `reason`: a customer who leaves (`abandoned`) a call an
    agent had taken completes it."""
    if reason == Call.EndReason.ABANDONED and call.status == Call.Status.CONNECTED:
        return Call.EndReason.COMPLETED
    return reason


def _ended(call: Call, *, now: datetime, is_farewell: bool) -> None:
    """What follows a call's move to ended (its slot given back): its charge, the media process told
    to hang up its legs after commit, the wallboards told."""
    on_the_line_since = _on_the_line_since(call)
    if on_the_line_since is not None:
        call_charge_record(
            wa_call_id=call.wa_call_id,
            business_number=call.business_number,
            customer_wa_id=call.contact.wa_id,
            is_business_initiated=call.direction == Call.Direction.OUTBOUND,
            # a started second is billed
            talk_seconds=max(0, math.ceil((now - on_the_line_since).total_seconds())),
            ended_at=now,
        )
    if call.media_channel:
        send_on_commit(
            call.media_channel, {"type": "call.hangup", "call_id": call.pk, "is_farewell": is_farewell}
        )
    _wallboard_changed(call.pk)


def calls_end_many(*, ends: dict[Call, tuple[str, str]]) -> list[EndedCall]:
    """`call_end` for many calls at once (Meta's terminates received together), `ends` mapping
    each call (as the caller read it) to its reason and detail: the calls still live are read
    locked, moved in one UPDATE per outcome with one insert of their events, and each counter's
    slots given back in one statement. The same outcome as `call_end` for each; a call that had
    ended already is left out. Should a call move between the read and the UPDATE (the embedded
    SQLite locks no rows), each is ended by `call_end` instead."""
    # The counters before the calls, as webhooks take them (capacity_lock_for_events). A call's
    # number and direction never change: the caller's read of it tells which.
    for business_number_id, direction in sorted({(call.business_number_id, call.direction) for call in ends}):
        _capacity_lock(business_number_id=business_number_id, direction=direction)
    live = Call.objects.filter(pk__in=[call.pk for call in ends], status__in=Call.LIVE_STATUSES)
    locked = live.select_related("business_number", "contact").order_by("pk")
    if connection.features.has_select_for_update:
        locked = locked.select_for_update(of=("self",))
    calls = list(locked)
    if not calls:
        return []
    now = timezone.now()
    ended, events = [], []
    asked = {call.pk: end for call, end in ends.items()}
    for call in calls:
        reason, detail = asked[call.pk]
        ended.append(EndedCall(call=call, offered_to_id=call.offered_to_id, agent_id=call.agent_id,
                               previous_status=call.status))  # fmt: skip
        events.append(CallEvent(call=call, from_status=call.status, to_status=Call.Status.ENDED, at=now,
                                detail=detail))  # fmt: skip
        call.end_reason = _ending_of(call, reason)
        call.status, call.end_detail = Call.Status.ENDED, detail[:255]
        call.updated_at = call.ended_at = now
        call.talk_seconds = round((now - call.connected_at).total_seconds()) if call.connected_at else None
        call.offered_to_id, call.offer_expires_at = None, None
    # One UPDATE per outcome (most of a burst's calls end alike), not Django's bulk_update, whose
    # CASE per field and call cost more in Python than the round trips it saves. The rows are
    # locked on PostgreSQL; on SQLite each must still be as it was read.
    outcomes: dict[tuple[str, str, int | None], list[EndedCall]] = {}
    for entry in ended:
        call = entry.call
        outcomes.setdefault((call.end_reason, call.end_detail, call.talk_seconds), []).append(entry)
    # On SQLite in a savepoint, to be undone should a call have moved.
    try:
        with transaction.atomic() if not connection.features.has_select_for_update else nullcontext():
            moved = 0
            for (end_reason, end_detail, talk_seconds), entries in outcomes.items():
                rows = Call.objects.filter(pk__in=[entry.call.pk for entry in entries])
                if not connection.features.has_select_for_update:
                    as_read = Q()
                    for entry in entries:
                        as_read |= Q(pk=entry.call.pk, status=entry.previous_status,
                                     offer_count=entry.call.offer_count)  # fmt: skip
                    rows = rows.filter(as_read)
                moved += rows.update(
                    status=Call.Status.ENDED,
                    updated_at=now,
                    ended_at=now,
                    end_reason=end_reason,
                    end_detail=end_detail,
                    talk_seconds=talk_seconds,
                    offered_to=None,
                    offer_expires_at=None,
                )
            if moved != len(calls):
                raise _MovedMeanwhile
    except _MovedMeanwhile:
        return [
            end for call, (reason, detail) in ends.items()
            if (end := call_end(call_id=call.pk, reason=reason, detail=detail)) is not None
        ]  # fmt: skip
    CallEvent.objects.bulk_create(events)
    slots: dict[tuple[int, str], int] = {}
    for call in calls:
        _publish(call)
        if call.held_since is not None:
            _hold_close(call_id=call.pk, at=now)
        counter = (call.business_number_id, call.direction)
        slots[counter] = slots.get(counter, 0) + 1
        _ended(call, now=now, is_farewell=False)
    for (business_number_id, direction), count in sorted(slots.items()):
        capacity_release(business_number_id=business_number_id, direction=direction, count=count)
    return ended


class _MovedMeanwhile(Exception):
    pass


def _on_the_line_since(call: Call) -> datetime | None:
    """Where a call's charge counts from; None for a call no one picked up (no charge). A business
    call: the customer's answer. A customer's call, once picked up (the media process answered it,
    or an agent took it): the customer's connect as its webhook recorded it, so the wait in the queue
    counts, as it would had the business placed the call (the ROI report's inbound minutes); not the
    agent's accept. Meta's duration replaces it when its terminate webhook gives one."""
    if call.direction == Call.Direction.OUTBOUND:
        return call.connected_at
    if call.answered_at is None and call.connected_at is None:
        return None
    return call.started_at


@transaction.atomic
def call_record_early_terminate(
    *, wa_call_id: str, phone_number_id: str, from_number: str, reason: str
) -> Call | None:
    """Meta's terminate arrived before its connect: record the call as already ended, so that
    the connect, when it comes, finds it and does nothing. Holds no capacity slot."""
    now = timezone.now()
    number, contact, conversation_id = _caller(phone_number_id=phone_number_id, wa_id=from_number, at=now)
    try:
        with transaction.atomic():
            call = Call.objects.create(
                wa_call_id=wa_call_id,
                business_number=number,
                contact=contact,
                conversation_id=conversation_id,
                direction=Call.Direction.INBOUND,
                status=Call.Status.ENDED,
                started_at=now,
                ended_at=now,
                end_reason=reason,
                end_detail="terminated before it was offered to us",
            )
    except IntegrityError:
        return None
    CallEvent.objects.create(
        call=call, from_status="", to_status=Call.Status.ENDED, at=now, detail="terminate first"
    )
    windows_customer_wrote(business_number_id=number.pk, contact_ids=[contact.pk], at=now)  # they called
    return call


def call_is_too_late(*, connected_at: datetime | None, received_at: datetime) -> bool:
    """Whether a customer's call, timestamped `connected_at` by Meta, was over before it reached us
    at `received_at` (older than CALL_CONNECT_MAX_AGE_S: Meta's accept window has passed). A connect
    without a timestamp is taken as fresh. No query: the webhook path stays as fast as before."""
    return connected_at is not None and received_at - connected_at > timedelta(
        seconds=settings.CALL_CONNECT_MAX_AGE_S
    )


@transaction.atomic
def call_record_late_connect(
    *, inbound: InboundCall, connected_at: datetime, received_at: datetime
) -> Call | None:
    """A customer's call that Meta delivered after its accept window (a retried delivery): record it
    as already ended (`too_late`), and nothing else. It is never queued, rung, handed to a media
    process (so never pre-accepted or accepted on Meta), rejected on Meta, nor counted against the
    number's live calls; a terminate arriving for it later changes nothing. None when the call is
    already known (a redelivery, or its terminate came first)."""
    if Call.objects.filter(wa_call_id=inbound.wa_call_id).exists():
        return None
    number, contact, conversation_id = _caller(
        phone_number_id=inbound.phone_number_id, wa_id=inbound.from_number, name=inbound.contact_name,
        at=received_at,
    )  # fmt: skip
    detail = (
        f"arrived too late: connect timestamped {connected_at:%Y-%m-%d %H:%M:%S} UTC, "
        f"received {received_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    try:
        with transaction.atomic():
            call = Call.objects.create(
                wa_call_id=inbound.wa_call_id,
                business_number=number,
                contact=contact,
                conversation_id=conversation_id,
                direction=Call.Direction.INBOUND,
                status=Call.Status.ENDED,
                started_at=received_at,
                ended_at=received_at,
                end_reason=Call.EndReason.TOO_LATE,
                end_detail=detail,
                cta_payload=inbound.cta_payload,
                deeplink_payload=inbound.deeplink_payload,
            )
    except IntegrityError:
        return None  # the same call created concurrently by a duplicate delivery
    CallEvent.objects.create(
        call=call, from_status="", to_status=Call.Status.ENDED, at=received_at, detail=detail
    )
    # The customer did call, when Meta says they did: a window from then (an old one opens nothing).
    windows_customer_wrote(business_number_id=number.pk, contact_ids=[contact.pk], at=connected_at)
    return call
