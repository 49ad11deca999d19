import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from core.locks import transaction_lock
from core.logs import about_meta_call
from whatsapp import dispatch
from whatsapp.calling_settings import calling_settings_problems, problems_text
from whatsapp.events import (
    AccountSettingsUpdate,
    AccountUpdate,
    CallRecordingAvailable,
    CallSipCreated,
    CallTranscriptionAvailable,
    Event,
    ParsedDelivery,
    event_from_context,
    parse_delivery,
)
from whatsapp.models import BusinessNumber, WebhookDelivery, WebhookEvent

logger = logging.getLogger(__name__)

Claimed = tuple[Event, WebhookEvent]  # an event the web process stored `processing`, to handle next

SIGNATURE_PREFIX = "sha256="


def webhook_signature(*, body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 value Meta sends for `body` (WHATSAPP_API.md §1.2)."""
    return SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_signature_is_valid(*, body: bytes, signature: str | None, app_secret: str) -> bool:
    """Constant-time check of the signature header over the raw body."""
    if not app_secret or not signature or not signature.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(webhook_signature(body=body, app_secret=app_secret), signature)


def decode_json(body: bytes) -> object:
    """Strict JSON: no NaN or Infinity, and no NUL characters (neither is JSON Meta sends, and
    PostgreSQL's jsonb cannot store them)."""

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    decoded = json.loads(body, parse_constant=refuse_constant)
    if _has_nul(decoded):
        raise ValueError("the body contains NUL characters")
    return decoded


def _has_nul(node: object) -> bool:
    if isinstance(node, str):
        return "\x00" in node
    if isinstance(node, dict):
        return any(_has_nul(key) or _has_nul(value) for key, value in node.items())
    if isinstance(node, list):
        return any(_has_nul(item) for item in node)
    return False


@dataclass
class DeliveryOutcome:
    delivery: WebhookDelivery
    new_events: list[WebhookEvent]
    error: str = ""

    @property
    def is_accepted(self) -> bool:
        return self.delivery.status == WebhookDelivery.Status.ACCEPTED


def webhook_delivery_receive(*, body: bytes) -> DeliveryOutcome:
    """Store a signed delivery and its events, and handle each event seen for the first time.

    One transaction: the delivery is stored raw; each event is stored under its idempotency key
    (a redelivered event is counted as a duplicate and has no second effect) and its handler
    runs at once inside a savepoint, so a failing handler undoes only its own changes and
    leaves its event `failed` for a later retry. If the process dies before the commit nothing
    is stored, Meta gets no 200, and redelivers. Items that do not parse are listed in
    `problems`; nothing half-parsed is stored.
    """
    try:
        parsed = parse_delivery(decode_json(body))
    except (ValueError, RecursionError) as error:
        reason = (
            "the body is not valid JSON"
            if isinstance(error, json.JSONDecodeError | RecursionError)
            else str(error)
        )
        delivery = WebhookDelivery.objects.create(
            body=body, status=WebhookDelivery.Status.MALFORMED, problems=[{"where": "body", "reason": reason}]
        )
        logger.warning("malformed WhatsApp webhook delivery %s: %s", delivery.pk, reason)
        return DeliveryOutcome(delivery=delivery, new_events=[], error=reason)

    new_events: list[WebhookEvent] = []
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            body=body,
            status=WebhookDelivery.Status.ACCEPTED,
            problems=[{"where": problem.where, "reason": problem.reason} for problem in parsed.problems],
            event_count=len(parsed.events),
        )
        for take_locks in dispatch.lock_takers():
            take_locks(parsed.events)
        for event in parsed.events:
            record = _event_store_and_handle(delivery=delivery, event=event)
            if record is not None:
                new_events.append(record)
        for nudge in _worker_nudges_for(new_events):
            transaction.on_commit(nudge)
        duplicates = len(parsed.events) - len(new_events)
        if duplicates:
            delivery.event_count, delivery.duplicate_count = len(new_events), duplicates
            delivery.save(update_fields=["event_count", "duplicate_count"])
    if parsed.problems:
        logger.warning("WhatsApp webhook delivery %s had problems: %s", delivery.pk, delivery.problems)
    return DeliveryOutcome(delivery=delivery, new_events=new_events)


RECEIPT_TURN = "whatsapp:webhook-receipt"  # one batch of deliveries written at a time (PostgreSQL)


def webhook_deliveries_receive(
    *, bodies: list[bytes], take_more: Callable[[], list[bytes]] | None = None
) -> list[DeliveryOutcome]:
    """Signed deliveries that arrived together, stored and handled in one transaction (group commit):
    what `webhook_delivery_receive` does for each, in order, with one insert of the deliveries, one
    of their events and, for kinds with a handler of many (whatsapp.dispatch), one handler call per
    run of such events. A delivery whose body does not parse, or a batch that trips over a database
    error (an event stored meanwhile by another process), is received on its own instead.

    With `take_more`, a batch with events handled in the request (calls') first waits for its turn
    (such batches are written one at a time: they would queue for the same rows anyway; one that
    only stores events for the worker does not wait), then calls it for the deliveries
    that arrived while it waited, which join it rather than wait for a turn of their own. The
    outcomes follow `bodies`, then those.
    """
    if take_more is None and len(bodies) == 1:
        return [webhook_delivery_receive(body=bodies[0])]
    bodies = list(bodies)
    parsed, malformed = _parsed(bodies, start=0)
    try:
        with transaction.atomic():
            if take_more is not None:
                has_turn = _needs_turn(parsed)
                if has_turn:
                    transaction_lock(RECEIPT_TURN)
                more = take_more()
                more_parsed, more_malformed = _parsed(more, start=len(bodies))
                if not has_turn and _needs_turn(more_parsed):
                    transaction_lock(RECEIPT_TURN)
                bodies += more
                parsed += more_parsed
                malformed += more_malformed
            stored = _deliveries_store_and_handle(parsed) if parsed else []
    except DatabaseError:
        return _each_alone(bodies)
    return _outcomes(bodies, parsed, stored, malformed)


def webhook_deliveries_store(
    *, bodies: list[bytes], take_more: Callable[[], list[bytes]] | None = None
) -> tuple[list[DeliveryOutcome], list[Claimed]]:
    """(The web server's intake, whatsapp.intake.) Deliveries that arrived together stored as
    `webhook_deliveries_receive` stores them, in one transaction, but none of their events handled:
    those the web process handles (`handled_in_request`) are stored `processing`, claimed by it,
    and returned in arrival order, for the intake to answer first and hand them to
    `webhook_events_handle_claimed` after. A 200 still means stored: should the process die in
    between, the sweep (`webhook_events_redispatch_stale`) handles them once their lease is over.
    No turn is waited for: the batch only inserts (the events in key order, as the others' lane
    always did). With `take_more`, the deliveries that arrived by the time the batch is stored join
    it. The outcomes follow `bodies`, then those."""
    if take_more is not None:
        bodies = [*bodies, *take_more()]
    parsed, malformed = _parsed(bodies, start=0)
    try:
        with transaction.atomic():
            stored, claimed = _deliveries_store(parsed, claim=True) if parsed else ([], [])
    except DatabaseError:
        return _each_alone(bodies), []
    return _outcomes(bodies, parsed, stored, malformed), claimed


def _each_alone(bodies: list[bytes]) -> list[DeliveryOutcome]:
    """Deliveries whose batch tripped over a database error (an event stored meanwhile by another
    process), each received alone instead: stored and handled as `webhook_delivery_receive` does."""
    logger.warning("%s deliveries received together failed as one: receiving each alone", len(bodies))
    return [webhook_delivery_receive(body=body) for body in bodies]


def _outcomes(
    bodies: list[bytes],
    parsed: list[tuple[int, bytes, ParsedDelivery]],
    stored: list[DeliveryOutcome],
    malformed: list[int],
) -> list[DeliveryOutcome]:
    """The outcome of each body, in order: stored, or malformed (stored as such, with the reason)."""
    outcomes: list[DeliveryOutcome | None] = [None] * len(bodies)
    for (index, _, _), outcome in zip(parsed, stored, strict=True):
        outcomes[index] = outcome
    for index in malformed:
        outcomes[index] = webhook_delivery_receive(body=bodies[index])
    return outcomes


def _needs_turn(parsed: list[tuple[int, bytes, ParsedDelivery]]) -> bool:
    """Whether a batch waits for the receipt turn: only one whose events are handled in the request
    updates shared rows. A batch that only stores events for the worker inserts them in key order
    (two such batches storing one key at once: the second fails and its deliveries are received
    each alone)."""
    return any(handled_in_request(event.kind) for _, _, delivery in parsed for event in delivery.events)


def _parsed(bodies: list[bytes], *, start: int) -> tuple[list[tuple[int, bytes, ParsedDelivery]], list[int]]:
    """(position, body, parsed delivery) of each body that parses, and the positions of the others."""
    parsed, malformed = [], []
    for index, body in enumerate(bodies, start=start):
        try:
            parsed.append((index, body, parse_delivery(decode_json(body))))
        except (ValueError, RecursionError):
            malformed.append(index)
    return parsed, malformed


def _deliveries_store_and_handle(parsed: list[tuple[int, bytes, ParsedDelivery]]) -> list[DeliveryOutcome]:
    outcomes, to_handle = _deliveries_store(parsed, claim=False)
    _handle_in_order(to_handle)
    return outcomes


def _deliveries_store(
    parsed: list[tuple[int, bytes, ParsedDelivery]], *, claim: bool
) -> tuple[list[DeliveryOutcome], list[Claimed]]:
    """Store the deliveries and their events seen for the first time (one insert each): the
    outcomes, and the events to handle in the web process, in arrival order. Without `claim` they
    are stored `handled` and handled next in this transaction, so the shared rows their handlers
    need are locked first (then the events' keys, as they are inserted); with `claim`, stored
    `processing` for `webhook_events_handle_claimed`, which locks the shared rows itself."""
    keys = [event.idempotency_key for _, _, delivery in parsed for event in delivery.events]
    seen = set(
        WebhookEvent.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True)
    )
    deliveries, fresh_events = [], []
    for _, body, delivery in parsed:
        fresh = [event for event in delivery.events if event.idempotency_key not in seen]
        fresh = list({event.idempotency_key: event for event in fresh}.values())  # twice in one body
        seen.update(event.idempotency_key for event in fresh)
        deliveries.append(
            WebhookDelivery(
                body=body,
                status=WebhookDelivery.Status.ACCEPTED,
                problems=[
                    {"where": problem.where, "reason": problem.reason} for problem in delivery.problems
                ],
                event_count=len(fresh),
                duplicate_count=len(delivery.events) - len(fresh),
            )
        )
        fresh_events.append(fresh)
    if not claim:
        # Shared rows first, then the events' keys in key order: concurrent batches (and single
        # deliveries, which take the same locks first) queue for each other instead of deadlocking.
        for take_locks in dispatch.lock_takers():
            take_locks([event for events in fresh_events for event in events])
    WebhookDelivery.objects.bulk_create(deliveries)
    now = timezone.now()
    records = [
        [_event_record(delivery=delivery, event=event, at=now, claim=claim) for event in events]
        for delivery, events in zip(deliveries, fresh_events, strict=True)
    ]
    every_record = [record for group in records for record in group]
    WebhookEvent.objects.bulk_create(sorted(every_record, key=lambda record: record.idempotency_key))
    to_handle = [
        (event, record) for events, group in zip(fresh_events, records, strict=True)
        for event, record in zip(events, group, strict=True)
        if record.status in TO_HANDLE_NOW
    ]  # fmt: skip
    for nudge in _worker_nudges_for(every_record):
        transaction.on_commit(nudge)
    for delivery, (_, _, parsed_delivery) in zip(deliveries, parsed, strict=True):
        if parsed_delivery.problems:
            logger.warning("WhatsApp webhook delivery %s had problems: %s", delivery.pk, delivery.problems)
    outcomes = [
        DeliveryOutcome(delivery=delivery, new_events=group)
        for delivery, group in zip(deliveries, records, strict=True)
    ]
    return outcomes, to_handle


