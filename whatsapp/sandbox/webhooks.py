"""Webhook deliveries from the sandbox, signed like Meta's and with Meta's delivery habits.

Each event becomes one delivery (Meta's envelope, WHATSAPP_API.md §1.4), signed with the app
secret over the exact bytes sent. A failed delivery (no answer or a non-2xx status) is retried
with exponential backoff, a bounded number of times (Meta retries for 7 days). On request the
sender also duplicates deliveries, holds them back to release them shuffled, and redelivers
any earlier one.
"""

import asyncio
import hashlib
import hmac
import json
import logging
import random
from dataclasses import dataclass, field

import httpx

from whatsapp.sandbox.meta import keep_newest

logger = logging.getLogger(__name__)


@dataclass
class Delivery:
    number: int
    body: bytes
    field_name: str
    attempts: int = 0
    status_code: int | None = None

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class DeliveryHabits:
    """How faithfully rude the sender is. All off by default."""

    duplicate_probability: float = 0.0
    max_attempts: int = 5
    first_retry_delay_s: float = 0.2
    max_retry_delay_s: float = 3600.0  # the delay doubles after each failed attempt, up to this
    seed: int | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


def envelope(*, waba_id: str, field_name: str, value: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": field_name, "value": value}]}],
    }


def sign(*, body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, *, url: str | None, app_secret: str, habits: DeliveryHabits | None = None) -> None:
        self.url = url
        self.app_secret = app_secret
        self.habits = habits or DeliveryHabits()
        self.sent: list[Delivery] = []
        self.held: list[Delivery] | None = None
        self.http: httpx.AsyncClient | None = None
        self._pending: set[asyncio.Task] = set()
        self._count = 0

    async def start(self) -> None:
        self.http = httpx.AsyncClient(timeout=10.0)

    async def stop(self, *, grace_s: float = 1.0) -> None:
        """Give deliveries in flight `grace_s` to finish, then drop the rest (the product is
        usually stopping too, and Meta's retries would go on for days, not for a shutdown)."""
        if self._pending:
            _, unfinished = await asyncio.wait(list(self._pending), timeout=grace_s)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        if self.http is not None:
            await self.http.aclose()

    def emit(self, waba_id: str, field_name: str, value: dict) -> None:
        """Queue one event for delivery; called from the sandbox's rules (never blocks)."""
        self._count += 1
        body = json.dumps(envelope(waba_id=waba_id, field_name=field_name, value=value)).encode()
        delivery = Delivery(number=self._count, body=body, field_name=field_name)
        if self.held is not None:
            self.held.append(delivery)
            return
        for copy in self._with_duplicates(delivery):
            self._launch(copy)

    def _with_duplicates(self, delivery: Delivery) -> list[Delivery]:
        copies = [delivery]
        if self.habits.rng.random() < self.habits.duplicate_probability:
            copies.append(
                Delivery(number=delivery.number, body=delivery.body, field_name=delivery.field_name)
            )
        return copies

    def hold(self) -> None:
        """Keep deliveries back until `release` (to reorder or batch them)."""
        if self.held is None:
            self.held = []

    async def release(self, *, shuffle: bool = False, reverse: bool = False) -> list[Delivery]:
        """Deliver what was held, one after another in the order asked for (with duplicates)."""
        held, self.held = self.held or [], None
        if reverse:
            held.reverse()
        elif shuffle:
            self.habits.rng.shuffle(held)
        for delivery in held:
            for copy in self._with_duplicates(delivery):
                await self._deliver(copy)
        return held

    def redeliver(self, delivery: Delivery) -> None:
        self._launch(Delivery(number=delivery.number, body=delivery.body, field_name=delivery.field_name))

    async def drain(self) -> None:
        """Wait until every launched delivery has been answered or given up."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _launch(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        if self.url is None:  # capture only: the tests of the sandbox's own rules read `sent`
            self.sent.append(delivery)
            keep_newest(self.sent)
            return
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(body=delivery.body, app_secret=self.app_secret),
        }
        delay = self.habits.first_retry_delay_s
        while delivery.attempts < self.habits.max_attempts:
            delivery.attempts += 1
            try:
                response = await self.http.post(self.url, content=delivery.body, headers=headers)
                delivery.status_code = response.status_code
                if response.is_success:
                    self.sent.append(delivery)
                    keep_newest(self.sent)
                    return
            except httpx.HTTPError as error:
                logger.info(
                    "sandbox webhook %s attempt %s failed: %s", delivery.number, delivery.attempts, error
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.habits.max_retry_delay_s)
        logger.warning("sandbox webhook %s given up after %s attempts", delivery.number, delivery.attempts)
