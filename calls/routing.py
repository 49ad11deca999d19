"""Automatic call distribution: the longest-waiting call goes to the best free agent (chosen and
claimed by the ACD's matching, agents.routing, which routes conversations too).

Routing runs whenever something frees up (a call is queued, an agent becomes available, an
offer is declined or rings out). Each match claims the agent (available → ringing) and the call
(queued → offered) with conditional UPDATEs inside one transaction: if either claim loses, the
transaction rolls back and the loop looks again. The oldest queued call is locked with
`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent routers work on different calls;
SQLite serialises writers anyway.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, When
from django.utils import timezone

from agents import presence
from agents.models import Agent, Queue
from agents.routing import MAX_CANDIDATES, Work, agent_claim_best, can_take, free_agents
from agents.services import agent_transition, agents_ring
from calls import selectors
from calls.models import Call, CallEvent
from calls.prompts import CLOSING, FALLBACK_LANGUAGE, prompt_for
from calls.services import (
    EndedCall,
    call_connect_agent,
    call_end,
    call_hand_off,
    call_offer,
    call_return_to_queue,
    call_take_back,
    calls_end_many,
    calls_offer_many,
)
from calls.signals import call_filed
from core.jobs import enqueue_on_commit
from core.realtime import broadcast_on_commit
from messaging.conversations import conversations_route_waiting
from messaging.models import Conversation
from whatsapp.selectors import call_connect_event

logger = logging.getLogger(__name__)

OFFER_ROUND = 100  # calls matched together at most
HAND_OFF_RETRY_S = 5  # a call no media process has taken after this long is handed off again
FAREWELL_MARGIN_S = 2.0  # the closing message's length plus this, before Meta is told to end the call


# The agent the caller is chatting with (their conversation is assigned to them): offered the call
# first when they can take it (the warm handoff). Read with the waiting calls, in the same query.
CHAT_AGENT = Case(
    When(conversation__state=Conversation.State.ASSIGNED, then=F("conversation__agent_id")),
    default=None,
    output_field=IntegerField(),
)


class RoundLost(RuntimeError):
    """A routing round's claim lost although its rows were locked (a bug, never a race)."""


def route_queue(*, queue_id: int) -> list[int]:
    """Offer the queue's waiting calls to its free agents until one side runs out.

    Returns the ids of the calls offered. Safe to run concurrently from any process.
    """
    return _route(Queue.objects.get(pk=queue_id))


def _route(queue: Queue) -> list[int]:
    """Match in rounds of up to OFFER_ROUND calls (a burst of callers rings a room of agents in a
    few statements); a round that loses a claim to a concurrent router changes nothing, and the
    queue is then matched one call at a time."""
    offered: list[int] = []
    while (round_offered := _offer_round(queue)) is not None:
        offered += round_offered
        if len(round_offered) < OFFER_ROUND:
            return offered
    while (call_id := _offer_next(queue)) is not None:
        offered.append(call_id)
    return offered


def route_for_agent(agent_id: int) -> None:
    """An agent became free: look for waiting calls in each of the agent's queues, best tier first."""
    for queue_id in (
        Queue.objects.filter(memberships__agent_id=agent_id)
        .order_by("memberships__priority", "pk")
        .values_list("pk", flat=True)
    ):
        if Agent.objects.filter(pk=agent_id, status=Agent.Status.AVAILABLE).exists():
            route_queue(queue_id=queue_id)


def _offer_next(queue: Queue) -> int | None:
    """Offer the queue's longest-waiting call to its best free agent: the call's id, or None."""
    with transaction.atomic():
        waiting = (
            Call.objects.filter(queue_id=queue.pk, status=Call.Status.QUEUED)
            .select_related("contact")
            .annotate(chat_agent_id=CHAT_AGENT)
            .order_by("queued_at", "pk")
        )
        if connection.features.has_select_for_update_skip_locked:
            waiting = waiting.select_for_update(skip_locked=True, of=("self",))
        call = waiting.first()
        if call is None:
            return None
        excluded = _recently_missed_by(call, queue) if call.offer_count else []
        agent_id = agent_claim_best(
            queue=queue, work=Work.CALL, excluded=excluded, preferred=call.chat_agent_id
        )
        if agent_id is None:
            return None
        if not call_offer(call=call, agent_id=agent_id, ring_timeout_s=queue.ring_timeout_s):
            transaction.set_rollback(True)  # the call went (customer hung up): give the agent back
            return None
        broadcast_on_commit(
            f"agent.{agent_id}", selectors.ring_frame(call=call, queue=queue, agent_id=agent_id)
        )
        from calls.tasks import expire_offer

        enqueue_on_commit(expire_offer, countdown=queue.ring_timeout_s, call_id=call.pk, agent_id=agent_id)
    return call.pk


