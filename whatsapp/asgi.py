"""Meta's POSTed deliveries, answered without Django's request machinery.

Deliveries are the web process's hottest path: a campaign's callers tapping Call at once arrive as
hundreds of POSTs a second, each of which must ring an agent. Through Django each POST also runs
the session, CSRF, authentication, messages and clickjacking middleware and builds an HttpRequest,
none of which a signed delivery needs: about a sixth of the web process's CPU in a burst
(bench/ring_latency.py). `webhook_router` sends those POSTs straight to `whatsapp.intake`, which
the Django view (`whatsapp.views.webhook`) also uses, so both give the same answer; everything
else, the GET handshake included, goes to Django as before.

What Django would still have done is done here: the body is capped at DATA_UPLOAD_MAX_MEMORY_SIZE
(413 beyond it), the responses carry `X-Content-Type-Options: nosniff`, an error is logged and
answered 500 (Meta delivers again), and the database connection is handed back to the pool after
each receipt. The Host header is not checked against ALLOWED_HOSTS: the signature over the body is
what a delivery is trusted by.

Deliveries are received in two long-lived threads of the process, one a lane (whatsapp.intake):
calls' (`RECEIVER`) and the others' (`STORER`), not in a thread started for each request as
Django's request handling would: one request at a time receives in a lane anyway, and starting and
joining a thread for each of a burst's POSTs stalled the event loop that answers them and carries
the agents' sockets. The calls' events they store are handled in a third (`HANDLING`), once
their deliveries are answered.
"""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.urls import reverse

from core.metrics import WEBHOOK_ACK_SECONDS
from whatsapp.intake import ClaimedEvents, delivery_answer, handling, receiving_thread, storing_thread

RECEIVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-receiver")
STORER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-storer")
HANDLING = ClaimedEvents(ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-handler"))

logger = logging.getLogger(__name__)

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def webhook_router(django_application: ASGIApp) -> ASGIApp:
    """An ASGI application: POSTs to the webhook's URL answered by `webhook_post`, the rest by Django.

    The URL is looked up at once, which loads the URLconf (and the views) now rather than while
    the first deliveries wait."""
    webhook_path = reverse("whatsapp:webhook")

    async def application(scope: dict, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == webhook_path:
            await webhook_post(scope, receive, send)
        else:
            await django_application(scope, receive, send)

    return application


async def webhook_post(scope: dict, receive, send) -> None:
    arrived = time.perf_counter()
    signature = None
    for name, value in scope["headers"]:
        if name == b"x-hub-signature-256":
            signature = value.decode("latin-1")
    body = await _body(receive)
    if body is None:
        return  # the client went away
    if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        await _respond(send, 413, {"error": "the delivery is too large"})
        return
    receiving_thread.set(RECEIVER)  # for this request's task only
    storing_thread.set(STORER)
    handling.set(HANDLING)
    try:
        status, answer = await delivery_answer(body=body, signature=signature)
    except Exception:
        logger.exception("webhook delivery not received")
        status, answer = 500, {"error": "the delivery could not be received; deliver it again"}
    await _respond(send, status, answer)
    WEBHOOK_ACK_SECONDS.observe(time.perf_counter() - arrived)


async def _body(receive) -> bytes | None:
    """The request's body, or None if the client disconnected; reading stops past the size limit."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE or not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send, status: int, answer: dict) -> None:
    content = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
