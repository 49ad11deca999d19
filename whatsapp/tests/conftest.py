import contextlib
import json
import time

import pytest
from django.conf import settings

from whatsapp import dispatch
from whatsapp.events import EVENT_KINDS
from whatsapp.sandbox.meta import Rules
from whatsapp.sandbox.server import SandboxThread
from whatsapp.services import webhook_signature


def wait_until_handled(timeout_s: float = 30) -> None:
    """Until the web process's handling thread has handled every event it claimed
    (whatsapp.intake.ClaimedEvents): a delivery through the web server's application is answered
    once stored, and its calls' events are handled right after."""
    from whatsapp.asgi import HANDLING

    deadline = time.monotonic() + timeout_s
    while not HANDLING.is_idle():
        assert time.monotonic() < deadline, "the claimed events were not handled"
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _handled_before_teardown():
    """No test leaves the handling thread working on a database being flushed."""
    yield
    wait_until_handled()


def sign(body: bytes) -> str:
    return webhook_signature(body=body, app_secret=settings.WHATSAPP_APP_SECRET)


def post_webhook(client, payload, *, signature: str | None = "sign"):
    """POST a delivery to the real endpoint, signed like Meta unless told otherwise."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {}
    if signature == "sign":
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign(body)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.generic("POST", "/webhooks/whatsapp/", body, content_type="application/json", **headers)


@pytest.fixture
def captured():
    """Every dispatched event, in order, in place of the registered handlers (restored after)."""
    events = []
    saved, saved_many = dict(dispatch._handlers), dict(dispatch._many_handlers)
    dispatch._many_handlers.clear()
    for kind in EVENT_KINDS:
        dispatch._handlers[kind] = events.append
    yield events
    dispatch._handlers.clear()
    dispatch._handlers.update(saved)
    dispatch._many_handlers.update(saved_many)


@contextlib.contextmanager
def sandbox_serving(settings, number, *, token: str = "t", retries: int | None = 0, **thread_options):
    """The offline Meta in a thread, knowing `number`, as the Graph API of this test (`retries`: the
    client's, None to keep the setting); its webhooks go to `webhook_url` (by default nowhere). Yields
    the sandbox, its thread as `sandbox.thread`."""
    options = {"webhook_url": None, "app_secret": "s", "rules": Rules()} | thread_options
    thread = SandboxThread(token=token, **options)
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, token
        if retries is not None:
            settings.WHATSAPP_MAX_RETRIES = retries
        thread.call(sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number)  # fmt: skip
        sandbox.thread = thread
        yield sandbox
