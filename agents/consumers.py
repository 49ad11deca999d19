"""The agent's WebSocket: presence now, rings and call signalling as the product grows."""

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from agents import presence
from agents.models import Agent, Queue
from agents.selectors import agent_for_user, agent_presence
from agents.services import agent_comes_back, agent_set_status
from agents.tasks import offline_if_gone
from core.consumers import JsonSocketConsumer
from core.logs import about_call

logger = logging.getLogger(__name__)

# Frame types other apps answer (the calls app: accept, decline, the softphone's signalling).
# A handler takes the agent's id, the frame and `within` (the business numbers the socket acts for:
# None for all the agent's, a call widget's key's numbers for the widget's socket), runs in a worker
# thread with database access, and returns a reply frame or None; ValidationError becomes an error
# frame.
FrameHandler = Callable[..., dict | None]
_frame_handlers: dict[str, FrameHandler] = {}


def frame_handler_register(frame_type: str, handler: FrameHandler) -> None:
    _frame_handlers[frame_type] = handler


# What a tab that (re)connects must be shown besides presence: a call ringing, in progress or in
# wrap-up (the calls app). A provider takes the agent's id, runs with database access, and returns
# frames; each gets `open_tabs`, how many of the agent's tabs are open, this one included.
ResumeProvider = Callable[..., list[dict]]
_resume_providers: list[ResumeProvider] = []


def resume_provider_register(provider: ResumeProvider) -> None:
    if provider not in _resume_providers:
        _resume_providers.append(provider)


def _resume_frames(agent_id: int) -> list[dict]:
    return [frame for provider in _resume_providers for frame in provider(agent_id=agent_id)]


def _queue_groups_of(agent_id: int) -> tuple[str, ...]:
    return tuple(
        queue.group_name for queue in Queue.objects.filter(memberships__agent_id=agent_id).only("pk")
    )


# Close codes sent before the handshake completes turn into an HTTP 403 for the browser;
# these are kept for the log and for tests.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_AN_AGENT = 4403


