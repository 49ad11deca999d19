"""The call widget's socket: the agent's socket (agents.consumers) for a frame signed in with a
widget session, acting and hearing for its key's business numbers only, and closed when the key is
revoked."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from agents.consumers import CLOSE_NOT_AN_AGENT, CLOSE_UNAUTHENTICATED, AgentConsumer
from integrations.widget import call_business_number_id, widget_key_is_active, widget_session_check

CLOSE_KEY_REVOKED = 4410  # the widget's key was revoked: it will not open again
CALLS_REMEMBERED = 256  # calls whose business number a socket keeps, not to read it per frame


class WidgetConsumer(AgentConsumer):
    """`/ws/widget/?widget=<session>`. Frames of calls of other numbers (a ring, a call taken in the
    dashboard) are not sent here: the agent's dashboard tabs still get them."""

    key_group: str | None = None

    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        session = await database_sync_to_async(widget_session_check)((query.get("widget") or [""])[0])
        if session is None:  # a cookie of the dashboard in the same browser does not stand in for it
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.key_group = session.key.group_name
        # Joined before the key is read again: a revocation after that read reaches this socket, one
        # before it is seen here.
        await self.channel_layer.group_add(self.key_group, self.channel_name)
        if not await database_sync_to_async(widget_key_is_active)(key_id=session.key.pk):
            await self.refuse(CLOSE_KEY_REVOKED)
            return
        self.number_ids = await database_sync_to_async(lambda: session.viewer().number_ids)()
        if not self.number_ids:  # the agent serves none of the key's numbers (any more)
            await self.refuse(CLOSE_NOT_AN_AGENT)
            return
        self.call_numbers: dict[int, int | None] = {}
        await self.open_for(session.user)
        if self.agent is None:
            await self.channel_layer.group_discard(self.key_group, self.channel_name)

    async def refuse(self, code: int) -> None:
        await self.channel_layer.group_discard(self.key_group, self.channel_name)
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        if self.key_group is not None:
            await self.channel_layer.group_discard(self.key_group, self.channel_name)
        await super().disconnect(code)

    async def api_key_revoked(self, event: dict) -> None:
        await self.close(code=CLOSE_KEY_REVOKED)

    async def send_json(self, content, close: bool = False) -> None:
        if await self.is_within(content):
            await super().send_json(content, close)

    async def is_within(self, frame: dict) -> bool:
        """Whether a frame is for this socket: one that names a business number or a call, only when
        that number (the call's) is one the socket acts for."""
        number_id = frame.get("business_number_id")
        call_id = frame.get("call_id")
        if number_id is None and isinstance(call_id, int):
            if call_id not in self.call_numbers:
                if len(self.call_numbers) >= CALLS_REMEMBERED:
                    self.call_numbers.clear()
                self.call_numbers[call_id] = await database_sync_to_async(call_business_number_id)(
                    call_id=call_id
                )
            number_id = self.call_numbers[call_id]
            if number_id is None:
                return False
        return number_id is None or number_id in self.number_ids