def _offer_round(queue: Queue) -> list[int] | None:
    """Offer up to OFFER_ROUND of the queue's waiting calls, longest-waiting first, each to the
    best free agent who has not just missed it: the ids of the calls offered. On PostgreSQL the
    agents this round can use are locked first, in id order (a concurrent round holding them is
    waited for, so the oldest calls go first), then the calls SKIP LOCKED; each side is then
    claimed by one conditional UPDATE. None, with nothing changed, when a claim lost anyway
    (SQLite, which cannot lock rows; there the round is a savepoint of its own). On PostgreSQL a
    claim on locked rows cannot lose: if one does, RoundLost is raised."""
    locks_rows = connection.features.has_select_for_update_skip_locked
    with transaction.atomic(savepoint=not locks_rows):
        waiting = (
            Call.objects.filter(queue_id=queue.pk, status=Call.Status.QUEUED)
            .select_related("contact")
            .annotate(chat_agent_id=CHAT_AGENT)
            .order_by("queued_at", "pk")
        )
        candidates = list(
            free_agents(queue, work=Work.CALL).values_list("pk", flat=True)[: OFFER_ROUND + MAX_CANDIDATES]
        )
        if not candidates:
            return []
        if connection.features.has_select_for_update_skip_locked:
            # A look first (no locks) at how many agents the round can use, and whom callers chat with.
            glance = list(waiting.values_list("offer_count", "chat_agent_id")[:OFFER_ROUND])
            wanted = candidates if any(count for count, _ in glance) else candidates[: len(glance)]
            chatting = [pk for _, pk in glance if pk in candidates and pk not in wanted]
            wanted = wanted + list(dict.fromkeys(chatting))
            lockable = Agent.objects.filter(can_take(Work.CALL), pk__in=wanted).order_by("pk")
            locked = set(lockable.select_for_update().values_list("pk", flat=True))
            candidates = [agent_id for agent_id in wanted if agent_id in locked]
            waiting = waiting.select_for_update(skip_locked=True, of=("self",))
        calls = list(waiting[: min(OFFER_ROUND, len(candidates))]) if candidates else []
        if not calls:
            return []
        missed = _recently_missed_by_each([call for call in calls if call.offer_count], queue)
        # The agent a caller chats with first (the longest-waiting such caller, if two chat with
        # them), then the queue's order for the rest.
        chosen: dict[int, int] = {}
        for call in calls:
            preferred = call.chat_agent_id
            if preferred in candidates and preferred not in missed.get(call.pk, ()):
                chosen[call.pk] = preferred
                candidates.remove(preferred)
        offers = []
        for call in calls:
            agent_id = chosen.get(call.pk) or next(
                (pk for pk in candidates if pk not in missed.get(call.pk, ())), None
            )
            if agent_id is not None:
                if agent_id in candidates:
                    candidates.remove(agent_id)
                offers.append((call, agent_id))
        if not offers:
            return []
        rung = [call for call, _ in offers]
        rings = dict(
            zip(
                [agent_id for _, agent_id in offers],
                selectors.ring_frames(offers=offers, queue=queue),
                strict=True,
            )
        )
        if not (
            agents_ring(agent_ids=list(rings), frames=rings)
            and calls_offer_many(offers=offers, ring_timeout_s=queue.ring_timeout_s)
        ):
            if locks_rows:
                raise RoundLost(f"a claim on rows locked for queue {queue.pk}'s round lost")
            transaction.set_rollback(True)
            return None
        from calls.tasks import expire_offers

        enqueue_on_commit(
            expire_offers,
            countdown=queue.ring_timeout_s,
            offers=[[call.pk, agent_id] for call, agent_id in offers],
        )
    return [call.pk for call in rung]


