"""Deliveries that arrive while the web process is busy are received together (group commit).

When Meta sends a burst (a campaign's customers all calling at once), deliveries queue up
behind each other in the web process. Taking every delivery that is waiting at that moment into
one transaction costs one commit and a few bulk statements instead of a transaction of its own
each. A delivery arriving alone is received at once, as before: nothing waits for company. Each
request still gets its own answer, and only once its delivery's transaction has committed.

Deliveries go in two lanes: calls' (a caller waits for the ring) and the rest (a campaign's
statuses, customers' messages: stored for the worker, handled in batches by it). A call is never
received behind a batch of statuses. The lane is only a matter of who waits for whom: whatever a
delivery holds, its events are received the same way in either lane.

In each lane one request at a time receives: the one that finds nobody receiving, with whatever is
waiting (its own delivery first). When it is done it hands the lane to the oldest request still
waiting. In the web server (whatsapp.asgi) each lane has a long-lived thread, and a batch there
is only stored (`webhook_deliveries_store`) and answered: the events the web process handles
itself (calls') are stored claimed by it and go to its handling thread (`ClaimedEvents`), which
handles them right after, in batches of its own that wait for the receipt turn (the web
processes' batches are handled one at a time: they would queue for the same rows anyway); what
was claimed while a batch waited joins it. Meta's answer never waits for a handler, whatever the
mix. Elsewhere (the Django view), a batch is stored and handled in one transaction
(`webhook_deliveries_receive`), after its turn, in the request's own thread.
"""

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from whatsapp.services import (
    Claimed,
    DeliveryOutcome,
    webhook_deliveries_receive,
    webhook_deliveries_store,
    webhook_events_handle_claimed,
    webhook_signature_is_valid,
)

logger = logging.getLogger(__name__)

MAX_TOGETHER = 50  # deliveries in one transaction at most: the first of them waits for all of them
_YOUR_TURN = object()


@dataclass
class _Arrivals:
    waiting: list[tuple[bytes, asyncio.Future]] = field(default_factory=list)
    is_receiving: bool = False


# Where the receiving request's database work runs: unset, in the thread Django gives a request
# (the view's); set (whatsapp.asgi), in that executor's thread (calls' lane) or the other's (the
# rest), which hand their database connection back after each receipt, as Django does when a
# request ends.
receiving_thread: ContextVar[Executor | None] = ContextVar("receiving_thread", default=None)
storing_thread: ContextVar[Executor | None] = ContextVar("storing_thread", default=None)
handling: "ContextVar[ClaimedEvents | None]" = ContextVar("handling", default=None)

CALLS, OTHERS = "calls", "others"
_lanes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Arrivals]]" = (
    weakref.WeakKeyDictionary()
)


def lane_of(body: bytes) -> str:
    """The lane of a delivery: calls' if it may hold a call (Meta's `calls` field), else the others'.
    Read off the raw body (it is parsed once, in its batch): a text that merely says "calls" goes
    in calls' lane, which only makes it wait with the calls."""
    return CALLS if b'"calls"' in body else OTHERS


async def delivery_answer(*, body: bytes, signature: str | None) -> tuple[int, dict]:
    """The answer to one POSTed delivery: its HTTP status and JSON body. Unsigned or wrongly signed
    deliveries are refused (403) before anything is read from them; malformed ones are stored as
    such and refused (400)."""
    if not webhook_signature_is_valid(
        body=body, signature=signature, app_secret=settings.WHATSAPP_APP_SECRET
    ):
        return 403, {"error": "missing or invalid X-Hub-Signature-256"}
    outcome = await delivery_receive(body)
    if not outcome.is_accepted:
        return 400, {"error": outcome.error}
    return 200, {"received": len(outcome.new_events), "duplicates": outcome.delivery.duplicate_count}


async def delivery_receive(body: bytes) -> DeliveryOutcome:
    """Receive one signed delivery, together with whichever others are waiting; its outcome."""
    loop = asyncio.get_running_loop()
    lane = lane_of(body)
    arrivals = _lanes.setdefault(loop, {CALLS: _Arrivals(), OTHERS: _Arrivals()})[lane]
    answer = loop.create_future()
    arrivals.waiting.append((body, answer))
    if arrivals.is_receiving:
        try:
            outcome = await answer
        except asyncio.CancelledError:
            if (
                answer.done()
                and not answer.cancelled()
                and answer.exception() is None
                and answer.result() is _YOUR_TURN
            ):
                _hand_over(arrivals)  # given the turn, then gone: the next one takes it
            raise
        if outcome is not _YOUR_TURN:
            return outcome
    arrivals.is_receiving = True
    together = arrivals.waiting[:MAX_TOGETHER]
    del arrivals.waiting[:MAX_TOGETHER]
    # In a task of its own: should this request go away (its client hung up), the others in the
    # batch are still answered and the turn still passes on.
    receiving = loop.create_task(_receive(together, arrivals, lane))
    try:
        outcomes = await asyncio.shield(receiving)
    except Exception:
        if answer.done() and not answer.cancelled():
            answer.exception()  # this request raises the batch's error itself (not "never retrieved")
        raise
    return outcomes[[waiter for _, waiter in together].index(answer)]