TO_HANDLE_NOW = frozenset({WebhookEvent.Status.HANDLED, WebhookEvent.Status.PROCESSING})


def handled_in_request(kind: str) -> bool:
    """Whether an event of `kind` is handled by the web process that receives it (in the request,
    or in the web server right after its answer: whatsapp.intake): a call's (a caller waits for
    the ring), or every kind when WEBHOOK_HANDLE_IN_WORKER is off. The others are stored `queued`
    and handled by the worker in batches (`webhook_events_handle_queued`)."""
    return kind in REQUEST_KINDS or not settings.WEBHOOK_HANDLE_IN_WORKER


REQUEST_KINDS = frozenset({"call.connect", "call.terminate", "call.status"})


def _event_record(*, delivery: WebhookDelivery, event: Event, at, claim: bool = False) -> WebhookEvent:
    has_handler = dispatch.handler_for(event.kind) is not None
    stored = {
        "delivery": delivery,
        "kind": event.kind,
        "idempotency_key": event.idempotency_key,
        "waba_id": event.waba_id,
        "phone_number_id": event.phone_number_id,
        "occurred_at": event.occurred_at,
        "payload": event.raw,
    }
    if has_handler and not handled_in_request(event.kind):
        return WebhookEvent(**stored, status=WebhookEvent.Status.QUEUED)
    if has_handler and claim:
        return WebhookEvent(**stored, status=WebhookEvent.Status.PROCESSING, attempts=1, last_attempt_at=at)
    return WebhookEvent(
        **stored,
        status=WebhookEvent.Status.HANDLED if has_handler else WebhookEvent.Status.UNHANDLED,
        attempts=1,
        last_attempt_at=at,
        handled_at=at,
    )