def _recently_missed_by(call: Call, queue: Queue) -> list[int]:
    return list(_recently_missed_by_each([call], queue).get(call.pk, ()))


def _recently_missed_by_each(calls: list[Call], queue: Queue) -> dict[int, set[int]]:
    """Agents who declined each call or let it ring out within the queue's ring timeout, by call
    id: it is not offered to them again straight away (the sweep routes again once that time has
    passed)."""
    if not calls:
        return {}
    since = timezone.now() - timedelta(seconds=queue.ring_timeout_s)
    missed: dict[int, set[int]] = {}
    for call_id, agent_id in CallEvent.objects.filter(
        call__in=calls, from_status=Call.Status.OFFERED, to_status=Call.Status.QUEUED, at__gte=since
    ).values_list("call_id", "agent_id"):
        missed.setdefault(call_id, set()).add(agent_id)
    return missed


# --- The agent's answers ------------------------------------------------------------------


@transaction.atomic
def offer_accept(*, agent_id: int, call_id: int) -> Call | None:
    """The agent clicked Accept. Exactly one agent wins a call; the others get None.

    The winner goes on_call; every tab of the agent stops ringing.
    """
    call = call_connect_agent(call_id=call_id, agent_id=agent_id)
    if call is None:
        return None
    agent_transition(
        agent_id=agent_id,
        allowed_from={Agent.Status.RINGING},
        to_status=Agent.Status.ON_CALL,
        missed_offers=0,
    )
    broadcast_on_commit(f"agent.{agent_id}", {"type": "call.taken", "call_id": call.pk, "agent_id": agent_id})
    return call


def offer_decline(*, agent_id: int, call_id: int, has_rung_out: bool = False) -> Call | None:
    """The agent declined, or the offer rang out: the call goes back to the queue, first in line.

    It counts as a missed offer; after the queue's limit of misses in a row the agent is put
    away. Routing runs again after commit.
    """
    with transaction.atomic():
        call = call_return_to_queue(
            call_id=call_id,
            agent_id=agent_id,
            detail="rang out" if has_rung_out else "declined",
            expired_only=has_rung_out,
        )
        if call is None:
            return None
        queue = Queue.objects.get(pk=call.queue_id)
        missed = Agent.objects.filter(pk=agent_id).values_list("missed_offers", flat=True).get() + 1
        next_status = (
            Agent.Status.AWAY if missed >= queue.missed_offers_before_away else Agent.Status.AVAILABLE
        )
        agent_transition(
            agent_id=agent_id,
            allowed_from={Agent.Status.RINGING},
            to_status=next_status,
            missed_offers=missed,
        )
        broadcast_on_commit(
            f"agent.{agent_id}", {"type": "call.withdrawn", "call_id": call.pk, "agent_id": agent_id}
        )
        transaction.on_commit(lambda: route_queue(queue_id=queue.pk))
    return call


AGENT_LOST = "the agent's audio was lost"


def call_agent_lost(*, call_id: int, agent_id: int | None) -> str | None:
    """The agent's leg left the call and did not come back within AGENT_LEG_GRACE_S (their browser,
    laptop or network went); the customer hears the hold audio. A call with a queue goes back to it,
    first in line (its `queued_at` kept) and with the queue's maximum wait from now, and is offered
    to another agent at once; a call we placed (no queue) ends, the customer hearing the closing
    message. The agent is put away (not rung again until they say they are available) and their
    tabs, if any is still open, are told why. Returns "requeued", "ended", or None when the call is
    no longer connected to that agent (it ended, or a newer leg took over)."""
    if agent_id is None:
        return None
    with transaction.atomic():
        call = call_take_back(call_id=call_id, agent_id=agent_id, detail=AGENT_LOST)
        if call is None:
            return None
        agent_transition(agent_id=agent_id, allowed_from={Agent.Status.ON_CALL}, to_status=Agent.Status.AWAY)
        broadcast_on_commit(
            f"agent.{agent_id}", {"type": "call.taken_back", "call_id": call.pk, "agent_id": agent_id}
        )
        queue = Queue.objects.filter(pk=call.queue_id).first()
        if queue is None:
            call_finish(
                call_id=call.pk,
                reason=Call.EndReason.FAILED,
                detail=AGENT_LOST,
                is_ended_by_us=True,
                is_farewell=True,
            )
            return "ended"
        from calls.tasks import end_overdue_wait

        transaction.on_commit(lambda: route_queue(queue_id=queue.pk))
        enqueue_on_commit(end_overdue_wait, countdown=queue.max_wait_s, call_id=call.pk)
    logger.info("call %s: back in queue %s after agent %s's audio was lost", call_id, queue.pk, agent_id)
    return "requeued"