class AgentConsumer(JsonSocketConsumer):
    agent: Agent | None = None
    # The business numbers this socket acts for: None, all the agent's (the dashboard); the call
    # widget's socket (integrations.consumers) is narrowed to its key's.
    number_ids: frozenset[int] | None = None
    queue_groups: tuple[str, ...] = ()  # the realtime groups of the agent's queues, joined at connect
    pinging: asyncio.Task | None = None  # asks the tab for its heartbeats (`ping_every`)

    async def connect(self) -> None:
        await self.open_for(self.scope.get("user"))

    async def open_for(self, user) -> None:
        """Accept the socket for `user`'s agent and show it where the agent is (presence, then a call
        ringing, in progress or in wrap-up); refuse it when the user is signed out or takes no calls."""
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.agent = await database_sync_to_async(agent_for_user)(user=user)
        if self.agent is None:
            await self.close(code=CLOSE_NOT_AN_AGENT)
            return
        await self.channel_layer.group_add(self.agent.group_name, self.channel_name)
        if (
            self.number_ids is None
        ):  # the dashboard's socket hears its queues' waiting lists; a widget's does not
            self.queue_groups = await database_sync_to_async(_queue_groups_of)(self.agent.pk)
            for group in self.queue_groups:
                await self.channel_layer.group_add(group, self.channel_name)
        await presence.socket_opened(agent_id=self.agent.pk, channel_name=self.channel_name)
        await self.accept()
        # Whatever the status read above: a sweep may have taken the agent offline since.
        await database_sync_to_async(agent_comes_back)(agent_id=self.agent.pk)
        self.pinging = asyncio.create_task(self.ping_every(presence.heartbeat_s()))
        await self.show_where_the_agent_is()

    async def show_where_the_agent_is(self, *, is_ring_only: bool = False) -> None:
        """Tell the tab the agent's presence, then what it must show (`_resume_frames`): a call
        ringing them, in progress or in wrap-up; with `is_ring_only`, of those only a ring."""
        await database_sync_to_async(self.agent.refresh_from_db)()
        await self.send_json({**agent_presence(agent=self.agent), "heartbeat_s": presence.heartbeat_s()})
        frames = await database_sync_to_async(_resume_frames)(self.agent.pk)
        if is_ring_only:
            frames = [frame for frame in frames if frame["type"] == "call.offered"]
        if frames:
            open_tabs = await sync_to_async(presence.open_socket_count)(agent_id=self.agent.pk)
            for frame in frames:
                await self.send_json({**frame, "open_tabs": open_tabs})

    async def disconnect(self, code: int) -> None:
        if self.pinging is not None:
            self.pinging.cancel()
        if self.agent is None:
            return
        await self.channel_layer.group_discard(self.agent.group_name, self.channel_name)
        for group in self.queue_groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        if await presence.socket_closed(agent_id=self.agent.pk, channel_name=self.channel_name) == 0:
            # Kombu's publishing blocks: it runs in a worker thread, not on the event loop.
            await sync_to_async(offline_if_gone.apply_async)(
                kwargs={"agent_id": self.agent.pk}, countdown=settings.AGENT_DISCONNECT_GRACE_S
            )

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
        frame_type = content["type"]
        if frame_type == "presence.heartbeat":
            await self.heartbeat()
        elif frame_type == "presence.set":
            await self.presence_set(content)
        elif frame_type in _frame_handlers:
            await self.delegate(_frame_handlers[frame_type], content)
        else:
            await self.send_error("unknown_type", f"Unknown frame type {frame_type[:64]!r}.")

    async def delegate(self, handler: FrameHandler, content: dict) -> None:
        try:
            with about_call(content.get("call_id")):
                reply = await database_sync_to_async(handler)(
                    agent_id=self.agent.pk, frame=content, within=self.number_ids
                )
        except ValidationError as error:
            await self.send_error(error.code or "invalid", " ".join(error.messages))
            return
        if reply is not None:
            await self.send_json(reply)

    async def ping_every(self, seconds: float) -> None:
        """Ask the tab to say it is still there (`presence.heartbeat`), every `seconds`."""
        with contextlib.suppress(Exception):  # the socket closed: disconnect() follows
            while True:
                await asyncio.sleep(seconds)
                await self.send_json({"type": "presence.ping"})

    async def heartbeat(self) -> None:
        """The tab is still there (it says so every `heartbeat_s`). A tab silent for longer than
        AGENT_SOCKET_TTL_S (a laptop closed, then opened), or forgotten by a Redis that restarted,
        may find its agent taken offline meanwhile: they come back as they were, and the tab is
        told their presence and rung again for a call ringing them. The socket joins its groups
        again."""
        is_forgotten = not await presence.socket_heartbeat(
            agent_id=self.agent.pk, channel_name=self.channel_name
        )
        if is_forgotten:
            await database_sync_to_async(agent_comes_back)(agent_id=self.agent.pk)
        # Joined again each time: a Redis restarted meanwhile has forgotten every group, and a
        # socket open for longer than the layer's group expiry (a day) would fall out of them.
        for group in (self.agent.group_name, *self.queue_groups):
            await self.channel_layer.group_add(group, self.channel_name)
        if is_forgotten:
            # What was sent to the agent's groups meanwhile reached no tab: their presence, and a
            # ring (which would ring out unheard, and count as missed).
            await self.show_where_the_agent_is(is_ring_only=True)

    async def presence_set(self, content: dict) -> None:
        status = content.get("status")
        if not isinstance(status, str):
            await self.send_error("invalid_status", "'status' must be available, away or offline.")
            return
        try:
            await database_sync_to_async(agent_set_status)(agent_id=self.agent.pk, status=status)
        except ValidationError as error:
            await self.send_error(error.code or "invalid_status", " ".join(error.messages))

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    # Channel-layer events for the agent's group: each goes to the browser as it is.
    async def agent_status(self, event: dict) -> None:
        await self.send_json(event)

    async def call_offered(self, event: dict) -> None:
        await self.send_json(event)

    async def agent_frames(self, event: dict) -> None:
        """Several frames in one channel-layer message (a ring: the agent's status, then the call)."""
        for frame in event["frames"]:
            await self.send_json(frame)

    async def call_taken(self, event: dict) -> None:
        await self.send_json(event)

    async def call_withdrawn(self, event: dict) -> None:
        await self.send_json(event)

    async def call_taken_back(self, event: dict) -> None:
        await self.send_json(event)

    async def call_ended(self, event: dict) -> None:
        await self.send_json(event)

    async def call_filed(self, event: dict) -> None:
        await self.send_json(event)

    async def call_wrap_up_draft(self, event: dict) -> None:
        await self.send_json(event)

    async def call_media_answer(self, event: dict) -> None:
        await self.send_json(event)

    async def call_notice_finished(self, event: dict) -> None:
        await self.send_json(event)

    async def call_hold_changed(self, event: dict) -> None:
        await self.send_json(event)

    async def call_mute_changed(self, event: dict) -> None:
        await self.send_json(event)

    async def permission_lost(self, event: dict) -> None:
        await self.send_json(event)

    async def summary_ready(self, event: dict) -> None:
        await self.send_json(event)

    async def call_outbound_ringing(self, event: dict) -> None:
        await self.send_json(event)

    async def call_outbound_connected(self, event: dict) -> None:
        await self.send_json(event)

    # The inbox: the agent's conversations (messaging.conversations).
    async def conversation_assigned(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_message(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_read(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_released(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_closed(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_note(self, event: dict) -> None:  # ids only: the thread is read as the viewer
        await self.send_json(event)

    # The waiting lists of the agent's queues.
    async def conversation_waiting(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_taken(self, event: dict) -> None:
        await self.send_json(event)
