"""The web server's requests before Django sees them: HTTP bodies capped as they arrive, and
WebSockets only from the site's own origins.

Django's ASGI handler reads a request's whole body (spooled to disk past
FILE_UPLOAD_MAX_MEMORY_SIZE) before any view runs, and DATA_UPLOAD_MAX_MEMORY_SIZE only limits
what a view later reads through `request.body` or a form. `body_limit` answers 413 to a request
that declares a larger body, unread, and stops one that sends more than it declared (or sends
without a length) at the limit: no process reads or stores more than DATA_UPLOAD_MAX_MEMORY_SIZE
bytes of anyone's request. Meta's deliveries have the same cap in whatsapp.asgi.
"""

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host


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


DEFAULT_PORTS = {"http": 80, "https": 443}
CLOSE_FOREIGN_ORIGIN = 4403


def same_origin_only(application):
    """An ASGI application: `application` for WebSockets opened from one of the site's own origins,
    a refused handshake for the rest.

    An origin is scheme, host and port, all three compared: the socket's own (its Host header, which
    ALLOWED_HOSTS must allow, and the scheme it came in by: wss is https) or one of
    CSRF_TRUSTED_ORIGINS exactly (a TLS proxy that does not pass the scheme on). Channels' own
    AllowedHostsOriginValidator compares host names only, so that a page on any port of an allowed
    host could open the agents' sockets. The call widget's frame is a page of the site itself: its
    sockets pass as the dashboard's do (its CRM's origins are checked when it signs in)."""

    async def checked(scope: dict, receive, send) -> None:
        if scope["type"] == "websocket" and not _is_own_origin(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": CLOSE_FOREIGN_ORIGIN})  # the handshake is refused
            return
        await application(scope, receive, send)

    return checked


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the port filled in from the scheme; None if it is not one."""
    host, port = split_domain_port(netloc)
    if scheme not in DEFAULT_PORTS or not host:
        return None
    if not port:
        return scheme, host, DEFAULT_PORTS[scheme]
    return (scheme, host, int(port)) if port.isdigit() else None


def _is_own_origin(scope: dict) -> bool:
    headers = dict(scope.get("headers", []))
    try:
        sent = urlsplit(headers.get(b"origin", b"").decode("latin-1"))
        origin = _origin(sent.scheme, sent.netloc)
    except ValueError:
        return False
    if origin is None:
        return False
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    host = headers.get(b"host", b"").decode("latin-1")
    own = {_origin("https" if scope.get("scheme") == "wss" else "http", host)}
    if not validate_host(split_domain_port(host)[0], allowed_hosts):
        own = set()
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        parts = urlsplit(trusted)
        own.add(_origin(parts.scheme, parts.netloc))
    return origin in own
