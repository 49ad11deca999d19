"""Outgoing webhooks: business events (core.events) delivered to the CRM's subscriptions.

Each event is stored once (its id is the idempotency key every delivery carries) with one delivery
per subscription that wants it; a worker POSTs it as JSON, signed:

    X-Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>

The receiver recomputes the HMAC and refuses timestamps older than a few minutes (replays). A
delivery is done when the endpoint answers 2xx; otherwise it is tried again with backoff (10 s,
20 s, 40 s … up to an hour), MAX_ATTEMPTS times, then marked failed. At least once: a receiver may
see an event twice and keeps the first by its id.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import httpx
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.jobs import enqueue_on_commit
from integrations.models import EventDelivery, OutgoingEvent, WebhookSubscription

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
TIMEOUT_S = 10.0
LEASE = timedelta(minutes=2)  # a delivery taken this long ago and not finished is taken again
SUBSCRIPTIONS_FRESH_S = 5.0  # how long a process trusts what it read of the subscriptions

_subscriptions: tuple[float, list[tuple[int, frozenset[str], frozenset[int]]]] = (0.0, [])


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _subscribers(kind: str, business_number_id: int | None) -> list[int]:
    """Active subscriptions wanting `kind` for the number: read at most every few seconds per process,
    so that a burst of calls costs no query when nobody subscribes."""
    global _subscriptions
    read_at, rows = _subscriptions
    if time.monotonic() - read_at > SUBSCRIPTIONS_FRESH_S:
        subscriptions = WebhookSubscription.objects.filter(is_active=True).prefetch_related(
            "business_numbers"
        )
        rows = [
            (
                sub.pk,
                frozenset(sub.event_types),
                frozenset(number.pk for number in sub.business_numbers.all()),
            )
            for sub in subscriptions
        ]
        _subscriptions = (time.monotonic(), rows)
    return [pk for pk, kinds, numbers in rows if kind in kinds and business_number_id in numbers]


def subscribed(kind: str, business_number_id: int | None) -> bool:
    return bool(_subscribers(kind, business_number_id))


def subscriptions_changed() -> None:
    """Read the subscriptions again on the next event (this process)."""
    global _subscriptions
    _subscriptions = (0.0, [])


def event_received(kind: str, business_number_id: int | None, data: dict) -> None:
    """The core.events sink: store the event and a delivery for each subscription, and queue them."""
    subscription_ids = _subscribers(kind, business_number_id)
    if not subscription_ids:
        return
    from integrations.tasks import deliver_event

    now = timezone.now()
    with transaction.atomic():
        plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))  # datetimes as ISO 8601, as sent
        event = OutgoingEvent.objects.create(
            kind=kind, business_number_id=business_number_id, data=plain, occurred_at=now
        )
        deliveries = EventDelivery.objects.bulk_create(
            [EventDelivery(event=event, subscription_id=pk, next_attempt_at=now) for pk in subscription_ids]
        )
        for delivery in deliveries:
            enqueue_on_commit(deliver_event, delivery_id=delivery.pk)


def delivery_attempt(*, delivery_id: int) -> str:
    """Take the delivery (one conditional UPDATE: two workers never both send it) and POST it.
    Returns its status afterwards ("" when it was not ours to send)."""
    now = timezone.now()
    taken = EventDelivery.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE),
        pk=delivery_id, status=EventDelivery.Status.PENDING, next_attempt_at__lte=now,
    ).update(claimed_at=now, attempts=F("attempts") + 1, last_attempt_at=now)  # fmt: skip
    if not taken:
        return ""
    delivery = EventDelivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    event, subscription = delivery.event, delivery.subscription
    body = json.dumps(
        {
            "id": str(event.id),
            "type": event.kind,
            "occurred_at": event.occurred_at.isoformat(),
            "data": event.data,
        },
        separators=(",", ":"),
    ).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Switchboard-Webhooks/1",
        "X-Switchboard-Event-Id": str(event.id),
        "X-Switchboard-Event-Type": event.kind,
        "Idempotency-Key": str(event.id),
        "X-Switchboard-Signature": signature(secret=subscription.secret, timestamp=stamp, body=body),
    }
    code, error = None, ""
    try:
        response = httpx.post(subscription.url, content=body, headers=headers, timeout=TIMEOUT_S)
        code = response.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"[:255]
    return _record(delivery, code=code, error=error)


def _record(delivery: EventDelivery, *, code: int | None, error: str) -> str:
    now = timezone.now()
    if not error:
        status, next_at = EventDelivery.Status.DELIVERED, delivery.next_attempt_at
    elif delivery.attempts >= MAX_ATTEMPTS:
        status, next_at = EventDelivery.Status.FAILED, delivery.next_attempt_at
    else:
        status, next_at = EventDelivery.Status.PENDING, now + backoff(delivery.attempts)
    EventDelivery.objects.filter(pk=delivery.pk).update(
        status=status, next_attempt_at=next_at, claimed_at=None, last_status_code=code, last_error=error,
        delivered_at=now if status == EventDelivery.Status.DELIVERED else None,
    )  # fmt: skip
    if status == EventDelivery.Status.PENDING:
        from integrations.tasks import deliver_event

        deliver_event.apply_async(
            kwargs={"delivery_id": delivery.pk}, countdown=backoff(delivery.attempts).total_seconds()
        )
    if error:
        logger.info(
            "event %s to %s: %s (attempt %s)",
            delivery.event_id,
            delivery.subscription_id,
            error,
            delivery.attempts,
        )
    return status


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 10 * 2 ** (attempts - 1)))


def deliveries_due() -> list[int]:
    """Pending deliveries whose time has come and which nobody holds (a lost task, a worker gone)."""
    now = timezone.now()
    return list(
        EventDelivery.objects.filter(status=EventDelivery.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE))
        .values_list("pk", flat=True)[:500]
    )