# --- Calls that end -----------------------------------------------------------------------


def release_agent_of(ended: EndedCall) -> None:
    """Free the agent a call rang or was connected to when it ended (inside the ending transaction)."""
    if ended.offered_to_id:
        agent_transition(
            agent_id=ended.offered_to_id,
            allowed_from={Agent.Status.RINGING},
            to_status=Agent.Status.AVAILABLE,
        )
        broadcast_on_commit(
            f"agent.{ended.offered_to_id}",
            {"type": "call.withdrawn", "call_id": ended.call.pk, "agent_id": ended.offered_to_id},
        )
    if ended.agent_id:
        agent_transition(
            agent_id=ended.agent_id, allowed_from={Agent.Status.ON_CALL}, to_status=Agent.Status.WRAP_UP
        )
        broadcast_on_commit(
            f"agent.{ended.agent_id}",
            {
                "type": "call.ended",
                "call_id": ended.call.pk,
                "agent_id": ended.agent_id,
                "dispositions": Call.Disposition.choices,
            },
        )
        wrap_up_s = (
            Queue.objects.filter(pk=ended.call.queue_id).values_list("wrap_up_s", flat=True).first() or 0
        )
        from calls.tasks import end_wrap_up

        enqueue_on_commit(end_wrap_up, countdown=wrap_up_s, agent_id=ended.agent_id)


@transaction.atomic
def call_finish(
    *, call_id: int, reason: str, detail: str = "", is_ended_by_us: bool = False, is_farewell: bool = False
) -> EndedCall | None:
    """End a call and free its agent: the one way a call ends once agents are involved.

    `is_ended_by_us`: we hang up (an agent, the maximum wait, a media failure), so Meta is told
    to terminate the call too (after commit, by a task); not when Meta told us it ended.
    `is_farewell`: the customer first hears the queue's closing message; Meta is told once it
    has played (the call is already ended for routing, reports and the capacity count).
    """
    ended = call_end(call_id=call_id, reason=reason, detail=detail, is_farewell=is_farewell)
    if ended is not None:
        release_agent_of(ended)
        if is_ended_by_us:
            from calls.tasks import terminate_on_meta

            countdown = farewell_s(ended.call) if is_farewell else 0
            enqueue_on_commit(terminate_on_meta, countdown=countdown, call_id=call_id)
    return ended


def calls_finish_many(*, ends: dict[Call, tuple[str, str]]) -> list[EndedCall]:
    """`call_finish` for many calls Meta told us ended (`ends`: each call, as read, to its reason
    and detail), ended together (calls.services.calls_end_many)."""
    ended = calls_end_many(ends=ends)
    for each in ended:
        release_agent_of(each)
    return ended


def farewell_s(call: Call) -> float:
    """How long the closing message of the call's queue lasts, plus a margin for the media's pace."""
    language = Queue.objects.filter(pk=call.queue_id).values_list("language", flat=True).first()
    return prompt_for(CLOSING, language or FALLBACK_LANGUAGE).duration_s + FAREWELL_MARGIN_S


def call_waits(*, call_id: int) -> Call | None:
    """A call joined its queue: its maximum wait is timed (after commit) and routing runs at once."""
    call = Call.objects.filter(pk=call_id, status=Call.Status.QUEUED).select_related("queue").first()
    if call is None:
        return None
    from calls.tasks import end_overdue_wait

    _route(call.queue)
    # After routing, so that after commit the ring leaves before the timer is sent to the broker.
    enqueue_on_commit(end_overdue_wait, countdown=call.queue.max_wait_s, call_id=call.pk)
    return call


