"""Which call a log line is about: every line logged while a call's work runs carries its id.

The work of one call runs in a context that says which call it is (`about_call`): the media
process's handling of a message about a call (and the tasks it starts for it, which inherit the
context), a Celery task given a `call_id` (config.celery), an agent's frame about a call
(agents.consumers). Meta's webhooks name a call by Meta's id, which the call's row keeps
(`Call.wa_call_id`): the handling of one of its events runs `about_meta_call`. `CallFilter`, on
the console handler, puts the ids on each record as `call_id` and `wa_call_id`, which the JSON
format (LOG_FORMAT=json) writes as fields of their own and the plain format leaves out.
"""

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

_call_id: ContextVar[int | None] = ContextVar("call_id", default=None)
_wa_call_id: ContextVar[str | None] = ContextVar("wa_call_id", default=None)


@contextlib.contextmanager
def about_call(call_id: object) -> Iterator[None]:
    """Log lines written in here (and in tasks started from here) are about call `call_id`; a
    value that is not a call's id (a frame's bad input) changes nothing."""
    if isinstance(call_id, bool) or not isinstance(call_id, int):
        yield
        return
    token = _call_id.set(call_id)
    try:
        yield
    finally:
        _call_id.reset(token)


@contextlib.contextmanager
def about_meta_call(wa_call_id: object) -> Iterator[None]:
    """Log lines written in here are about the call Meta names `wa_call_id` (a webhook's event);
    anything but a non-empty string changes nothing."""
    if not isinstance(wa_call_id, str) or not wa_call_id:
        yield
        return
    token = _wa_call_id.set(wa_call_id)
    try:
        yield
    finally:
        _wa_call_id.reset(token)


def about_call_now(call_id: object) -> None:
    """The rest of the current context is about call `call_id` (a Celery task's run: its
    `task_postrun` ends it with `about_no_call`)."""
    if not isinstance(call_id, bool) and isinstance(call_id, int):
        _call_id.set(call_id)


def about_no_call() -> None:
    _call_id.set(None)


class CallFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        call_id = _call_id.get()
        if call_id is not None and not hasattr(record, "call_id"):
            record.call_id = call_id
        wa_call_id = _wa_call_id.get()
        if wa_call_id is not None and not hasattr(record, "wa_call_id"):
            record.wa_call_id = wa_call_id
        return True
