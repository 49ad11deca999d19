"""The agent's WebSocket: presence now, rings and call signalling as the product grows."""

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import ValidationError

from agents.models import Agent
from agents.selectors import agent_for_user, agent_presence
from agents.services import agent_set_status

logger = logging.getLogger(__name__)

# Close codes sent before the handshake completes turn into an HTTP 403 for the browser;
# these are kept for the log and for tests.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_AN_AGENT = 4403


class AgentConsumer(AsyncJsonWebsocketConsumer):
    agent: Agent | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.agent = await database_sync_to_async(agent_for_user)(user=user)
        if self.agent is None:
            await self.close(code=CLOSE_NOT_AN_AGENT)
            return
        await self.channel_layer.group_add(self.agent.group_name, self.channel_name)
        await self.accept()
        await self.send_json(agent_presence(agent=self.agent))

    async def disconnect(self, code: int) -> None:
        if self.agent is not None:
            await self.channel_layer.group_discard(self.agent.group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error("bad_frame", "Frames must be JSON text.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.send_error("bad_frame", "Frames must be JSON text.")
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.send_error("bad_frame", "A frame is a JSON object with a string 'type'.")
            return
        if content["type"] == "presence.set":
            await self.presence_set(content)
        else:
            await self.send_error("unknown_type", f"Unknown frame type {content['type'][:64]!r}.")

    async def presence_set(self, content: dict) -> None:
        status = content.get("status")
        if not isinstance(status, str):
            await self.send_error("invalid_status", "'status' must be available, away or offline.")
            return
        try:
            await database_sync_to_async(agent_set_status)(agent_id=self.agent.pk, status=status)
        except ValidationError:
            await self.send_error("invalid_status", "'status' must be available, away or offline.")

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    # Channel-layer events for the agent's group.
    async def agent_status(self, event: dict) -> None:
        await self.send_json(event)