def calls_wait_many(*, queue: Queue, call_ids: list[int]) -> None:
    """`call_waits` for many calls that joined one queue together: one timer, one routing pass."""
    from calls.tasks import end_overdue_waits

    _route(queue)
    enqueue_on_commit(end_overdue_waits, countdown=queue.max_wait_s, call_ids=call_ids)  # after the rings


def hand_off_unclaimed_calls() -> int:
    """Calls no media process has taken within HAND_OFF_RETRY_S are offered to the media processes
    again, with Meta's SDP offer from the stored webhook event: the first hand-off may have been lost
    (Redis down or restarting). A process that finds the call taken already does nothing."""
    now = timezone.now()
    unclaimed = Call.objects.filter(
        direction=Call.Direction.INBOUND,
        status__in=[Call.Status.QUEUED, Call.Status.OFFERED, Call.Status.CONNECTED],
        media_channel="",
        answered_at__isnull=True,
        started_at__lt=now - timedelta(seconds=HAND_OFF_RETRY_S),
        started_at__gte=now - timedelta(seconds=settings.MEDIA_ANSWER_TIMEOUT_S),
    ).values_list("pk", "wa_call_id")
    handed = 0
    for call_id, wa_call_id in list(unclaimed):
        connect = call_connect_event(wa_call_id=wa_call_id)
        if connect is not None:
            call_hand_off(call_id=call_id, sdp_offer=connect.sdp)
            handed += 1
    return handed


def end_calls_never_answered() -> int:
    """Calls no media process answered in time (none running, or all overloaded) end as `failed`,
    and Meta is told to reject them, well inside Meta's own limit for answering."""
    too_old = timezone.now() - timedelta(seconds=settings.MEDIA_ANSWER_TIMEOUT_S)
    stuck = Call.objects.filter(
        direction=Call.Direction.INBOUND,
        status__in=[Call.Status.QUEUED, Call.Status.OFFERED, Call.Status.CONNECTED],
        answered_at__isnull=True,
        started_at__lt=too_old,
    ).values_list("pk", flat=True)
    ended = 0
    for call_id in list(stuck):
        with transaction.atomic():
            if call_finish(call_id=call_id, reason=Call.EndReason.FAILED, detail="no media process answered"):
                from calls.tasks import reject_on_meta

                enqueue_on_commit(reject_on_meta, call_id=call_id)
                ended += 1
    return ended


def call_wait_overdue(*, call_id: int) -> EndedCall | None:
    """The caller waited the queue's maximum: the call ends as `no_agent` (if still waiting, and
    only once the deadline has really passed: a timer can fire early or for an older state). A call
    taken back from an agent whose audio was lost waits the maximum again from then."""
    call = Call.objects.filter(pk=call_id, status=Call.Status.QUEUED).select_related("queue").first()
    if call is None:
        return None
    cutoff = timezone.now() - timedelta(seconds=call.queue.max_wait_s)  # waiting since then: too long
    if call.queued_at > cutoff:
        return None
    # A call back from an agent whose audio was lost keeps its place in line but waits afresh.
    taken_back = CallEvent.objects.filter(
        call_id=call_id, from_status=Call.Status.CONNECTED, to_status=Call.Status.QUEUED, at__gt=cutoff
    )
    if taken_back.exists():
        return None
    ended = call_finish(
        call_id=call_id,
        reason=Call.EndReason.NO_AGENT,
        detail="maximum wait reached",
        is_ended_by_us=True,
        is_farewell=True,
    )
    if ended is not None:
        from calls.tasks import send_call_us_button

        enqueue_on_commit(send_call_us_button, call_id=call_id)
    return ended