def _handle_in_order(stored: list[tuple[Event, WebhookEvent]]) -> None:
    """Run the handlers in arrival order; a run of one kind goes to its handler of many, if any.

    Calls' events are first grouped by kind (`_calls_grouped`), so that a burst's connects, which
    arrive between other calls' terminates, go to their handler of many together."""
    stored = _calls_grouped(stored)
    start = 0
    while start < len(stored):
        kind = stored[start][0].kind
        end = start
        while end < len(stored) and stored[end][0].kind == kind:
            end += 1
        run, start = stored[start:end], end
        handler, many = dispatch.handler_for(kind), dispatch.many_handler_for(kind)
        if handler is None:
            continue
        if many is not None and len(run) == 1:
            # One event alone takes the bulk path too (fewer statements than most one-event
            # handlers), as one event: its failure is its own.
            handler = functools.partial(_one_of_many, many)
        elif many is not None:
            try:
                with transaction.atomic():
                    many([event for event, _ in run])
                continue
            except Exception:
                logger.exception("handler of many %s events failed: handling each alone", kind)
        for event, record in run:
            status, error = _run_handler(handler, event)
            if status != WebhookEvent.Status.HANDLED:
                record.status, record.error = status, error
                record.save(update_fields=["status", "error"])


def _one_of_many(many: dispatch.ManyHandler, event: Event) -> None:
    many([event])


