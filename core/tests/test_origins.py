"""WebSockets only from the site's own origins: scheme, host and port (core.asgi)."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from agents.tests.factories import AgentFactory
from agents.tests.test_consumers import open_socket
from core.asgi import CLOSE_FOREIGN_ORIGIN, same_origin_only


async def accepting(scope, receive, send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def opens(origin: str, *, host: str = "127.0.0.1:8000", scheme: str = "ws") -> bool:
    socket = WebsocketCommunicator(
        same_origin_only(accepting),
        "/ws/agent/",
        headers=[(b"origin", origin.encode()), (b"host", host.encode())],
    )
    socket.scope["scheme"] = scheme
    connected, _ = await socket.connect()
    await socket.disconnect()
    return connected


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "is_open"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws", True),
        ("http://127.0.0.1:9999", "127.0.0.1:8000", "ws", False),
        ("https://127.0.0.1:8000", "127.0.0.1:8000", "ws", False),
        ("http://localhost:8000", "127.0.0.1:8000", "ws", False),
        ("https://calls.example.com", "calls.example.com", "wss", True),
        ("https://calls.example.com:443", "calls.example.com", "wss", True),
        ("https://calls.example.com:8443", "calls.example.com", "wss", False),
        ("http://calls.example.com", "calls.example.com", "wss", False),
        ("https://evil.example.com", "evil.example.com", "wss", False),  # not an allowed host
        ("null", "127.0.0.1:8000", "ws", False),
        ("", "127.0.0.1:8000", "ws", False),
    ],
)
async def test_origin_must_be_the_sites_own_scheme_host_and_port(settings, origin, host, scheme, is_open):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "calls.example.com"]

    assert await opens(origin, host=host, scheme=scheme) is is_open


async def test_origin_may_be_a_trusted_origin_behind_a_proxy_that_drops_the_scheme(settings):
    settings.ALLOWED_HOSTS = ["calls.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://calls.example.com"]

    assert await opens("https://calls.example.com", host="calls.example.com", scheme="ws") is True
    assert await opens("https://calls.example.com:444", host="calls.example.com", scheme="ws") is False


@pytest.mark.django_db(transaction=True)
async def test_origin_on_another_port_opens_no_agent_socket():
    agent = await sync_to_async(AgentFactory)()
    socket = await open_socket(agent.user, origin=b"http://127.0.0.1:9999")

    connected, code = await socket.connect()

    assert (connected, code) == (False, CLOSE_FOREIGN_ORIGIN)
