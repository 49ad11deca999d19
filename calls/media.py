"""The media process runtime: one asyncio loop that owns the live peer connections of its calls.

Each media process listens on two channel-layer channels: the shared `media.calls` channel, where
any idle process takes the next new call, and its own unique channel, which the Call row records
so that later messages for that call (browser SDP, hangup, hold) reach the process holding it.
A heartbeat key in Redis tells the rest of the deployment which media processes are alive.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from calls import routing
from calls.bridge import BridgeError, CallBridge
from calls.models import Call
from whatsapp.client import AsyncGraphClient
from whatsapp.errors import GraphAPIError

logger = logging.getLogger(__name__)

SHARED_CHANNEL = "media.calls"
HEARTBEAT_KEY_PREFIX = "switchboard:media:alive:"
HEARTBEAT_INTERVAL_S = 5
HEARTBEAT_TTL_S = 15

Handler = Callable[[dict], Awaitable[None]]


class MediaProcess:
    def __init__(self, *, handlers: dict[str, Handler] | None = None) -> None:
        self.handlers = handlers or {}
        self.channel_layer = get_channel_layer()
        self.channel_name = ""

    async def run(self, *, stop: asyncio.Event) -> None:
        self.channel_name = await self.channel_layer.new_channel(prefix="media")
        logger.info("media process listening on %s and %s", SHARED_CHANNEL, self.channel_name)
        tasks = [
            asyncio.create_task(self._heartbeat(stop)),
            asyncio.create_task(self._serve(SHARED_CHANNEL, stop)),
            asyncio.create_task(self._serve(self.channel_name, stop)),
        ]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, channel: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                message = await self.channel_layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except (OSError, redis.RedisError) as error:  # Redis starting or restarting: wait for it
                logger.warning("media process could not read %s (%s); retrying", channel, error)
                await asyncio.sleep(1)
                continue
            await self.dispatch(message)

    async def dispatch(self, message: dict) -> None:
        handler = self.handlers.get(message.get("type", ""))
        if handler is None:
            logger.warning("media process ignored a message of unknown type %r", message.get("type"))
            return
        try:
            await handler(message)
        except Exception:
            logger.exception("media process failed handling %r", message.get("type"))

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        key = HEARTBEAT_KEY_PREFIX + self.channel_name
        try:
            while not stop.is_set():
                try:
                    await client.set(key, "1", ex=HEARTBEAT_TTL_S)
                except redis.RedisError:
                    logger.warning("media process heartbeat could not reach Redis")
                await asyncio.sleep(HEARTBEAT_INTERVAL_S)
        finally:
            with contextlib.suppress(redis.RedisError):
                await client.delete(key)
            await client.aclose()


# --- Calls: what the media process does with them ------------------------------------------

STATIC_AUDIO = Path(settings.BASE_DIR) / "static" / "audio"
NOTICE_AUDIO = STATIC_AUDIO / "notice" / "en.wav"
HOLD_AUDIO = STATIC_AUDIO / "hold.wav"


class CallMedia:
    """The handlers of a media process for the calls it holds, one CallBridge per call.

    `call.answer` (from the shared channel): answer the customer's leg, accept on Meta
    (pre_accept, then accept with the same SDP answer), play the recording notice, then hold
    audio, and put the call in its queue. `call.hangup` (on this process's own channel): close
    the call's legs and finish its recording. A customer leg that drops ends the call.
    """

    def __init__(self, *, process: MediaProcess, recordings_dir: Path | None = None) -> None:
        self.process = process
        self.recordings_dir = recordings_dir or Path(settings.MEDIA_ROOT) / "recordings"
        self.bridges: dict[int, CallBridge] = {}
        self._watchers: set[asyncio.Task] = set()

    def handlers(self) -> dict[str, Handler]:
        return {
            "call.answer": self.answer,
            "call.hangup": self.hang_up,
            "call.agent_offer": self.connect_agent,
            "call.hold": self.switch,
            "call.mute": self.switch,
        }

    async def answer(self, message: dict) -> None:
        call_id = message["call_id"]
        call = await database_sync_to_async(_call_for_media)(call_id)
        if call is None or call.status != Call.Status.RINGING or call_id in self.bridges:
            return
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        bridge = CallBridge(
            call_id=str(call_id),
            recording_path=self.recordings_dir / f"call-{call_id}.wav",
            notice=NOTICE_AUDIO,
            hold=HOLD_AUDIO,
        )
        self.bridges[call_id] = bridge
        phone_number_id = call.business_number.phone_number_id
        try:
            sdp_answer = await bridge.answer_customer(message["sdp"])
            async with AsyncGraphClient() as graph:
                await graph.call_pre_accept(
                    phone_number_id=phone_number_id, call_id=call.wa_call_id, sdp=sdp_answer
                )
                await graph.call_accept(
                    phone_number_id=phone_number_id, call_id=call.wa_call_id, sdp=sdp_answer
                )
        except (BridgeError, GraphAPIError) as error:
            logger.warning("call %s could not be answered: %s", call_id, error)
            await self._drop(call_id)
            await database_sync_to_async(routing.call_finish)(
                call_id=call_id, reason=Call.EndReason.FAILED, detail=f"not answered: {error}"
            )
            return
        await bridge.start_notice_then_hold()
        await database_sync_to_async(routing.call_queued)(
            call_id=call_id, media_channel=self.process.channel_name
        )
        watcher = asyncio.create_task(self._watch_customer(call_id, bridge))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def connect_agent(self, message: dict) -> None:
        """The agent's softphone offered its leg: answer it and bridge it to the customer."""
        bridge = self.bridges.get(message["call_id"])
        agent_group = f"agent.{message['agent_id']}"
        if bridge is None:
            return
        try:
            sdp_answer = await bridge.connect_agent(message["sdp"])
        except BridgeError as error:
            await self.process.channel_layer.group_send(
                agent_group, {"type": "call.media_answer", "call_id": message["call_id"], "error": str(error)}
            )
            return
        await self.process.channel_layer.group_send(
            agent_group, {"type": "call.media_answer", "call_id": message["call_id"], "sdp": sdp_answer}
        )

    async def switch(self, message: dict) -> None:
        """Hold or mute, from the agent's softphone."""
        bridge = self.bridges.get(message["call_id"])
        if bridge is None:
            return
        if message["type"] == "call.hold":
            await bridge.set_hold(is_on=message["is_on"])
        else:
            await bridge.set_mute(is_on=message["is_on"])

    async def hang_up(self, message: dict) -> None:
        await self._drop(message["call_id"])

    async def close(self) -> None:
        """The process is stopping: its calls end (failed), their recordings are finished."""
        for call_id in list(self.bridges):
            await self._drop(call_id)
            await database_sync_to_async(routing.call_finish)(
                call_id=call_id,
                reason=Call.EndReason.FAILED,
                detail="media process stopped",
                is_ended_by_us=True,
            )

    async def _watch_customer(self, call_id: int, bridge: CallBridge) -> None:
        await bridge.customer_left.wait()
        if self.bridges.get(call_id) is bridge:
            await self._drop(call_id)
            ended = await database_sync_to_async(routing.call_finish)(
                call_id=call_id, reason=Call.EndReason.ABANDONED, detail="the customer's media ended"
            )
            if ended is not None and ended.previous_status == Call.Status.CONNECTED:
                await database_sync_to_async(Call.objects.filter(pk=call_id).update)(
                    end_reason=Call.EndReason.COMPLETED
                )

    async def _drop(self, call_id: int) -> None:
        bridge = self.bridges.pop(call_id, None)
        if bridge is not None:
            result = await bridge.close()
            logger.info(
                "call %s media closed: %.1f s recorded in %s", call_id, result.duration_s, result.path
            )


def _call_status(call_id: int) -> str | None:
    return Call.objects.filter(pk=call_id).values_list("status", flat=True).first()


def _call_for_media(call_id: int) -> Call | None:
    return Call.objects.select_related("business_number").filter(pk=call_id).first()
