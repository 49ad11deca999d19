"""The media process runtime: one asyncio loop that owns the live peer connections of its calls.

Each media process listens on two channel-layer channels: the shared `media.calls` channel, where
any idle process takes the next new call, and its own unique channel, which the Call row records
so that later messages for that call (browser SDP, hangup, hold) reach the process holding it.
A heartbeat key in Redis tells the rest of the deployment which media processes are alive.
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from agents.models import Queue
from calls import routing
from calls.bridge import BridgeError, CallBridge
from calls.models import Call
from calls.outbound import (
    call_customer_media_ended,
    call_outbound_dialed,
    callback_data_for,
    outbound_dial_failed,
)
from calls.prompts import (
    CLOSING,
    FALLBACK_LANGUAGE,
    HOLD_AUDIO,
    NOTICE,
    OUTBOUND_NOTICE,
    Prompt,
    language_for_country,
    prompt_for,
)
from calls.services import MEDIA_CHANNEL, call_claim_media, call_mark_answered
from calls.signals import recording_finished
from compliance.services import consent_notice_completed, consent_notice_started
from core.audio import OPUS_RATE, ogg_readable_end
from core.logs import about_call
from messaging.services import country_of_wa_id
from whatsapp.client import AsyncGraphClient
from whatsapp.errors import GraphAPIError

logger = logging.getLogger(__name__)

SHARED_CHANNEL = MEDIA_CHANNEL
HEARTBEAT_KEY_PREFIX = "switchboard:media:alive:"
HEARTBEAT_INTERVAL_S = 5
HEARTBEAT_TTL_S = 15
AGENT_WAITS_FOR_ANSWER_S = 15  # an agent's leg waits this long for the customer's to be answered
WAV_HEADER_BYTES = 44  # a spooled WAV (of an earlier version) no larger holds no audio
LEFTOVER_QUIET_S = 60  # a spool file untouched this long belongs to no live media process

Handler = Callable[[dict], Awaitable[None]]


class MediaProcess:
    def __init__(
        self, *, handlers: dict[str, Handler] | None = None, shared_channel: str = SHARED_CHANNEL
    ) -> None:
        self.handlers = handlers or {}
        self.shared_channel = shared_channel
        self.channel_layer = get_channel_layer()
        self.channel_name = ""
        self.calls_held: Callable[[], int] = lambda: 0  # what its heartbeat reports (CallMedia sets it)

    async def run(self, *, stop: asyncio.Event) -> None:
        self.channel_name = await self.channel_layer.new_channel(prefix="media")
        logger.info("media process listening on %s and %s", self.shared_channel, self.channel_name)
        tasks = [
            asyncio.create_task(self._heartbeat(stop)),
            asyncio.create_task(self._serve(self.shared_channel, stop)),
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
        with about_call(message.get("call_id")):  # and the tasks it starts for the call
            try:
                await handler(message)
            except Exception:
                logger.exception("media process failed handling %r", message.get("type"))

    def heartbeat_value(self) -> str:
        """What the heartbeat says of the process (read by calls.metrics): the calls it holds, the
        CPU seconds it has used, and where it runs (its host and process id, for an operator)."""
        return json.dumps(
            {
                "calls": self.calls_held(),
                "cpu_s": round(time.process_time(), 3),
                "host": socket.gethostname(),
                "pid": os.getpid(),
            }
        )

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        key = HEARTBEAT_KEY_PREFIX + self.channel_name
        try:
            while not stop.is_set():
                try:
                    await client.set(key, self.heartbeat_value(), ex=HEARTBEAT_TTL_S)
                except redis.RedisError:
                    logger.warning("media process heartbeat could not reach Redis")
                await asyncio.sleep(HEARTBEAT_INTERVAL_S)
        finally:
            with contextlib.suppress(redis.RedisError):
                await client.delete(key)
            await client.aclose()


# --- Calls: what the media process does with them ------------------------------------------


class CallMedia:
    """The handlers of a media process for the calls it holds, one CallBridge per call.

    `call.answer` (from the shared channel): claim the call (it is queued, and an agent may be
    ringing already), answer the customer's leg, accept on Meta (pre_accept, then accept with the
    same SDP answer), play the recording notice in the queue's language (a ConsentRecord keeps
    what was said and whether it was heard to the end), then hold audio. `call.dial`: a call we
    place; once the customer picks up (`call.customer_accepted`) they hear only that the call is
    recorded, in their language, then the agent, with no hold audio. `call.agent_offer`: the
    agent's leg, bridged once the customer's is answered. `call.hangup` (on this process's own channel): close
    the call's legs (after the closing message, for a farewell) and hand the finished recording
    to storage (`calls.signals.recording_finished`): only the conversation is recorded, from the
    agent's leg (or a called customer's pick-up) on, and a call without one leaves no recording.
    A customer leg that drops ends the call. An agent's leg that drops (their browser or network
    went) and is not back within AGENT_LEG_GRACE_S hands the call, the customer on hold meanwhile,
    to another agent (`routing.call_agent_lost`).
    """

    def __init__(self, *, process: MediaProcess, spool_dir: Path | None = None) -> None:
        self.process = process
        self.spool_dir = spool_dir or Path(settings.RECORDINGS_SPOOL_DIR)
        self.bridges: dict[int, CallBridge] = {}
        process.calls_held = lambda: len(self.bridges)
        self.languages: dict[int, str] = {}
        self.notices: dict[int, Prompt] = {}  # what the customer hears once on the line
        self.agent_ids: dict[int, int] = {}  # the agent whose leg is connected, by call
        self.answered: dict[int, asyncio.Event] = {}  # set once the customer's leg is answered on Meta
        self._watchers: dict[int, set[asyncio.Future]] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            "call.answer": self.answer,
            "call.dial": self.dial,
            "call.customer_answer": self.customer_answer,
            "call.customer_accepted": self.customer_accepted,
            "call.hangup": self.hang_up,
            "call.agent_offer": self.connect_agent,
            "call.hold": self.switch,
            "call.mute": self.switch,
        }

    async def answer(self, message: dict) -> None:
        call_id = message["call_id"]
        if call_id in self.bridges:
            return
        call = await database_sync_to_async(call_claim_media)(
            call_id=call_id, media_channel=self.process.channel_name
        )
        if call is None:  # ended already, or another process has it
            return
        bridge = self._open_bridge(
            call, notice=prompt_for(NOTICE, call.queue.language if call.queue else FALLBACK_LANGUAGE)
        )
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
        await database_sync_to_async(call_mark_answered)(call_id=call_id)
        if self.bridges.get(call_id) is not bridge:
            return  # the call ended while it was being answered: its media is already dropped
        await self._notice_then_hold(call, bridge)
        self._watch(call_id, self._watch_customer(call_id, bridge))

    def _open_bridge(self, call: Call, *, notice: Prompt) -> CallBridge:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        bridge = CallBridge(
            call_id=str(call.pk),
            recording_path=self.spool_dir / f"call-{call.pk}.ogg",
            notice=notice.path,
            hold=HOLD_AUDIO,
        )
        self.bridges[call.pk] = bridge
        self.languages[call.pk] = notice.language
        self.notices[call.pk] = notice
        self.answered[call.pk] = asyncio.Event()
        return bridge

    async def _notice_then_hold(
        self, call: Call, bridge: CallBridge, *, is_hold_after_notice: bool = True
    ) -> None:
        """The customer is on the line: the recording notice (kept as a consent record), then hold
        audio until the agent's leg is bridged (or silence: a call we placed has its agent at once);
        agents' legs may connect from now on."""
        notice = self.notices[call.pk]
        await bridge.start_notice_then_hold(is_hold_after_notice=is_hold_after_notice)
        self.answered[call.pk].set()
        await database_sync_to_async(consent_notice_started)(
            call_id=call.pk,
            contact_id=call.contact_id,
            business_number_id=call.business_number_id,
            language=notice.language,
            text=notice.text,
            at=timezone.now(),
        )
        self._watch(call.pk, self._watch_notice(call.pk, bridge))

    async def dial(self, message: dict) -> None:
        """A business call (from the shared channel): claim it, make the customer's offer and send
        Meta's `connect`. The customer's answer and the pick-up come later, as `call.customer_answer`
        and `call.customer_accepted` (Meta's answer can arrive before the customer picks up)."""
        call_id = message["call_id"]
        if call_id in self.bridges:
            return
        call = await database_sync_to_async(call_claim_media)(
            call_id=call_id, media_channel=self.process.channel_name
        )
        if call is None:
            return
        notice = await database_sync_to_async(outbound_notice_for)(call=call)
        bridge = self._open_bridge(call, notice=notice)
        try:
            sdp_offer = await bridge.offer_customer()
            # Never retried: a connect that timed out may have placed the call (a late webhook
            # naming it ends it then); a second one would ring the customer twice.
            async with AsyncGraphClient(max_retries=0) as graph:
                wa_call_id = await graph.call_connect(
                    phone_number_id=call.business_number.phone_number_id,
                    to=call.contact.wa_id,
                    sdp=sdp_offer,
                    biz_opaque_callback_data=callback_data_for(call),
                )
        except (BridgeError, GraphAPIError) as error:
            logger.warning("call %s could not be dialled: %s", call_id, error)
            await self._drop(call_id)
            await database_sync_to_async(outbound_dial_failed)(call_id=call_id, error=error)
            return
        await database_sync_to_async(call_outbound_dialed)(call_id=call_id, wa_call_id=wa_call_id)
        self._watch(call_id, self._watch_customer(call_id, bridge))

    async def customer_answer(self, message: dict) -> None:
        """Meta's `connect` for a call we dialled: the customer's SDP answer. The media connects;
        the customer hears silence until they pick up."""
        call_id = message["call_id"]
        bridge = self.bridges.get(call_id)
        if bridge is None:
            return
        try:
            await bridge.accept_customer_answer(message["sdp"])
        except BridgeError as error:
            logger.warning("call %s: the customer's answer failed: %s", call_id, error)
            await self._drop(call_id)
            await database_sync_to_async(routing.call_finish)(
                call_id=call_id, reason=Call.EndReason.FAILED, detail=str(error), is_ended_by_us=True
            )

    async def customer_accepted(self, message: dict) -> None:
        """The customer picked up a call we dialled: that the call is recorded, then the agent (whose
        leg connects meanwhile), never hold audio."""
        call_id = message["call_id"]
        bridge = self.bridges.get(call_id)
        if bridge is None or self.answered[call_id].is_set():
            return
        call = await database_sync_to_async(Call.objects.get)(pk=call_id)
        bridge.record_from_now()  # the customer is connected: the conversation starts
        await self._notice_then_hold(call, bridge, is_hold_after_notice=False)

    def _watch(self, call_id: int, coroutine: Awaitable[None]) -> None:
        """Run a task for one call until it finishes or the call's media is dropped."""
        watcher = asyncio.ensure_future(coroutine)
        watchers = self._watchers.setdefault(call_id, set())
        watchers.add(watcher)
        watcher.add_done_callback(watchers.discard)

    async def connect_agent(self, message: dict) -> None:
        """The agent's softphone offered its leg: answer it and bridge it to the customer (once the
        customer's leg is answered: an agent can accept while that is still going on). An offer that
        comes while this process is still taking the call (it has claimed it, the bridge is not open
        yet), or once the call is over, is answered "not ready": the softphone offers again shortly."""
        bridge = self.bridges.get(message["call_id"])
        answered = self.answered.get(message["call_id"])
        agent_group = f"agent.{message['agent_id']}"
        if bridge is None or answered is None:
            await self.process.channel_layer.group_send(
                agent_group,
                {"type": "call.media_answer", "call_id": message["call_id"], "is_ready": False,
                 "error": "the media process is not ready for the call yet"},
            )  # fmt: skip
            return
        try:
            async with asyncio.timeout(AGENT_WAITS_FOR_ANSWER_S):
                await answered.wait()
            sdp_answer = await bridge.connect_agent(message["sdp"])
        except (BridgeError, TimeoutError) as error:
            reason = str(error) if isinstance(error, BridgeError) else "the customer's leg was not answered"
            await self.process.channel_layer.group_send(
                agent_group, {"type": "call.media_answer", "call_id": message["call_id"], "error": reason}
            )
            return
        if message["call_id"] not in self.agent_ids:  # the call's first agent leg: watched from now on
            self._watch(message["call_id"], self._watch_agent(message["call_id"], bridge))
        self.agent_ids[message["call_id"]] = message["agent_id"]
        await self.process.channel_layer.group_send(
            agent_group,
            {
                "type": "call.media_answer",
                "call_id": message["call_id"],
                "sdp": sdp_answer,
                "is_notice_playing": bridge.is_notice_playing,
            },
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
        """Close the call's legs; with `is_farewell`, after the closing message has played."""
        call_id = message["call_id"]
        bridge = self.bridges.get(call_id)
        if bridge is not None and message.get("is_farewell"):
            closing = prompt_for(CLOSING, self.languages.get(call_id, FALLBACK_LANGUAGE))
            try:
                await bridge.say_goodbye(closing.path, timeout_s=closing.duration_s + 2)
            except BridgeError as error:
                logger.info("call %s: no closing message (%s)", call_id, error)
        await self._drop(call_id)

    async def store_leftover_recordings(self, *, quiet_for_s: float = LEFTOVER_QUIET_S) -> int:
        """Recordings a media process left in the spool when it died: stored now, for calls that have
        ended (the lost-media sweep ends them). A file written to within `quiet_for_s` may still
        belong to a live process and is left alone. Returns how many were stored."""
        stored = 0
        # Ogg Opus, or WAV from a process of an earlier version.
        for path in sorted([*self.spool_dir.glob("call-*.ogg"), *self.spool_dir.glob("call-*.wav")]):
            try:
                stored += await self._store_leftover(path, quiet_for_s=quiet_for_s)
            except FileNotFoundError:  # another media process starting beside this one took it
                continue
        return stored

    async def _store_leftover(self, path: Path, *, quiet_for_s: float) -> bool:
        """Store one leftover recording if its call has ended: whether it was."""
        call_id = int(path.stem.removeprefix("call-")) if path.stem.removeprefix("call-").isdigit() else None
        if call_id is None or call_id in self.bridges or time.time() - path.stat().st_mtime < quiet_for_s:
            return False
        status = await database_sync_to_async(_call_status)(call_id)
        if status in Call.LIVE_STATUSES:
            return False
        try:
            duration_s = await asyncio.to_thread(_leftover_duration_s, path)
        except FileNotFoundError:
            raise
        except (OSError, EOFError, wave.Error) as error:
            logger.error("call %s: the leftover recording %s is unreadable (%s)", call_id, path, error)
            return False
        if not duration_s:  # the headers alone: its conversation never started
            path.unlink(missing_ok=True)
            return False
        await database_sync_to_async(recording_finished.send)(
            sender=CallMedia, call_id=call_id, path=path, duration_s=duration_s
        )
        return True

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

    async def _watch_notice(self, call_id: int, bridge: CallBridge) -> None:
        await bridge.notice_finished.wait()
        await database_sync_to_async(consent_notice_completed)(call_id=call_id, at=timezone.now())
        agent_id = self.agent_ids.get(call_id)
        if agent_id is not None:
            await self.process.channel_layer.group_send(
                f"agent.{agent_id}", {"type": "call.notice_finished", "call_id": call_id}
            )

    async def _watch_customer(self, call_id: int, bridge: CallBridge) -> None:
        await bridge.customer_left.wait()
        if self.bridges.get(call_id) is bridge:
            await self._drop(call_id)
            await database_sync_to_async(call_customer_media_ended)(
                call_id=call_id, is_silent=bridge.is_customer_silent
            )

    async def _watch_agent(self, call_id: int, bridge: CallBridge) -> None:
        """The agent's leg left (`CallBridge.agent_left`): the customer hears the hold audio at once.
        A leg back within AGENT_LEG_GRACE_S (a reloaded tab, the audio taken to another tab) carries on;
        otherwise the agent is gone and the call goes to another agent (`routing.call_agent_lost`),
        the customer on hold until that agent's leg takes over."""
        while True:
            await bridge.agent_left.wait()
            if await bridge.wait_for_agent(timeout_s=settings.AGENT_LEG_GRACE_S):
                continue
            agent_id = self.agent_ids.get(call_id)
            logger.warning(
                "call %s: agent %s's leg gone for %.0f s: the call goes to another agent",
                call_id,
                agent_id,
                settings.AGENT_LEG_GRACE_S,
            )
            try:
                await database_sync_to_async(routing.call_agent_lost)(call_id=call_id, agent_id=agent_id)
            except Exception:  # the database out of reach: tried again after another grace
                logger.exception("call %s: could not hand the call to another agent", call_id)
                continue
            with contextlib.suppress(BridgeError):  # the call ended meanwhile
                # The next agent starts off hold and unmuted, whatever the last one had set.
                await bridge.set_hold(is_on=False)
                await bridge.set_mute(is_on=False)
            await bridge.wait_for_agent(timeout_s=None)

    async def _drop(self, call_id: int) -> None:
        bridge = self.bridges.pop(call_id, None)
        self.languages.pop(call_id, None)
        self.notices.pop(call_id, None)
        self.agent_ids.pop(call_id, None)
        answered = self.answered.pop(call_id, None)
        for watcher in self._watchers.pop(call_id, set()):
            if watcher is not asyncio.current_task():
                watcher.cancel()
        if bridge is None:
            return
        result = await bridge.close()
        if answered is None or not answered.is_set() or not result.is_conversation:
            # No conversation (nobody on the line, or no agent before the end): nothing to keep.
            result.path.unlink(missing_ok=True)
            return
        try:
            await database_sync_to_async(recording_finished.send)(
                sender=CallMedia,
                call_id=call_id,
                path=result.path,
                duration_s=result.duration_s,
            )
        except Exception:  # the recording stays in the spool directory, where an operator finds it
            logger.exception("call %s: the recording %s could not be stored", call_id, result.path)


def outbound_notice_for(*, call: Call) -> Prompt:
    """What a customer we call hears once they pick up: that the call is recorded, in the language of
    their number's country (the contact's, else read from the number) when it is recorded in it, else
    in the language of the business number's queue (the first by name), else in English."""
    default = (
        Queue.objects.filter(business_numbers=call.business_number_id)
        .order_by("name", "pk")
        .values_list("language", flat=True)
        .first()
    )
    country = call.contact.country or country_of_wa_id(call.contact.wa_id)
    language = language_for_country(country, kind=OUTBOUND_NOTICE, default=default or FALLBACK_LANGUAGE)
    return prompt_for(OUTBOUND_NOTICE, language)


def _call_status(call_id: int) -> str | None:
    return Call.objects.filter(pk=call_id).values_list("status", flat=True).first()


def _leftover_duration_s(path: Path) -> float:
    """How long a spooled recording whose writer died is, made whole: an Ogg Opus file is cut after its
    last whole page (its writer writes a page at a time); Python's wave module rewrites a WAV's header
    after every write, so a WAV is readable up to its last complete write."""
    if path.suffix == ".wav":
        if path.stat().st_size <= WAV_HEADER_BYTES:
            return 0.0
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    with path.open("r+b") as file:
        end, granule = ogg_readable_end(file)
        file.truncate(end)
    return granule / OPUS_RATE