CALL_KINDS_ORDER = {"call.connect": 0, "call.status": 1, "call.terminate": 2}


def _calls_grouped(stored: list[tuple[Event, WebhookEvent]]) -> list[tuple[Event, WebhookEvent]]:
    """`stored` with each stretch of call events (connects, statuses, terminates) regrouped: each
    call's own events keep their order, and the calls' events are taken one "step" at a time
    (every call's first event in the stretch, then every call's second ...), connects before
    statuses before terminates within a step. Events of different calls received in one batch
    arrived within the same moment, in whatever order the network and the web processes gave them:
    none of them waits for another call's. Events of other kinds stay where they are, and no call
    event moves past one (a customer's message before a call stays before it)."""
    grouped: list[tuple[Event, WebhookEvent]] = []
    stretch: list[tuple[int, int, int, tuple[Event, WebhookEvent]]] = []
    steps: dict[str, int] = {}

    def flush() -> None:
        grouped.extend(item for *_, item in sorted(stretch, key=lambda entry: entry[:3]))
        stretch.clear()
        steps.clear()

    for index, (event, record) in enumerate(stored):
        order = CALL_KINDS_ORDER.get(event.kind)
        if order is None:
            flush()
            grouped.append((event, record))
            continue
        step = steps.get(event.call_id, 0)
        steps[event.call_id] = step + 1
        stretch.append((step, order, index, (event, record)))
    flush()
    return grouped