def end_calls_of_lost_media_processes() -> int:
    """Calls held by a media process whose heartbeat stopped end as `failed` (and on Meta).

    A process that stops cleanly ends its own calls; this catches one that died. Only calls
    untouched for longer than the heartbeat's lifetime are considered, so a process starting up
    or a call changing hands is not mistaken for a lost one; and none while Redis has been up for
    less than that (restarted, it has lost every heartbeat until each process beats again). A
    caller whose call so ended is sent a message with a button to call again.
    """
    from calls.media import HEARTBEAT_TTL_S
    from calls.tasks import send_call_us_button
    from core.selectors import redis_uptime_s

    quiet_since = timezone.now() - timedelta(seconds=HEARTBEAT_TTL_S)
    held = Call.objects.filter(
        status__in=[Call.Status.QUEUED, Call.Status.OFFERED, Call.Status.CONNECTED],
        updated_at__lt=quiet_since,
    ).exclude(media_channel="")
    candidates = list(held.values_list("pk", "media_channel"))
    if not candidates:
        return 0
    if redis_uptime_s() < HEARTBEAT_TTL_S:
        return 0
    alive = selectors.live_media_channels()
    ended = 0
    for call_id, channel in candidates:
        if channel in alive:
            continue
        with transaction.atomic():
            finished = call_finish(
                call_id=call_id,
                reason=Call.EndReason.FAILED,
                detail="media process lost",
                is_ended_by_us=True,
            )
            if finished is not None and finished.call.direction == Call.Direction.INBOUND:
                enqueue_on_commit(send_call_us_button, call_id=call_id, is_dropped=True)
        ended += finished is not None
    return ended


# What an agent may note about a call: longer notes (and drafts) are cut there.
WRAP_UP_NOTES_MAX = 5000
# How an agent leaves wrap-up: by filing the call, choosing the status it then has in the same step.
NEXT_STATUSES_AFTER_FILING = frozenset({Agent.Status.AVAILABLE, Agent.Status.AWAY})


@transaction.atomic
def call_wrap_up(
    *, agent_id: int, call_id: int, disposition: str, notes: str, next_status: str = Agent.Status.AVAILABLE
) -> bool:
    """The agent files the call (disposition, notes) and, if still in wrap-up, takes `next_status`
    (available or away) in the same transaction: no call rings in between.

    Only the agent who took the call, and only once it has ended; filing again overwrites. Every
    tab of the agent hears `call.filed`, and the agent's unfiled draft of it is forgotten.
    """
    if disposition not in Call.Disposition.values:
        raise ValueError(f"{disposition!r} is not a disposition")
    if next_status not in NEXT_STATUSES_AFTER_FILING:
        raise ValueError(f"{next_status!r} is not a status to take after filing")
    if not _file(agent_id=agent_id, call_id=call_id, disposition=disposition, notes=notes):
        return False
    agent_transition(agent_id=agent_id, allowed_from={Agent.Status.WRAP_UP}, to_status=next_status)
    return True


def _file(*, agent_id: int, call_id: int, disposition: str, notes: str, is_timed_out: bool = False) -> bool:
    filed = Call.objects.filter(pk=call_id, agent_id=agent_id, status=Call.Status.ENDED).update(
        disposition=disposition, wrap_up_notes=notes[:WRAP_UP_NOTES_MAX], updated_at=timezone.now()
    )
    if filed != 1:
        return False
    transaction.on_commit(lambda: call_filed.send(sender=Call, call_id=call_id))
    transaction.on_commit(lambda: presence.wrap_up_draft_delete(agent_id=agent_id, call_id=call_id))
    broadcast_on_commit(
        f"agent.{agent_id}",
        {"type": "call.filed", "call_id": call_id, "agent_id": agent_id, "is_timed_out": is_timed_out},
    )
    return True


def wrap_up_end(*, agent_id: int, is_forced: bool = True, to_status: str = Agent.Status.AVAILABLE) -> bool:
    """Wrap-up time is over: the agent is available again, or `to_status` (offline: their last
    dashboard closed), if still in wrap-up.

    What the agent typed and did not file (the draft every tab keeps on the server) is filed with
    the call, so that the form, which closes, takes nothing with it.

    With `is_forced=False` (the timer) only when the agent's wrap-up has lasted its full time: an
    older timer must not cut short the wrap-up of a later call.
    """
    if not is_forced:
        wrap_up_s = dict(selectors.agents_in_wrap_up()).get(agent_id)
        started = Agent.objects.filter(pk=agent_id).values_list("status_changed_at", flat=True).first()
        if (
            wrap_up_s is None
            or started is None
            or started > timezone.now() - timedelta(seconds=wrap_up_s - 1)
        ):
            return False
    with transaction.atomic():
        if not agent_transition(agent_id=agent_id, allowed_from={Agent.Status.WRAP_UP}, to_status=to_status):
            return False
        call_id = selectors.call_to_file(agent_id=agent_id)
        draft = presence.wrap_up_draft(agent_id=agent_id, call_id=call_id) if call_id else None
        if draft is not None:
            _file(agent_id=agent_id, call_id=call_id, **draft, is_timed_out=True)
        return True


