"""Business events for the outside world (the CRM's webhooks), published after commit.

An app says what happened (`event_publish("call.ended", business_number_id=…, data={…})`) without
knowing who listens; sinks (the integrations app's outgoing webhooks) are registered at start-up
and called once the transaction commits. Data are ids and states, never model instances or personal
data: a CRM fetches the rest through the API with its key. A sink that fails is logged: the change
is committed and the caller (a webhook from Meta, an agent's click) must not fail with it.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)

EVENT_KINDS = (
    "call.ringing",
    "call.connected",
    "call.ended",
    "recording.ready",
    "transcript.ready",
    "summary.ready",
    "permission.changed",
    "message.status",
    "conversation.waiting",
    "conversation.assigned",
    "conversation.closed",
)

Sink = Callable[[str, int | None, dict[str, Any]], None]
Wants = Callable[[str, int | None], bool]
_sinks: list[tuple[Sink, Wants]] = []


def event_sink_register(sink: Sink, *, wants: Wants) -> None:
    """`sink(kind, business_number_id, data)` is called after commit for the events `wants(kind,
    business_number_id)` says it wants (asked before, so that nobody listening costs nothing)."""
    if all(sink is not registered for registered, _ in _sinks):
        _sinks.append((sink, wants))


def event_publish(kind: str, *, business_number_id: int | None, data: dict[str, Any]) -> None:
    """Hand `kind` with `data` to every sink that wants it, once the current transaction commits."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"{kind!r} is not an event kind")
    takers = [sink for sink, wants in _sinks if wants(kind, business_number_id)]
    if not takers:
        return

    def hand_over() -> None:
        for sink in takers:
            try:
                sink(kind, business_number_id, data)
            except Exception:
                logger.exception("event %s not handed to %s", kind, getattr(sink, "__qualname__", sink))

    transaction.on_commit(hand_over)
