"""The explicit registry of who handles which kind of webhook event.

Apps register their handlers in `AppConfig.ready()`. A handler receives the typed event, runs
in a savepoint of the delivery's transaction (its failure undoes only its own writes, and its
after-commit work waits for the whole delivery), and must be idempotent and fast: heavy work goes
to Celery or after commit. Events of a kind nobody handles are stored as `unhandled` and shown in admin.
A handler that finds an event's content invalid raises `EventRejected`: nothing of the event is
applied, and it is stored `rejected` with the reasons (shown in admin, never retried).

A kind may also register a handler of many events at once (`register_many`): deliveries that
arrive together are stored together (whatsapp.services.webhook_deliveries_receive), and a run of
events of that kind goes to it in one savepoint (a run of one too, as that one event's handler).
It must do exactly what the one-event handler would do for each; if it fails, each event of the
run goes to the one-event handler instead.
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from whatsapp.events import EVENT_KINDS, Event

Handler = Callable[[Event], None]


class EventRejected(Exception):
    """The event is well-formed but says something invalid (calling settings that break Meta's own
    rules, say): not a failure to retry, but a problem to keep and show. The message says why."""


ManyHandler = Callable[[list[Event]], None]

_handlers: dict[str, Handler] = {}
_many_handlers: dict[str, ManyHandler] = {}
_lock_takers: list[ManyHandler] = []


def register(kind: str, handler: Handler) -> None:
    if kind not in EVENT_KINDS:
        raise ImproperlyConfigured(f"{kind!r} is not a kind of WhatsApp event")
    existing = _handlers.get(kind)
    if existing is not None and existing is not handler:
        raise ImproperlyConfigured(
            f"{kind!r} already has a handler: {existing.__module__}.{existing.__qualname__}"
        )
    _handlers[kind] = handler


def register_many(kind: str, handler: ManyHandler) -> None:
    """The handler of a run of `kind` events received together (the one-event handler stays)."""
    if kind not in _handlers:
        raise ImproperlyConfigured(f"{kind!r} needs a one-event handler before a handler of many")
    _many_handlers[kind] = handler


def register_lock_taker(taker: ManyHandler) -> None:
    """`taker(events)` runs first in a transaction holding many deliveries, before any handler: it
    locks the shared rows the handlers will update (a number's live-call counters, say) in one
    fixed order, so that two such transactions queue for them instead of deadlocking."""
    if taker not in _lock_takers:
        _lock_takers.append(taker)


def lock_takers() -> list[ManyHandler]:
    return list(_lock_takers)


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)


def many_handler_for(kind: str) -> ManyHandler | None:
    return _many_handlers.get(kind)
