"""One call's media in the media process: the customer's WebRTC leg, the agent's browser leg, the recording.

```
   customer (Meta) ── Opus ──┬──▶ recording, left channel (Ogg Opus)  (once the conversation starts)
          ▲                  └──▶ agent output ──▶ agent (browser)      (unless on hold)
          │                                             │
   customer output ◀── notice, hold audio, or ── Opus ◀─┴──▶ recording, right channel (Ogg Opus)
                       the agent (unless on hold or muted)               (silence on hold or muted)
```

Each leg is an aiortc peer connection that answers the other side's complete SDP offer (no trickle ICE).
The relay forwards Opus packets: each packet a leg receives leaves aiortc's jitter buffer straight into
the bridge, on the event loop (``core.webrtc.receive_encoded``), and goes as it is into the other leg's
*output*, the one track that leg hears. Nothing is re-encoded: an output sends packets (relayed ones,
prompts and silence encoded once per process) under timestamps of its own, pacing itself on the clock
while it plays a prompt or silence and following the other leg's arrivals while it relays, filling
stalls with silence. The recording keeps the same packets, in an Ogg Opus file: nothing is decoded in
the media process (but for a peer's packets that are not 20 ms long); the worker that transcribes does.
"""

import asyncio
import collections
import contextlib
import fractions
import functools
import gc
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError
from django.conf import settings

from core.audio import (
    OPUS_FRAME_SAMPLES,
    OPUS_RATE,
    AudioFileError,
    OggOpusWriter,
    OpusDecoder,
    OpusEncoder,
    OpusPacketError,
    decode_mono_s16,
    opus_encode_mono,
    opus_packet_samples,
    opus_self_delimited,
)
from core.processes import release_freed_memory
from core.webrtc import (
    apply_host_addresses,
    opus_codecs,
    receive_encoded,
    rtc_configuration,
    sdp_answer_declining,
    sdp_audio_only,
    sdp_problem,
)

logger = logging.getLogger(__name__)

SAMPLE_RATE = OPUS_RATE  # everything sent, relayed and recorded
FRAME_SAMPLES = OPUS_FRAME_SAMPLES  # 20 ms: the prompts' and silence's packets
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
NEGOTIATION_TIMEOUT_S = 10.0  # applying an offer and gathering candidates; STUN/TURN can be slow

# Relaying: a packet from the other leg may come this late before silence fills in for it, and no more
# than this many packets wait to be sent (more means the event loop fell behind: the oldest are dropped).
# A packet on time is sent at once whatever the grace; a late one within it reaches the listener's jitter
# buffer as jitter, which it absorbs, where silence would be a gap (bench/bridged_calls.py, when the relay
# still decoded and re-encoded: at 40 ms a busy process left single silent frames from 10 calls on).
RELAY_GRACE_S = 0.08
RELAY_QUEUE_PACKETS = 10
GOODBYE_TAIL_S = 0.4  # silence after a closing message before hanging up: its last words reach the ear

# Recording: frames are placed on the call's timeline by their RTP timestamp, anchored to the earliest
# arrival seen, so that network jitter and stalls followed by bursts keep their timing.
OVERLAP_TOLERANCE_S = 0.03  # a frame starting earlier than this before the previous one's end is dropped
MAX_LATENESS_S = 0.5  # a frame later than this (a long stall, a timestamp jump) re-anchors the channel
LATENESS_WINDOW_S = 2.0  # when every frame of a window came later than LATENESS_TOLERANCE_S, the anchor
LATENESS_TOLERANCE_S = 0.03  # moves by the least lateness: the sender's clock runs slower than ours
IDLE_HOLDBACK_S = 1.0  # a channel that sends nothing is filled with silence up to this long ago
FLUSH_S = 0.5  # write to the file a page at a time, each at least this long

CUSTOMER = 0  # left channel
AGENT = 1  # right channel


def keep_collections_short() -> None:
    """Leave what the process holds now out of the garbage collector's full collections: call it once the
    process has loaded what it needs, before any call.

    A full collection walks every tracked object with the event loop stopped, and most of a media
    process's objects are the modules it loaded (Django, aiortc, PyAV, numpy), which never become
    garbage. A stopped loop delays every call's packets; past ``RELAY_GRACE_S`` the listener hears a gap
    (bench/bridged_calls.py at 28-32 calls: the longest full collection took 73 ms, 40 ms after this).
    """
    gc.collect()
    gc.freeze()


class BridgeError(Exception):
    """The bridge cannot do this: bad SDP, a leg in the wrong state, an unreadable prompt or recording."""