def offer_withdraw(*, agent_id: int, to_status: str) -> bool:
    """The agent rung for a call goes away or offline: the ring is withdrawn and the call goes back
    to the queue, first in line, for the next agent (routing runs after commit).

    As a decline, the offer counts as missed in the reports (`went away`, an agent's choice like a
    decline); the agent's count of missed offers in a row is left alone: it exists to put away an
    agent who does not answer, and this one has just gone. False, changing nothing, when no call
    rings for the agent any more (accepted or withdrawn meanwhile).
    """
    call_id = (
        Call.objects.filter(status=Call.Status.OFFERED, offered_to_id=agent_id)
        .values_list("pk", flat=True)
        .first()
    )
    if call_id is None:
        return False
    with transaction.atomic():
        call = call_return_to_queue(call_id=call_id, agent_id=agent_id, detail=f"went {to_status}")
        if call is None:
            return False
        if not agent_transition(agent_id=agent_id, allowed_from={Agent.Status.RINGING}, to_status=to_status):
            transaction.set_rollback(True)
            return False
        broadcast_on_commit(
            f"agent.{agent_id}", {"type": "call.withdrawn", "call_id": call.pk, "agent_id": agent_id}
        )
        transaction.on_commit(lambda: route_queue(queue_id=call.queue_id))
    return True


# --- Safety sweeps (beat) -----------------------------------------------------------------


def sweep() -> dict[str, int]:
    """Catch what timers missed: offers past their expiry, waits past the queue's maximum, calls
    left waiting while an agent is free, calls no media process answered or whose process died,
    wrap-ups past their time, and conversations left waiting while an agent has a chat place
    free. Idempotent; run every few seconds by beat."""
    now = timezone.now()
    counts = {
        "offers_expired": 0,
        "waits_ended": 0,
        "offered": 0,
        "handed_off_again": 0,
        "never_answered": 0,
        "media_lost": 0,
        "wrap_ups_ended": 0,
        "outbound_ended": 0,
        "conversations_assigned": 0,
    }
    for call_id, agent_id in Call.objects.filter(
        status=Call.Status.OFFERED, offer_expires_at__lte=now
    ).values_list("pk", "offered_to_id"):
        if offer_decline(agent_id=agent_id, call_id=call_id, has_rung_out=True):
            counts["offers_expired"] += 1
    for queue in Queue.objects.filter(calls__status=Call.Status.QUEUED).distinct():
        overdue = Call.objects.filter(
            queue=queue, status=Call.Status.QUEUED, queued_at__lte=now - timedelta(seconds=queue.max_wait_s)
        )
        for call_id in overdue.values_list("pk", flat=True):
            if call_wait_overdue(call_id=call_id):
                counts["waits_ended"] += 1
    for queue_id in (
        Queue.objects.filter(calls__status=Call.Status.QUEUED).distinct().values_list("pk", flat=True)
    ):
        counts["offered"] += len(route_queue(queue_id=queue_id))
    counts["handed_off_again"] = hand_off_unclaimed_calls()
    counts["never_answered"] = end_calls_never_answered()
    counts["media_lost"] = end_calls_of_lost_media_processes()
    from calls.outbound import end_outbound_calls_never_picked_up

    counts["outbound_ended"] = end_outbound_calls_never_picked_up()
    for agent_id, _ in selectors.agents_in_wrap_up():
        if wrap_up_end(agent_id=agent_id, is_forced=False):
            counts["wrap_ups_ended"] += 1
    counts["conversations_assigned"] = conversations_route_waiting()
    return counts