async def _receive(
    together: list[tuple[bytes, asyncio.Future]], arrivals: _Arrivals, lane: str
) -> list[DeliveryOutcome]:
    loop = asyncio.get_running_loop()
    joined: list[tuple[bytes, asyncio.Future]] = []

    def take_more() -> list[bytes]:
        """(In the receiving thread, once the batch's turn has come, or as it is stored.) The
        deliveries that arrived meanwhile: they join the batch."""
        # No timeout: the loop is free (it awaits this thread), and a take given up on could
        # still run and leave the requests it took unanswered.
        taken = asyncio.run_coroutine_threadsafe(
            _take_waiting(arrivals, MAX_TOGETHER - len(together)), loop
        ).result()
        joined.extend(taken)
        return [body for body, _ in taken]

    executor = (receiving_thread if lane == CALLS else storing_thread).get()
    bodies = [body for body, _ in together]
    try:
        if executor is None:
            outcomes = await sync_to_async(webhook_deliveries_receive)(bodies=bodies, take_more=take_more)
        else:
            store = sync_to_async(_store_and_hand_on, thread_sensitive=False, executor=executor)
            outcomes = await store(bodies=bodies, take_more=take_more, handling=handling.get())
    except BaseException as error:  # every request of the batch answers 500, and Meta delivers again
        for _, waiter in [*together, *joined]:
            if not waiter.done():
                waiter.set_exception(error)
        raise
    else:
        for (_, waiter), outcome in zip([*together, *joined], outcomes, strict=True):
            if not waiter.done():
                waiter.set_result(outcome)
        return outcomes
    finally:
        _hand_over(arrivals)


async def _take_waiting(arrivals: _Arrivals, count: int) -> list[tuple[bytes, asyncio.Future]]:
    """Up to `count` of the deliveries waiting, oldest first (those whose request is gone are
    dropped: Meta delivers them again)."""
    taken = []
    while arrivals.waiting and len(taken) < count:
        body, waiter = arrivals.waiting.pop(0)
        if not waiter.done():
            taken.append((body, waiter))
    return taken


def _store_and_hand_on(
    *, bodies: list[bytes], take_more: Callable[[], list[bytes]], handling: "ClaimedEvents"
) -> list[DeliveryOutcome]:
    """(In a lane's thread.) Store the batch, with the deliveries that arrived meanwhile; the
    events this process handles go to its handling thread, and the outcomes to the requests,
    which are answered at once."""
    try:
        outcomes, claimed = webhook_deliveries_store(bodies=bodies, take_more=take_more)
    finally:
        close_old_connections()
    if claimed:
        handling.add(claimed)
    return outcomes


class ClaimedEvents:
    """The events this process stored claimed (calls', in production), handled in its handling
    thread, oldest first, after their deliveries were answered: Meta's answer never waits for a
    handler, and a caller's ring only for the batches before it. Each batch waits for the receipt
    turn, and what was claimed meanwhile joins it (`webhook_events_handle_claimed`). The thread is
    the process's, not a request's: handling goes on whatever becomes of the requests. A batch
    that fails is logged and left claimed, for the sweep to handle once its lease is over."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._pending: list[Claimed] = []
        self._is_handling = False

    def add(self, claimed: list[Claimed]) -> None:
        with self._lock:
            self._pending.extend(claimed)
            if self._is_handling:
                return
            self._is_handling = True
        self._executor.submit(self._handle_pending)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._is_handling

    def _take(self, count: int) -> list[Claimed]:
        with self._lock:
            taken = self._pending[:count]
            del self._pending[:count]
            return taken

    def _handle_pending(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        self._is_handling = False
                        return
                batch = self._take(MAX_TOGETHER)
                try:
                    more = functools.partial(self._take, MAX_TOGETHER - len(batch))
                    webhook_events_handle_claimed(batch, take_more=more)
                except Exception:
                    logger.exception(
                        "webhook events stored but not handled: the sweep handles them after the lease"
                    )
                    close_old_connections()  # a connection that broke is not used again
        finally:
            close_old_connections()


def _hand_over(arrivals: _Arrivals) -> None:
    while arrivals.waiting:
        _, waiter = arrivals.waiting[0]
        if not waiter.done():
            waiter.set_result(_YOUR_TURN)
            return
        del arrivals.waiting[0]  # its request is gone (the client hung up): Meta delivers it again
    arrivals.is_receiving = False