@dataclass(frozen=True)
class RecordingResult:
    """The finished recording: an Ogg Opus file of two mono streams, the customer's (left) and the
    agent's (right), as they sent them. Not ``is_conversation``: the call ended before its conversation
    started, and the file holds nothing.
    """

    path: Path
    duration_s: float
    is_conversation: bool = True


class CallBridge:
    """One call's media: the customer's leg (Meta's WebRTC) and, once an agent accepts, the browser's leg.

    ``notice`` is said once to the customer after ``start_notice_then_hold()``, then ``hold`` loops
    until an agent connects (unless told otherwise; ``hold`` still plays while the agent holds the
    call or has no leg); either may be None (silence instead). Any WAV works: it is converted once.
    Only the conversation is recorded: both directions go to ``recording_path`` from the moment an
    agent's leg is first answered (``connect_agent()``), or the owner says the conversation started
    (``record_from_now()``: the customer picked up a call we placed), until ``close()``. The events
    ``notice_finished``, ``customer_left`` and ``agent_left`` tell the owner what happened; a leg counts as
    left when its connection fails or closes or its audio ends, and also when its media stops while
    on the line (no packet for MEDIA_SILENCE_TIMEOUT_S: ``is_customer_silent`` for the customer's),
    but not when ``close()`` ends it. ``wait_for_agent()`` waits for an agent's leg to take over again
    after ``agent_left``. Every
    method raises ``BridgeError`` when it cannot do what was asked; the owner should then ``close()``.
    """

    def __init__(self, *, call_id: str, recording_path: Path, notice: Path | None, hold: Path | None) -> None:
        self.call_id = call_id
        self.notice_finished = asyncio.Event()
        self.customer_left = asyncio.Event()
        self.agent_left = asyncio.Event()
        self._agent_joined = asyncio.Event()  # an agent's leg is answered and has not left since
        self._notice = _load_prompt(notice) if notice is not None else None
        self._hold = _load_prompt(hold) if hold is not None else None
        self._recording = _OpusRecording(recording_path)
        self._customer: _Leg | None = None
        self._agent: _Leg | None = None
        self._customer_output = _LegOutput()
        self._agent_output = _LegOutput()
        self._customer_hears = "silence"  # "silence", "prompts", "hold", "agent" or "goodbye"
        self._is_on_hold = False
        self._is_muted = False
        self._closing: asyncio.Task[RecordingResult] | None = None

    @property
    def is_notice_playing(self) -> bool:
        """The customer is hearing the recording notice (an agent who connected waits for its end)."""
        return self._is_notice_playing()

    @property
    def is_customer_silent(self) -> bool:
        """The customer's leg left because its media stopped (their network, most likely), not
        because its connection closed."""
        return self._customer is not None and self._customer.went_silent

    @property
    def is_agent_connected(self) -> bool:
        """An agent's leg is answered or being answered (its media may still connect, or have left)."""
        return self._agent is not None

    async def answer_customer(self, offer_sdp: str) -> str:
        """Answer the customer's SDP offer: the complete SDP answer (every ICE candidate included).

        The customer hears silence until ``start_notice_then_hold()``.
        """
        answer = await self._negotiate_customer(lambda leg: leg.answer(offer_sdp))
        self._customer.watch_silence()  # the customer is on the line from the start
        return answer

    async def offer_customer(self) -> str:
        """A business call: the SDP offer for Meta's `connect` (every ICE candidate included).

        The customer hears silence until ``start_notice_then_hold()`` (call it, and
        ``record_from_now()``, once the customer has picked up).
        """
        return await self._negotiate_customer(lambda leg: leg.offer())

    async def accept_customer_answer(self, answer_sdp: str) -> None:
        """Apply the customer's SDP answer to ``offer_customer()``'s offer: the media connects."""
        self._check_open()
        if self._customer is None:
            raise BridgeError("offer the customer's leg before applying an answer")
        await self._customer.accept_answer(answer_sdp)

    async def _negotiate_customer(self, negotiate: Callable[["_Leg"], Awaitable[str]]) -> str:
        """Open the customer's leg, answering Meta's offer or making ours."""
        self._check_open()
        if self._customer is not None:
            raise BridgeError("the customer's leg is already negotiated")
        self._customer = _Leg(
            name="customer",
            call_id=self.call_id,
            output=self._customer_output,
            on_audio=self._from_customer,
            on_left=self.customer_left.set,
        )
        try:
            return await negotiate(self._customer)
        except BridgeError:
            await self._customer.close()
            self._customer = None
            raise

    def record_from_now(self) -> None:
        """The conversation starts: both directions are recorded from now on (the recording's
        timeline starts here; the first call counts). A customer we called is on the line from now
        on: their media stopping from now is their leaving."""
        self._check_open()
        self._recording.start(at=time.monotonic())
        if self._customer is not None:
            self._customer.watch_silence()

    async def start_notice_then_hold(self, *, is_hold_after_notice: bool = True) -> None:
        """Play the notice once, then the hold audio in a loop, to the customer; returns at once.

        Without ``is_hold_after_notice`` silence follows the notice instead (a call we place: its agent
        is there, or about to be). Sets ``notice_finished`` once the last of the notice has been sent
        (at once when there is none); a notice cut short by ``connect_agent()`` never sets it. Does
        nothing once an agent is connected or the prompts are playing.
        """
        self._check_open()
        if self._agent is not None or self._customer_hears == "prompts":
            return
        self._customer_hears = "prompts"
        hold = self._hold if is_hold_after_notice else None
        self._customer_output.play(
            _Announcement(notice=self._notice, hold=hold, on_notice_finished=self._on_notice_finished)
        )
        if self._notice is None:
            self.notice_finished.set()

    async def say_goodbye(self, closing: Path, *, timeout_s: float) -> bool:
        """Play ``closing`` once to the customer (nothing else: no agent, no hold audio), then silence.

        Returns when it has been sent in full (True), or when the customer left or ``timeout_s``
        passed first (False). The owner then ``close()``-s the bridge.
        """
        self._check_open()
        if self._customer is None:
            raise BridgeError("answer the customer's leg before saying goodbye")
        played = asyncio.Event()
        self._customer_hears = "goodbye"
        announcement = _Announcement(notice=_load_prompt(closing), hold=None, on_notice_finished=played.set)
        self._customer_output.play(announcement)
        waits = [asyncio.ensure_future(played.wait()), asyncio.ensure_future(self.customer_left.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if played.is_set() and not self.customer_left.is_set():
                # The last frames are sent, not yet heard: the customer's jitter buffer still holds them.
                await asyncio.wait([waits[1]], timeout=GOODBYE_TAIL_S)
        finally:
            for waiting in waits:
                waiting.cancel()
        return played.is_set()

    async def connect_agent(self, offer_sdp: str) -> str:
        """Answer the agent's browser offer and bridge the two legs: the SDP answer, complete.

        The hold audio stops: from now on each side hears the other, as hold and mute allow. A notice
        still playing is heard to its end first (the customer must hear that the call is recorded):
        meanwhile the agent hears the customer but the customer does not hear the agent. A new offer
        replaces the agent's leg (the agent reloaded the page, or moved the call's audio to another
        tab); while the agent has no leg, the customer hears the hold audio rather than dead air.
        The first leg answered starts the recording: the conversation starts here.
        """
        self._check_open()
        if self._customer is None:
            raise BridgeError("answer the customer's leg before connecting an agent")
        if self._agent is not None:
            replaced, self._agent = self._agent, None
            await replaced.close()
            # Closing a peer connection stops the track it sent (aiortc), so the new leg gets its own.
            self._agent_output = _LegOutput()
        self.agent_left.clear()
        self._agent = _Leg(
            name="agent",
            call_id=self.call_id,
            output=self._agent_output,
            on_audio=self._from_agent,
            on_left=self._on_agent_left,
        )
        try:
            answer = await self._agent.answer(offer_sdp)
        except BridgeError:
            await self._agent.close()
            self._agent = None
            raise
        self._agent.watch_silence()  # counted from the browser's first packet
        self._agent_joined.set()
        self._recording.start(at=time.monotonic())
        self._route()
        return answer

    async def wait_for_agent(self, *, timeout_s: float | None) -> bool:
        """Wait up to ``timeout_s`` (None: for as long as it takes) for an agent's leg to be answered
        (a reloaded tab, the audio taken to another tab, or the next agent):
        whether one was. At once when one is on."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._agent_joined.wait()
        return self._agent_joined.is_set()

    async def set_hold(self, *, is_on: bool) -> None:
        """On hold the customer hears the hold audio and the agent hears silence; nothing of the agent is
        recorded. Takes effect when an agent is connected."""
        self._check_open()
        self._is_on_hold = is_on
        self._route()

    async def set_mute(self, *, is_on: bool) -> None:
        """Muted, the customer hears silence from the agent and nothing of the agent is recorded; the agent
        still hears the customer. Takes effect when an agent is connected."""
        self._check_open()
        self._is_muted = is_on
        self._route()

    async def close(self) -> RecordingResult:
        """Hang up both legs and finish the recording (a valid Ogg Opus file even when nothing was
        heard; not ``is_conversation`` when the conversation never started), and hand the memory the
        call held back to the system (`core.processes.release_freed_memory`).

        Safe to call twice, or concurrently: every call returns the same result.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        return await asyncio.shield(self._closing)

    async def _close(self) -> RecordingResult:
        legs = [leg for leg in (self._customer, self._agent) if leg is not None]
        await asyncio.gather(*(leg.close() for leg in legs))
        self._customer_output.stop()
        self._agent_output.stop()
        result = self._recording.finish(at=time.monotonic())
        logger.info("call %s: media closed, %.1f s recorded", self.call_id, result.duration_s)
        release_freed_memory()  # what the legs held (DTLS, SRTP, sockets, buffers) is free now
        return result

    def _check_open(self) -> None:
        if self._closing is not None:
            raise BridgeError("the bridge is closed")

    def _on_agent_left(self) -> None:
        self._agent_joined.clear()
        self.agent_left.set()
        self._route()  # the customer hears the hold audio until an agent's leg connects again

    def _on_notice_finished(self) -> None:
        self.notice_finished.set()
        self._route()  # an agent who accepted during the notice is heard from now on

    def _is_notice_playing(self) -> bool:
        return self._customer_hears == "prompts" and not self.notice_finished.is_set()

    def _route(self) -> None:
        if self._agent is None or self._customer_hears == "goodbye":
            return  # the customer hears what start_notice_then_hold() or say_goodbye() chose
        if self._is_notice_playing():
            self._agent_output.relay()
            return
        is_held = self._is_on_hold or self.agent_left.is_set()
        customer_hears = "hold" if is_held else "silence" if self._is_muted else "agent"
        if customer_hears != self._customer_hears:
            self._customer_hears = customer_hears
            if customer_hears == "hold":
                self._customer_output.play(_Announcement(notice=None, hold=self._hold))
            elif customer_hears == "silence":
                self._customer_output.play(None)
            else:
                self._customer_output.relay()
        if is_held:
            self._agent_output.play(None)
        else:
            self._agent_output.relay()

    def _from_customer(self, packet: "_Packet", media_time_s: float, arrived_at: float) -> None:
        if self._recording.add_packet(
            CUSTOMER, packet, is_heard=True, media_time_s=media_time_s, at=arrived_at
        ):
            self._agent_output.push(packet)  # kept only while the agent hears the customer

    def _from_agent(self, packet: "_Packet", media_time_s: float, arrived_at: float) -> None:
        is_heard = not (self._is_on_hold or self._is_muted or self._is_notice_playing())
        if self._recording.add_packet(
            AGENT, packet, is_heard=is_heard, media_time_s=media_time_s, at=arrived_at
        ):
            self._customer_output.push(packet)  # kept only while the customer hears the agent


@dataclass(frozen=True, slots=True)
class _Packet:
    """One Opus packet and how many 48 kHz samples it holds."""

    payload: bytes
    samples: int


PacketSink = Callable[[_Packet, float, float], None]


class _Leg:
    """One peer connection of the bridge: answers or makes an offer, sends ``output``, pumps what it hears."""

    def __init__(
        self,
        *,
        name: str,
        call_id: str,
        output: "_LegOutput",
        on_audio: PacketSink,
        on_left: Callable[[], None],
    ) -> None:
        self.name = name
        self._call_id = call_id
        self._on_left = on_left
        self._output = output
        self._on_audio = on_audio
        self._watch: asyncio.Task[None] | None = None
        self._silence_watch: asyncio.Task[None] | None = None
        self._heard_at = 0.0  # time.monotonic() of the leg's last packet
        self.went_silent = False
        self._is_closing = False
        self._bad_packets = 0
        apply_host_addresses()
        self._peer_connection = RTCPeerConnection(configuration=rtc_configuration())
        self._peer_connection.on("connectionstatechange", self._on_connection_state_change)
        self._peer_connection.on("track", self._on_track)

    def _add_opus_transceiver(self) -> None:
        transceiver = self._peer_connection.addTransceiver(self._output, direction="sendrecv")
        transceiver.setCodecPreferences(opus_codecs())
        receive_encoded(transceiver.receiver, self._on_packet)

    async def answer(self, offer_sdp: str) -> str:
        """The complete answer to an offer: for its audio only (WhatsApp calls are voice only), any
        other section (a phone's camera) declined with port 0, never failed."""
        offer_sdp, declined = sdp_audio_only(offer_sdp)
        if (problem := sdp_problem(offer_sdp)) is not None:
            raise BridgeError(f"the {self.name}'s SDP offer {problem}")
        peer_connection = self._peer_connection
        # The transceiver exists before the offer is applied so that the answer keeps to Opus; it takes
        # the offer's audio section because its mid is still unset.
        self._add_opus_transceiver()
        try:
            async with asyncio.timeout(NEGOTIATION_TIMEOUT_S):
                await peer_connection.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
                # aiortc gathers every candidate inside setLocalDescription: the answer is complete.
                await peer_connection.setLocalDescription(await peer_connection.createAnswer())
        except (ValueError, OperationError, InvalidAccessError, InvalidStateError) as error:
            raise BridgeError(f"the {self.name}'s SDP offer cannot be answered: {error}") from error
        except TimeoutError:
            raise BridgeError(
                f"answering the {self.name}'s offer took over {NEGOTIATION_TIMEOUT_S} s"
            ) from None
        return sdp_answer_declining(peer_connection.localDescription.sdp, declined)

    async def offer(self) -> str:
        """Make the offer of a call we place: Opus only, complete (aiortc gathers every candidate)."""
        peer_connection = self._peer_connection
        self._add_opus_transceiver()
        try:
            async with asyncio.timeout(NEGOTIATION_TIMEOUT_S):
                await peer_connection.setLocalDescription(await peer_connection.createOffer())
        except TimeoutError:
            raise BridgeError(f"making the {self.name}'s offer took over {NEGOTIATION_TIMEOUT_S} s") from None
        return peer_connection.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        if (problem := sdp_problem(answer_sdp)) is not None:
            raise BridgeError(f"the {self.name}'s SDP answer {problem}")
        try:
            async with asyncio.timeout(NEGOTIATION_TIMEOUT_S):
                await self._peer_connection.setRemoteDescription(
                    RTCSessionDescription(sdp=answer_sdp, type="answer")
                )
        except (ValueError, OperationError, InvalidAccessError, InvalidStateError) as error:
            raise BridgeError(f"the {self.name}'s SDP answer cannot be applied: {error}") from error
        except TimeoutError:
            raise BridgeError(
                f"applying the {self.name}'s answer took over {NEGOTIATION_TIMEOUT_S} s"
            ) from None

    async def close(self) -> None:
        self._is_closing = True
        await self._peer_connection.close()
        for watch in (self._watch, self._silence_watch):
            if watch is not None and watch is not asyncio.current_task():
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._watch is None:
            self._watch = asyncio.create_task(self._wait_for_end(track))

    def watch_silence(self) -> None:
        """From now on, the leg's media stopping is its leaving (`_watch_silence`)."""
        if self._silence_watch is None and not self._is_closing:
            self._silence_watch = asyncio.create_task(self._watch_silence())

    def _on_connection_state_change(self) -> None:
        state = self._peer_connection.connectionState
        logger.info("call %s: %s leg %s", self._call_id, self.name, state)
        if state in ("failed", "closed"):
            self._leave()

    def _on_packet(self, payload: bytes, timestamp: int, arrived_at: float) -> None:
        self._heard_at = arrived_at
        try:
            samples = opus_packet_samples(payload)
        except OpusPacketError as error:
            # Neither relayed nor recorded: the listener's jitter buffer and the recording see a lost packet.
            self._bad_packets += 1
            if self._bad_packets == 1 or self._bad_packets % 1000 == 0:
                logger.warning(
                    "call %s: %s leg sent %d bad packets: %s",
                    self._call_id,
                    self.name,
                    self._bad_packets,
                    error,
                )
            return
        self._on_audio(_Packet(payload, samples), timestamp / SAMPLE_RATE, arrived_at)

    async def _watch_silence(self) -> None:
        """A leg whose media stops for MEDIA_SILENCE_TIMEOUT_S is gone: a customer whose network
        dropped is noticed then, not when ICE consent expires (about 30 s later) while the agent
        talks to silence. A live leg keeps sending while its side is quiet (WhatsApp and the browser
        both do; Opus's DTX, where used, still sends a packet every 400 ms). Counted from the leg's
        first packet once watched. A check after the event loop itself stalled is skipped: packets
        may be waiting to be read."""
        timeout_s = settings.MEDIA_SILENCE_TIMEOUT_S
        every_s = min(1.0, timeout_s / 4)
        while not self._is_closing:
            slept_from = time.monotonic()
            await asyncio.sleep(every_s)
            if not self._heard_at or time.monotonic() - slept_from > every_s + 1.0:
                continue  # no media yet, or the loop stalled
            silent_for_s = time.monotonic() - self._heard_at
            if silent_for_s > timeout_s and not self._is_closing:
                logger.warning(
                    "call %s: no media from the %s leg for %.1f s: gone",
                    self._call_id,
                    self.name,
                    silent_for_s,
                )
                self.went_silent = True
                self._leave()
                return

    async def _wait_for_end(self, track: MediaStreamTrack) -> None:
        # The packets go to _on_packet as they leave the jitter buffer: the track only ever ends.
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
        self._leave()

    def _leave(self) -> None:
        if not self._is_closing:
            self._on_left()


class _LegOutput(MediaStreamTrack):
    """What one leg hears: Opus packets of a prompt, of the other leg, or of silence, one after another."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._announcement: _Announcement | None = None
        self._is_relaying = False
        self._relayed: collections.deque[_Packet] = collections.deque(maxlen=RELAY_QUEUE_PACKETS)
        self._woken = asyncio.Event()
        self._next_due: float | None = None
        self._pts = 0

    def play(self, announcement: "_Announcement | None") -> None:
        """Send ``announcement`` from now on, or silence when None; nothing relayed."""
        self._announcement = announcement
        self._is_relaying = False
        self._relayed.clear()
        self._woken.set()

    def relay(self) -> None:
        """Send what the other leg ``push``-es from now on."""
        if not self._is_relaying:
            self._announcement = None
            self._is_relaying = True
            self._relayed.clear()

    def push(self, packet: _Packet) -> None:
        """Offer a packet from the other leg: kept only while relaying."""
        if self._is_relaying:
            self._relayed.append(packet)
            self._woken.set()

    def stop(self) -> None:
        super().stop()
        self._woken.set()

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._next_due is None:
            self._next_due = time.monotonic()
        packet = await self._next_relayed(deadline=self._next_due + RELAY_GRACE_S)
        if packet is None:
            # Nothing relayed (or a relayed leg stalled): keep the pace of the clock.
            await asyncio.sleep(max(0.0, self._next_due - time.monotonic()))
            packet = self._announcement.next_packet() if self._announcement is not None else _silence()
            self._next_due += packet.samples / SAMPLE_RATE
        else:
            self._next_due = time.monotonic() + packet.samples / SAMPLE_RATE
        if self.readyState != "live":
            raise MediaStreamError
        # aiortc's sender sends a packet as it is (no encoding) with the timestamp its pts gives.
        sent = av.Packet(packet.payload)
        sent.pts = self._pts
        sent.time_base = TIME_BASE
        self._pts += packet.samples
        return sent

    async def _next_relayed(self, *, deadline: float) -> _Packet | None:
        while not self._relayed:
            remaining = deadline - time.monotonic()
            if not self._is_relaying or remaining <= 0 or self.readyState != "live":
                return None
            self._woken.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._woken.wait()
            except TimeoutError:
                return None
        return self._relayed.popleft()


class _Announcement:
    """The notice once (then ``on_notice_finished()``), then the hold audio looped: 20 ms at a time."""

    def __init__(
        self,
        *,
        notice: tuple[_Packet, ...] | None,
        hold: tuple[_Packet, ...] | None,
        on_notice_finished: Callable[[], None] | None = None,
    ) -> None:
        self._notice = notice
        self._hold = hold
        self._on_notice_finished = on_notice_finished
        self._is_notice_done = notice is None
        self._position = 0

    def next_packet(self) -> _Packet:
        if not self._is_notice_done:
            if self._position < len(self._notice):
                self._position += 1
                return self._notice[self._position - 1]
            self._is_notice_done = True
            self._position = 0
            if self._on_notice_finished is not None:
                self._on_notice_finished()
        if self._hold is None:
            return _silence()
        packet = self._hold[self._position]
        self._position = (self._position + 1) % len(self._hold)
        return packet


class _Channel:
    """One side of the recording: its 20 ms packets not yet written, and how its media clock maps to the
    timeline."""

    def __init__(self, silence: bytes) -> None:
        self.silence = silence  # 20 ms of silence, framed as this side's packets are
        self.packets: collections.deque[bytes] = collections.deque()
        self.end = 0  # timeline slot (of FRAME_SAMPLES) just after the last packet kept
        self.offset: int | None = None  # timeline position minus media position, in samples
        self.window_least_lateness: int | None = None
        self.window_ends = 0
        self.reframed: _Reframed | None = None  # for packets that are not 20 ms long

    def pad_to(self, slot: int) -> None:
        if slot > self.end:
            self.packets.extend(itertools.repeat(self.silence, slot - self.end))
            self.end = slot

    def take(self, count: int) -> list[bytes]:
        return [self.packets.popleft() for _ in range(count)]


class _Reframed:
    """A side's packets that are not 20 ms long (a peer's ``minptime=10``, say), decoded and encoded again
    as 20 ms packets, so that both sides' packets pair up: the one case the recording decodes."""

    def __init__(self) -> None:
        self._decoder = OpusDecoder()
        self._encoder = OpusEncoder()
        self._samples = np.zeros(0, dtype=np.int16)
        self._position = 0  # the timeline position of self._samples[0]
        self._slots: collections.deque[int] = collections.deque()  # of the frames given to the encoder

    def add(self, payload: bytes, position: int) -> list[tuple[int, bytes]]:
        """The 20 ms packets ready now, with their slots, for ``payload`` that starts at ``position``."""
        samples = self._decoder.decode(payload)
        expected = self._position + len(self._samples)
        if not len(self._samples) or position < expected - FRAME_SAMPLES:
            self._samples, self._position = samples, position  # the first, or a jump back: start again
        elif position > expected + len(samples) // 2:  # packets lost in between: silence in their place
            self._samples = np.concatenate((self._samples, np.zeros(position - expected, np.int16), samples))
        else:
            self._samples = np.concatenate((self._samples, samples))
        ready = []
        while len(self._samples) >= FRAME_SAMPLES:
            self._slots.append(round(self._position / FRAME_SAMPLES))
            encoded = self._encoder.encode(self._samples[:FRAME_SAMPLES])
            ready += ((self._slots.popleft(), packet) for packet in encoded)
            self._samples, self._position = self._samples[FRAME_SAMPLES:], self._position + FRAME_SAMPLES
        return ready


class _OpusRecording:
    """Both sides' Opus packets on one wall-clock timeline of 20 ms slots, written as they come into an
    Ogg Opus file of two mono streams: the customer is channel 0 (left), the agent channel 1 (right).

    Nothing is decoded: a packet goes into the slot its RTP timestamp puts it in, relative to the
    earliest-arriving packet of its side, so that jitter and bursts after a stall keep their timing;
    a lost packet, a side that sends nothing (the agent before joining) and a side on hold or muted
    leave 20 ms of silence (one tiny packet). Clock drift and long stalls are caught up by moving the
    anchor, so both sides stay within a few tens of milliseconds of the wall clock. The worker that
    transcribes decodes it; browsers play it as stereo.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._file = self.path.open("wb")
            self._ogg = OggOpusWriter(self._file, channels=2)
        except OSError as error:
            raise BridgeError(f"cannot write the recording {path}: {error}") from error
        silence = _silence().payload
        # The customer's stream comes first in each multistream packet: self-delimited.
        self._channels = (_Channel(opus_self_delimited(silence)), _Channel(silence))
        self._started_at: float | None = None
        self._written = 0  # slots
        self._result: RecordingResult | None = None

    def start(self, *, at: float) -> None:
        """Start the timeline: position 0 is ``at`` (a ``time.monotonic()`` reading)."""
        if self._started_at is None:
            self._started_at = at

    def add_packet(
        self, side: int, packet: _Packet, *, is_heard: bool, media_time_s: float, at: float
    ) -> bool:
        """Place an Opus packet that arrived ``at`` and starts at ``media_time_s``; silence in its place
        when not ``is_heard``. False when a heard packet's frames do not add up (nothing is added: the
        timeline leaves a gap, and the packet should not be relayed either)."""
        payload = packet.payload
        if is_heard:
            try:
                delimited = opus_self_delimited(payload)  # checks the packet's framing, whichever side
            except OpusPacketError as error:
                logger.warning("recording %s: %s", self.path.name, error)
                return False
            if side == CUSTOMER:
                payload = delimited
        if self._started_at is None or self._result is not None:
            return True
        channel = self._channels[side]
        arrival = self._position(at) - packet.samples  # where it starts had it no delay at all
        position = self._anchored_position(channel, round(media_time_s * SAMPLE_RATE), arrival)
        if not is_heard:  # on hold or muted: silence in its place, up to the packet's end
            channel.pad_to(round((position + packet.samples) / FRAME_SAMPLES))
            placed = []
        elif packet.samples != FRAME_SAMPLES:
            channel.reframed = channel.reframed or _Reframed()
            try:
                placed = [
                    (at_slot, opus_self_delimited(reframed) if side == CUSTOMER else reframed)
                    for at_slot, reframed in channel.reframed.add(packet.payload, position)
                ]
            except OpusPacketError as error:
                logger.warning("recording %s: %s", self.path.name, error)
                return False
        else:
            placed = [(round(position / FRAME_SAMPLES), payload)]
        for at_slot, kept in placed:
            if at_slot > channel.end:  # a packet lost or late in between: silence in its place
                channel.pad_to(at_slot)
            elif at_slot < channel.end - OVERLAP_TOLERANCE_S * SAMPLE_RATE / FRAME_SAMPLES:
                continue  # overlaps what is kept already
            channel.packets.append(kept)
            channel.end += 1
        self._write(now=self._position(at), is_final=False)
        return True

    def finish(self, *, at: float) -> RecordingResult:
        """Fill both sides with silence up to ``at`` (or the longer one), write all, close the file."""
        if self._result is not None:
            return self._result
        if self._started_at is not None:
            self._write(now=self._position(at), is_final=True)
        else:
            self._ogg.write((), samples_each=FRAME_SAMPLES, is_last=True)
        self._file.close()
        self._result = RecordingResult(
            path=self.path,
            duration_s=self._written * FRAME_S,
            is_conversation=self._started_at is not None,
        )
        return self._result

    def _position(self, at: float) -> int:
        return round((at - self._started_at) * SAMPLE_RATE)

    def _anchored_position(self, channel: _Channel, media: int, arrival: int) -> int:
        if channel.offset is None:
            channel.offset = arrival - media
        lateness = arrival - (media + channel.offset)
        if lateness < 0 or lateness > MAX_LATENESS_S * SAMPLE_RATE:
            # Earlier than any packet so far (less delay: a better anchor), or too late to be a stall.
            channel.offset = arrival - media
            lateness = 0
        position = media + channel.offset
        if channel.window_least_lateness is None or lateness < channel.window_least_lateness:
            channel.window_least_lateness = lateness
        if arrival >= channel.window_ends:
            if channel.window_least_lateness > LATENESS_TOLERANCE_S * SAMPLE_RATE:
                channel.offset += channel.window_least_lateness
            channel.window_least_lateness = None
            channel.window_ends = arrival + round(LATENESS_WINDOW_S * SAMPLE_RATE)
        return position

    def _write(self, *, now: int, is_final: bool) -> None:
        if is_final:
            end = max(round(now / FRAME_SAMPLES), *(channel.end for channel in self._channels))
        else:
            end = (now - round(IDLE_HOLDBACK_S * SAMPLE_RATE)) // FRAME_SAMPLES
        for channel in self._channels:
            channel.pad_to(end)
        count = min(channel.end for channel in self._channels) - self._written
        if not is_final and count < FLUSH_S / FRAME_S:
            return
        customer, agent = (channel.take(max(count, 0)) for channel in self._channels)
        self._ogg.write(
            [b"".join(pair) for pair in zip(customer, agent, strict=True)],
            samples_each=FRAME_SAMPLES,
            is_last=is_final,
        )
        self._written += max(count, 0)


def _load_prompt(path: Path) -> tuple[_Packet, ...]:
    """A WAV (any rate, any channels) as 20 ms Opus packets, mono."""
    try:
        modified_ns = Path(path).stat().st_mtime_ns
    except OSError as error:
        raise BridgeError(f"cannot read {path}: {error}") from error
    return _encoded_prompt(str(path), modified_ns)


@functools.lru_cache(maxsize=32)
def _encoded_prompt(path: str, modified_ns: int) -> tuple[_Packet, ...]:
    # Every call plays the same few files: they are encoded once per process (and per change).
    try:
        mono = decode_mono_s16(path, rate=SAMPLE_RATE)
    except AudioFileError as error:
        raise BridgeError(str(error)) from error
    return tuple(_Packet(payload, FRAME_SAMPLES) for payload in opus_encode_mono(mono))


@functools.cache
def _silence() -> _Packet:
    """20 ms of silence as one Opus packet (a few bytes)."""
    return _Packet(opus_encode_mono(np.zeros(FRAME_SAMPLES, dtype=np.int16))[0], FRAME_SAMPLES)