def _event_store_and_handle(*, delivery: WebhookDelivery, event: Event) -> WebhookEvent | None:
    """Insert the event (None if its key is already stored), then run its handler."""
    handler = dispatch.handler_for(event.kind)
    record = _event_record(delivery=delivery, event=event, at=timezone.now())
    try:
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        return None
    if handler is not None and record.status != WebhookEvent.Status.QUEUED:
        status, error = _run_handler(handler, event)
        if status != WebhookEvent.Status.HANDLED:
            record.status, record.error = status, error
            record.save(update_fields=["status", "error"])
    return record


def _run_handler(handler: dispatch.Handler, event: Event) -> tuple[str, str]:
    # A call's event: what its handling logs names the call (by Meta's id; core.logs).
    with about_meta_call(getattr(event, "call_id", None)):
        try:
            with transaction.atomic():
                handler(event)
        except dispatch.EventRejected as rejection:
            logger.warning("%s %s rejected: %s", event.kind, event.idempotency_key, rejection)
            return WebhookEvent.Status.REJECTED, str(rejection)
        except Exception as failure:
            logger.exception("handler for %s %s failed", event.kind, event.idempotency_key)
            return WebhookEvent.Status.FAILED, f"{type(failure).__name__}: {failure}"
        return WebhookEvent.Status.HANDLED, ""


DISPATCH_LEASE = timedelta(minutes=1)
MAX_DISPATCH_ATTEMPTS = 5


