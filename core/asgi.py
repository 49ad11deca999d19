"""The web server's HTTP requests before Django reads them: bodies capped as they arrive.

Django's ASGI handler reads a request's whole body (spooled to disk past
FILE_UPLOAD_MAX_MEMORY_SIZE) before any view runs, and DATA_UPLOAD_MAX_MEMORY_SIZE only limits
what a view later reads through `request.body` or a form. `body_limit` answers 413 to a request
that declares a larger body, unread, and stops one that sends more than it declared (or sends
without a length) at the limit: no process reads or stores more than DATA_UPLOAD_MAX_MEMORY_SIZE
bytes of anyone's request. Meta's deliveries have the same cap in whatsapp.asgi.
"""

import json

from django.conf import settings


def body_limit(application):
    """An ASGI application: `application`, with HTTP request bodies capped at DATA_UPLOAD_MAX_MEMORY_SIZE."""

    async def capped(scope: dict, receive, send) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if scope["type"] != "http" or limit is None:
            await application(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0
        is_refused = is_started = False

        async def capped_receive() -> dict:
            nonlocal received, is_refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not is_started and not is_refused:
                        await _too_large(send, limit)
                    is_refused = True
                    return {"type": "http.disconnect"}  # the application stops reading here
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal is_started
            if is_refused:
                return
            is_started = True
            await send(message)

        await application(scope, capped_receive, guarded_send)

    return capped


async def _too_large(send, limit: int) -> None:
    content = json.dumps(
        {
            "code": "request_too_large",
            "detail": f"The request body is larger than the limit of {limit} bytes.",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
