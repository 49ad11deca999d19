"""The explicit registry of who handles which kind of webhook event.

Apps register their handlers in `AppConfig.ready()`. A handler receives the typed event, runs
in a savepoint of the delivery's transaction (its failure undoes only its own writes, and its
after-commit work waits for the whole delivery), and must be idempotent and fast: heavy work goes
to Celery or after commit. Events of a kind nobody handles are stored as `unhandled` and shown in admin.
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured

from whatsapp.events import EVENT_KINDS, Event

Handler = Callable[[Event], None]

_handlers: dict[str, Handler] = {}


def register(kind: str, handler: Handler) -> None:
    if kind not in EVENT_KINDS:
        raise ImproperlyConfigured(f"{kind!r} is not a kind of WhatsApp event")
    existing = _handlers.get(kind)
    if existing is not None and existing is not handler:
        raise ImproperlyConfigured(
            f"{kind!r} already has a handler: {existing.__module__}.{existing.__qualname__}"
        )
    _handlers[kind] = handler


def unregister(kind: str) -> None:
    _handlers.pop(kind, None)


def handler_for(kind: str) -> Handler | None:
    return _handlers.get(kind)