def webhook_event_dispatch(*, event_record: WebhookEvent, event: Event | None = None) -> WebhookEvent:
    """Run the registered handler for one stored event again (failed, or stuck) and record how it went.

    The event is claimed with one conditional UPDATE (failed, or processing for longer than the
    lease → processing), so two processes never run its handler at once. A failing
    handler rolls back its own changes only, and the event is marked failed with the error.
    """
    now = timezone.now()
    claimed = (
        WebhookEvent.objects.filter(pk=event_record.pk)
        .filter(
            Q(status=WebhookEvent.Status.FAILED)
            | Q(status=WebhookEvent.Status.PROCESSING, last_attempt_at__lt=now - DISPATCH_LEASE)
        )
        .update(status=WebhookEvent.Status.PROCESSING, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if claimed != 1:
        event_record.refresh_from_db()
        return event_record
    if event is None:
        event = event_from_context(event_record.payload)
    handler = dispatch.handler_for(event.kind)
    status, error = WebhookEvent.Status.UNHANDLED, ""
    if handler is not None:
        status, error = _run_handler(handler, event)
    WebhookEvent.objects.filter(pk=event_record.pk).update(
        status=status, error=error, handled_at=timezone.now()
    )
    event_record.refresh_from_db()
    return event_record


def webhook_events_redispatch_stale() -> int:
    """Retry failed events (a bounded number of times) and any left stuck by a stopped process;
    handle queued events whose worker was never told (the web process died after storing them)."""
    for _ in range(100):  # batches at most: under a steady load the worker's own task goes on
        if not webhook_events_handle_queued():
            break
    cutoff = timezone.now() - DISPATCH_LEASE
    stale = WebhookEvent.objects.filter(
        Q(status=WebhookEvent.Status.PROCESSING, last_attempt_at__lt=cutoff)
        | Q(status=WebhookEvent.Status.FAILED, last_attempt_at__lt=cutoff, attempts__lt=MAX_DISPATCH_ATTEMPTS)
    )
    count = 0
    for record in stale.order_by("received_at")[:500]:
        webhook_event_dispatch(event_record=record)
        count += 1
    return count


QUEUED_BATCH = 500  # queued events handled in one transaction at most
QUEUED_GATHER_S = 0.2  # how long the worker lets queued events gather before it handles them
BATCHED_KINDS = frozenset({"message.status"})  # handled many to a transaction; the others one each
HANDLING_TURN = "whatsapp:webhook-handling"  # one worker batch at a time: no deadlocks between them
NUDGE_KEY = "whatsapp:queued-events-nudged"  # a task is on its way, `QUEUED_GATHER_S` after its nudge
NUDGE_NOW_KEY = "whatsapp:queued-events-nudged-now"  # a task is on its way at once


def webhook_events_handle_queued(
    *, limit: int = QUEUED_BATCH, up_to: int | None = None, is_statuses_left: bool = False
) -> int:
    """(The worker.) Handle the oldest queued events (with `up_to`, of those stored up to that
    primary key; with `is_statuses_left`, of those but statuses) in one transaction: a run of up to
    `limit` statuses, or one event of another kind; how many.

    The events are locked, handled in arrival order (a run of one kind by its handler of many, as
    in the request), and marked handled (or failed, for `webhook_events_redispatch_stale` to retry)
    in the same transaction as their effects: a worker that dies half-way leaves them all queued and
    nothing applied, and the next batch handles them exactly once. Batches take turns (one lock),
    so two workers never update the same rows in different orders."""
    with transaction.atomic():
        transaction_lock(HANDLING_TURN)
        queued = WebhookEvent.objects.select_for_update(skip_locked=True).filter(
            status=WebhookEvent.Status.QUEUED
        )
        if up_to is not None:
            queued = queued.filter(pk__lte=up_to)
        if is_statuses_left:
            queued = queued.exclude(kind__in=BATCHED_KINDS)
        records = list(queued.order_by("pk")[:limit])
        if not records:
            return 0
        # Only a run of statuses goes in one long transaction: they update their own messages. A
        # customer's message may offer a conversation to an agent, whose row a ringing call needs
        # too: it goes in a transaction of its own, which holds that row a moment, not a batch long.
        run = 1
        while run < len(records) and records[run].kind == records[0].kind:
            run += 1
        records = records[:run] if records[0].kind in BATCHED_KINDS else records[:1]
        now = timezone.now()
        stored = []
        for record in records:
            record.status, record.attempts, record.last_attempt_at = WebhookEvent.Status.HANDLED, 1, now
            stored.append((event_from_context(record.payload), record))
        _handled_in_order_and_marked(stored, now=now)
    return len(records)


def webhook_events_handle_claimed(
    claimed: list[Claimed], *, take_more: Callable[[], list[Claimed]] | None = None
) -> int:
    """(The web process, once it has answered.) Handle the events it stored claimed
    (`webhook_deliveries_store`), in one transaction, as `webhook_deliveries_receive` would have:
    after the receipt turn (the web processes' batches are handled one at a time: they would queue
    for the same rows anyway) and, with `take_more`, with the events claimed while this batch
    waited for it; the shared rows locked first, then the events (any the sweep took over after
    their lease are left to it), handled in arrival order and marked handled with their effects.
    How many were handled."""
    with transaction.atomic():
        transaction_lock(RECEIPT_TURN)
        if take_more is not None:
            claimed = [*claimed, *take_more()]
        for take_locks in dispatch.lock_takers():
            take_locks([event for event, _ in claimed])
        still_claimed = set(
            WebhookEvent.objects.select_for_update()
            .filter(
                pk__in=[record.pk for _, record in claimed], status=WebhookEvent.Status.PROCESSING, attempts=1
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        stored = [(event, record) for event, record in claimed if record.pk in still_claimed]
        for _, record in stored:
            record.status = WebhookEvent.Status.HANDLED
        _handled_in_order_and_marked(stored, now=timezone.now())
    return len(stored)


def _handled_in_order_and_marked(stored: list[tuple[Event, WebhookEvent]], *, now) -> None:
    """Handle locked events in arrival order and record how each went: `handled`, or the status and
    error `_handle_in_order` saved for those that failed or were rejected."""
    _handle_in_order(stored)
    records = [record for _, record in stored]
    handled = [record.pk for record in records if record.status == WebhookEvent.Status.HANDLED]
    WebhookEvent.objects.filter(pk__in=handled).update(
        status=WebhookEvent.Status.HANDLED, attempts=1, last_attempt_at=now, handled_at=now
    )
    if len(handled) < len(records):
        WebhookEvent.objects.filter(pk__in=[record.pk for record in records]).exclude(pk__in=handled).update(
            attempts=1, last_attempt_at=now, handled_at=now
        )


def webhook_events_drain_queued(*, is_at_once: bool = False) -> int:
    """(The worker's task.) Handle the events queued when it starts, batch after batch; how many.

    Statuses stored from then on wait for the task their nudge starts `QUEUED_GATHER_S` later
    (`_worker_nudge`), and go in its batches with whatever else came meanwhile: under a campaign's
    steady stream, a task that took each event as soon as it came handled batches of a few dozen,
    each with a batch's statements. A customer's message (any event but a status) starts a task at
    once (`_worker_nudge_now`, `is_at_once`): it is on its way to an agent's screen. That task
    leaves the statuses to gather for theirs (a status and a message concern different rows). None
    waits longer: an event stored before a task took its nudge's key is among those it handles (the
    key goes first, then the last event is looked up); one stored after finds no key and nudges
    again."""
    _nudge_cache().delete(NUDGE_NOW_KEY if is_at_once else NUDGE_KEY)  # from now on, nudged again
    last = WebhookEvent.objects.filter(status=WebhookEvent.Status.QUEUED).aggregate(last=Max("pk"))["last"]
    total = 0
    while last is not None and (
        count := webhook_events_handle_queued(up_to=last, is_statuses_left=is_at_once)
    ):
        total += count
    return total


@functools.cache
def _nudge_cache() -> BaseCache:
    """The API cache's client for the nudges, one for the process: `caches["api"]` is one per
    context, and in the web process's receiving threads each receipt has a context of its own, so
    each nudge opened (and dropped) a connection to Redis, about a tenth of a burst's receiving
    time (py-spy, bench/webhook_ack.py)."""
    return caches.create_connection("api")


def _worker_nudges_for(records: list[WebhookEvent]) -> list[Callable[[], None]]:
    """How to tell the worker of these events once they are committed: for statuses, a task a moment
    later (`_worker_nudge`); for any other event (a customer's message, waited for on an agent's
    screen), a task at once (`_worker_nudge_now`), which leaves statuses to theirs. A delivery or
    a batch with both kinds sends both."""
    statuses = [
        record.kind in BATCHED_KINDS for record in records if record.status == WebhookEvent.Status.QUEUED
    ]
    return [*([_worker_nudge] if any(statuses) else []), *([_worker_nudge_now] if not all(statuses) else [])]


def _worker_nudge() -> None:
    """(After a commit that stored queued statuses.) Tell the worker, unless it was told and has
    not started yet: a burst of deliveries sends it one task, not one each. The task starts
    `QUEUED_GATHER_S` later, so that under a campaign's steady stream each batch takes what came
    meanwhile: a batch's statements are the same for 20 statuses as for 200 (bench/broadcast_day.py:
    batches of about 20 before, about 40 with this wait, and a quarter less of the worker's CPU)."""
    _nudge(is_at_once=False)


def _worker_nudge_now() -> None:
    """(After a commit that stored a queued customer's message, or another event but a status.)
    Tell the worker to start at once, unless it was so told and has not started yet."""
    _nudge(is_at_once=True)


def _nudge(*, is_at_once: bool) -> None:
    from whatsapp.tasks import handle_queued_events

    try:
        if _nudge_cache().add(NUDGE_NOW_KEY if is_at_once else NUDGE_KEY, 1, timeout=10):
            if is_at_once:
                handle_queued_events.apply_async(kwargs={"is_at_once": True}, countdown=None)
            else:
                handle_queued_events.apply_async(kwargs={}, countdown=QUEUED_GATHER_S)
    except Exception:  # the events are stored: the beat's sweep handles them within a minute
        logger.exception("the worker could not be told of queued webhook events")


# --- Handlers this app owns: the number's own settings and standing -------------------------


def business_number_apply_settings_update(event: AccountSettingsUpdate) -> None:
    """Mirror a number's calling settings; an update older than the one applied is ignored.

    Settings that break Meta's own rules (calling_settings) are not applied: the number keeps
    the settings it had and the event is rejected (EventRejected) with every problem found.
    """
    problems = calling_settings_problems(event.calling, for_update=False)
    if problems:
        raise dispatch.EventRejected(f"calling settings not applied: {problems_text(problems)}")
    occurred_at = event.occurred_at or timezone.now()
    BusinessNumber.objects.filter(phone_number_id=event.phone_number_id).filter(
        Q(calling_settings_updated_at__isnull=True) | Q(calling_settings_updated_at__lte=occurred_at)
    ).update(calling_settings=event.calling, calling_settings_updated_at=occurred_at)


def business_number_apply_account_update(event: AccountUpdate) -> None:
    """Record a calling violation or restriction on the account's numbers (newest wins)."""
    occurred_at = event.occurred_at or timezone.now()
    numbers = BusinessNumber.objects.filter(waba_id=event.waba_id).filter(
        Q(account_updated_at__isnull=True) | Q(account_updated_at__lte=occurred_at)
    )
    if event.display_number:
        numbers = numbers.filter(display_phone_number__in=_number_spellings(event.display_number))
    changes: dict = {"account_updated_at": occurred_at}
    if event.event == "ACCOUNT_RESTRICTION":
        changes["restrictions"] = [
            {
                "type": restriction.restriction_type,
                "expires_at": restriction.expires_at.isoformat() if restriction.expires_at else None,
            }
            for restriction in event.restrictions
        ]
    elif event.event == "ACCOUNT_VIOLATION":
        changes["last_violation"] = event.violation_type
    numbers.update(**changes)


def call_side_event_record(event: CallSipCreated | CallRecordingAvailable) -> None:
    """A SIP-side call event, or Meta's recording or transcript of a call (WHATSAPP_API.md §10.4):
    nothing to do but say, on the stored event, what it means and that Switchboard does not act on it
    (Switchboard signals its calls over the Graph API and records them itself)."""
    WebhookEvent.objects.filter(idempotency_key=event.idempotency_key).update(
        note=call_side_event_note(event)
    )


def call_side_event_note(event: CallSipCreated | CallRecordingAvailable) -> str:
    if isinstance(event, CallSipCreated):
        towards = {"USER_INITIATED": " from a customer", "BUSINESS_INITIATED": " to a customer"}
        return (
            f"A SIP call{towards.get(event.direction, '')} was created on Meta's side "
            f"(call {event.call_id}): stored; Switchboard signals over the Graph API and does not act on "
            "SIP-side events."
        )
    what = "transcript" if isinstance(event, CallTranscriptionAvailable) else "recording"
    media = ""
    if event.media:
        media = f" (media {event.media.media_id}, {event.media.mime_type or 'no type given'})"
    return (
        f"Meta's {what} of call {event.call_id} is ready{media}; Meta keeps it 7 days: stored; Switchboard "
        f"records and transcribes its calls itself and does not fetch Meta's {what}."
    )


def _number_spellings(digits: str) -> list[str]:
    """Display numbers are stored as people write them; match on the digits Meta sends."""
    return [
        number.display_phone_number
        for number in BusinessNumber.objects.only("display_phone_number")
        if number.digits == digits
    ]
