"""The base of the project's WebSocket consumers."""

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class JsonSocketConsumer(AsyncJsonWebsocketConsumer):
    """A JSON WebSocket consumer that handles each message on the event loop, without a detour.

    Channels hands every message a consumer handles (a frame from the browser, a ring from the
    channel layer) to the process's one synchronous thread first, to close database connections
    gone stale, and waits for it: a thread hand-off per message, queued behind whatever else that
    thread is doing. These consumers touch the database only through `database_sync_to_async`,
    which closes stale connections itself, before and after each call; so a ring is forwarded to
    the browser at once.
    """

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
