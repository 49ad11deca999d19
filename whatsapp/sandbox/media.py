"""The media leg of a simulated WhatsApp customer: a real aiortc peer that speaks a WAV file and records.

WhatsApp Business Calling exchanges complete SDP (no trickle ICE) for one Opus audio stream: in a call
the customer places, Meta sends the business an SDP offer and takes its answer; in a call the business
places, the business sends the offer and gets the customer's answer back. ``CustomerMedia`` plays the
customer's side of both, on loopback in tests.

A customer can hold its side of a conversation (``script``): it says nothing while it hears the
business's prompts or hold audio, and says its next phrase each time the other side has finished a turn.
Meta gives a customer no signal that an agent is on the line, only audio, so the customer reads the
audio as a person does: a recorded notice runs on with short pauses, hold audio never pauses at all, and
a person who has said something waits for an answer. A turn is over when sound is followed by
``TURN_END_S`` of quiet; once it has spoken, the customer goes on after ``PATIENCE_S`` of quiet.

DTMF is not offered: Meta's offers carry ``a=rtpmap:126 telephone-event/8000``, but aiortc has no
telephone-event codec. The line could only be pasted into the SDP text, which would promise RFC 4733
events this leg can neither send nor decode (aiortc drops packets of an unknown payload type).
"""

import asyncio
import collections
import fractions
import functools
import time
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamError

from core.audio import AudioFileError, decode_mono_s16
from core.webrtc import (
    apply_host_addresses,
    opus_codecs,
    rtc_configuration,
    sdp_declined_removed,
    sdp_problem,
)

# Every frame the customer sends has this one format: aiortc's Opus encoder locks its resampler to the
# first frame it sees, and this is also what its Opus decoder produces.
SAMPLE_RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = 960  # 20 ms, one Opus packet
RECORDING_SAMPLE_RATE = 48_000  # what is heard is kept at the wideband rate, downmixed to mono

# Turn-taking (``script``). The recorded prompts (static/audio) pause for at most 0.55 s between
# sentences; the hold audio never falls below 0.016 RMS in any 20 ms; espeak-ng speech between
# words falls to digital silence.
QUIET_RMS = 0.008  # a 20 ms frame heard below this level is quiet
TURN_END_S = 0.8  # quiet this long after sound: the other side's turn is over
LEAST_TURN_S = 0.3  # and it had at least this much sound (a click is no turn)
PATIENCE_S = 4.0  # once the customer has spoken, quiet this long and it goes on with its next phrase


class MediaError(Exception):
    """The customer's media leg cannot go on: bad SDP, a call in the wrong state, an unreadable WAV."""


class CustomerMedia:
    """One customer's WebRTC leg in one call: sends speech (or silence), records what it hears.

    ``play`` is a WAV file (any rate or channels) said once at the start of the call, then silence;
    with ``loop=True`` it repeats for as long as the call lasts. ``play=None`` sends silence only.
    ``record_to`` receives everything the customer hears as a 48 kHz mono 16-bit WAV, finished by
    ``close()``; with ``record_to=None`` the audio is still received and decoded, then dropped.
    ``script`` is the customer's side of a conversation: WAV files said one at a turn, once ``play``
    has been said (see the module's docstring); ``phrases_said`` counts those said so far.

    A leg carries one call: either ``create_offer()`` then ``accept_answer()`` (the customer calls),
    or ``answer()`` (the business calls). Any failure raises ``MediaError``; the leg should then be
    closed. Uses the ICE servers and host addresses from the ``MEDIA_*`` settings.
    """

    def __init__(
        self, *, play: Path | None, record_to: Path | None, loop: bool = False, script: Sequence[Path] = ()
    ) -> None:
        self._speech = _SpeechTrack(samples=_load_wav(play) if play is not None else None, loop=loop)
        self._conversation = _Conversation(phrases=[_load_wav(path) for path in script], speech=self._speech)
        self._record_to = record_to
        self._peer_connection: RTCPeerConnection | None = None
        self._connection_settled = asyncio.Event()
        self._recording: _Recording | None = None
        self._is_closed = False

    @property
    def connection_state(self) -> str:
        """aiortc's connection state: "new", "connecting", "connected", "failed" or "closed"."""
        if self._peer_connection is None:
            return "closed" if self._is_closed else "new"
        return self._peer_connection.connectionState

    @property
    def is_connected(self) -> bool:
        return self.connection_state == "connected"

    @property
    def is_closed(self) -> bool:
        return self._is_closed

    @property
    def phrases_said(self) -> int:
        """How many phrases of the script the customer has begun to say."""
        return self._conversation.phrases_said

    async def create_offer(self, *, with_video: bool = False) -> str:
        """Start a customer-placed call: the SDP offer (Opus only, every ICE candidate included).

        ``with_video``: the offer also carries a camera's video section, bundled on the audio's
        transport, as a video call from a phone would; the business answers it for audio only.
        """
        peer_connection = self._start_peer_connection()
        transceiver = peer_connection.addTransceiver(self._speech, direction="sendrecv")
        transceiver.setCodecPreferences(opus_codecs())
        # aiortc gathers every candidate inside setLocalDescription, so the offer is complete.
        await peer_connection.setLocalDescription(await peer_connection.createOffer())
        offer = peer_connection.localDescription.sdp
        return _with_video_section(offer) if with_video else offer

    async def accept_answer(self, sdp: str) -> None:
        """Apply the business's SDP answer to the offer from ``create_offer()``; media starts flowing."""
        peer_connection = self._peer_connection
        if peer_connection is None or peer_connection.signalingState != "have-local-offer":
            raise MediaError(
                "accept_answer() needs an offer from create_offer() still waiting for its answer"
            )
        _check_remote_sdp(sdp)
        # A declined video section (port 0) was never aiortc's: it applies the audio it offered.
        await _set_remote_description(peer_connection, text=sdp_declined_removed(sdp), sdp_type="answer")

    async def answer(self, offer_sdp: str) -> str:
        """Take part in a business-initiated call: apply the business's offer, return the SDP answer."""
        _check_remote_sdp(offer_sdp)
        peer_connection = self._start_peer_connection()
        # The transceiver exists before the offer is applied so that aiortc negotiates with the
        # Opus-only preference; it takes the offer's audio section because its mid is still unset.
        transceiver = peer_connection.addTransceiver(self._speech, direction="sendrecv")
        transceiver.setCodecPreferences(opus_codecs())
        await _set_remote_description(peer_connection, text=offer_sdp, sdp_type="offer")
        await peer_connection.setLocalDescription(await peer_connection.createAnswer())
        return peer_connection.localDescription.sdp

    async def wait_connected(self, *, timeout_s: float) -> None:
        """Return once the peer connection is "connected" (ICE and DTLS done).

        Raises ``TimeoutError`` if that takes longer than ``timeout_s``, and ``MediaError`` if the
        connection fails or is closed first, or no call was started.
        """
        if self._is_closed:
            raise MediaError("this media leg is closed")
        if self._peer_connection is None:
            raise MediaError("no call on this leg: call create_offer() or answer() first")
        async with asyncio.timeout(timeout_s):
            await self._connection_settled.wait()
        if not self.is_connected:
            raise MediaError(f"the connection is {self.connection_state}, not connected")

    async def close(self) -> None:
        """Hang up: stop sending, close the peer connection, finish the recording. Safe to call twice."""
        if self._is_closed:
            return
        self._is_closed = True
        self._connection_settled.set()  # wakes a wait_connected() in progress: it raises MediaError
        self._speech.stop()
        if self._peer_connection is not None:
            await self._peer_connection.close()
            self._peer_connection = None
        if self._recording is not None:
            await self._recording.finish()
        elif self._record_to is not None:
            _open_wav(self._record_to).close()  # nothing was heard: still leave a valid, empty file

    def _start_peer_connection(self) -> RTCPeerConnection:
        if self._is_closed:
            raise MediaError("this media leg is closed")
        if self._peer_connection is not None:
            raise MediaError("this media leg already carries a call")
        apply_host_addresses()
        peer_connection = RTCPeerConnection(configuration=rtc_configuration())

        @peer_connection.on("connectionstatechange")
        def on_connection_state_change() -> None:
            if peer_connection.connectionState in ("connected", "failed", "closed"):
                self._connection_settled.set()

        @peer_connection.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            # A remote track queues every decoded frame until someone reads it: read from the start.
            if track.kind == "audio" and self._recording is None:
                self._recording = _Recording(
                    track=track, path=self._record_to, listener=self._conversation.hear
                )

        self._peer_connection = peer_connection
        return peer_connection


class _SpeechTrack(MediaStreamTrack):
    """20 ms frames of 48 kHz stereo s16, paced in real time: the samples, then (or when None) silence."""

    kind = "audio"

    def __init__(self, *, samples: np.ndarray | None, loop: bool) -> None:
        super().__init__()
        self._samples = samples  # interleaved stereo int16, a multiple of FRAME_SAMPLES frames long
        self._loop = loop
        self._phrase: np.ndarray | None = None  # said now, in place of silence
        self._phrase_position = 0
        self._silence = np.zeros((1, FRAME_SAMPLES * CHANNELS), dtype=np.int16)
        self._started_at: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started_at is None:
            self._started_at = time.monotonic()
        else:
            self._pts += FRAME_SAMPLES
            await asyncio.sleep(max(0.0, self._started_at + self._pts / SAMPLE_RATE - time.monotonic()))
        frame = av.AudioFrame.from_ndarray(self._next_chunk(), format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame

    @property
    def is_speaking(self) -> bool:
        """Saying a phrase, or the samples given at the start (for ever, when looped)."""
        if self._phrase is not None:
            return True
        if self._samples is None:
            return False
        return self._loop or self._pts * CHANNELS < self._samples.size

    def say(self, samples: np.ndarray) -> None:
        """Say ``samples`` (as the constructor takes them) from the next frame on, then silence."""
        self._phrase, self._phrase_position = samples, 0

    def _next_chunk(self) -> np.ndarray:
        if self._phrase is not None:
            start = self._phrase_position
            self._phrase_position += FRAME_SAMPLES * CHANNELS
            if self._phrase_position >= self._phrase.size:
                chunk, self._phrase = self._phrase[start:], None
            else:
                chunk = self._phrase[start : self._phrase_position]
            return chunk.reshape(1, -1)
        if self._samples is None:
            return self._silence
        start = self._pts * CHANNELS
        if self._loop:
            start %= self._samples.size
        if start >= self._samples.size:
            return self._silence
        return self._samples[start : start + FRAME_SAMPLES * CHANNELS].reshape(1, -1)


class _Conversation:
    """The customer's side of a conversation: the next phrase each time the other side's turn is over."""

    def __init__(self, *, phrases: list[np.ndarray], speech: _SpeechTrack) -> None:
        self._phrases = collections.deque(phrases)
        self._speech = speech
        self.phrases_said = 0
        self._sound_s = 0.0  # heard since the customer last began a phrase
        self._quiet_s = 0.0  # heard since the last sound
        self._waited_s = 0.0  # since the customer last finished a phrase

    def hear(self, frame: av.AudioFrame) -> None:
        if not self._phrases:
            return
        duration_s = frame.samples / frame.sample_rate
        samples = frame.to_ndarray().astype(np.float64) / 32768
        if np.sqrt(np.mean(np.square(samples))) < QUIET_RMS:
            self._quiet_s += duration_s
        else:
            self._sound_s += duration_s
            self._quiet_s = 0.0
        if self._speech.is_speaking:
            return
        self._waited_s += duration_s
        is_turn_over = self._sound_s >= LEAST_TURN_S and self._quiet_s >= TURN_END_S
        is_out_of_patience = self.phrases_said > 0 and self._waited_s >= PATIENCE_S
        if is_turn_over or is_out_of_patience:
            self._speech.say(self._phrases.popleft())
            self.phrases_said += 1
            self._sound_s = self._waited_s = 0.0


@functools.lru_cache(maxsize=64)
def _load_wav(path: Path) -> np.ndarray:
    """The whole file as interleaved 48 kHz stereo int16, padded with silence to whole frames:
    decoded once per file, as a crowd of customers plays the same few scripts (the array is shared;
    nothing writes to it)."""
    try:
        mono = decode_mono_s16(path, rate=SAMPLE_RATE)
    except AudioFileError as error:
        raise MediaError(str(error)) from error
    samples = np.repeat(mono, CHANNELS)
    padding = -samples.size % (FRAME_SAMPLES * CHANNELS)
    return np.concatenate([samples, np.zeros(padding, dtype=np.int16)])


class _Recording:
    """Reads a remote track from now on, writing it to a WAV file (or nowhere) until ``finish()``;
    ``listener`` hears each frame first."""

    def __init__(
        self,
        *,
        track: MediaStreamTrack,
        path: Path | None,
        listener: Callable[[av.AudioFrame], None] | None = None,
    ) -> None:
        self._track = track
        self._listener = listener
        self._wav = _open_wav(path) if path is not None else None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=RECORDING_SAMPLE_RATE)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            if self._listener is not None:
                self._listener(frame)
            if self._wav is not None:
                self._write(self._resampler.resample(frame))

    async def finish(self) -> None:
        """Stop reading and close the file with a correct header."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if self._wav is not None:
            self._write(self._resampler.resample(None))
            self._wav.close()

    def _write(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            self._wav.writeframes(frame.to_ndarray().tobytes())


def _open_wav(path: Path) -> wave.Wave_write:
    wav = wave.open(str(path), "wb")  # noqa: SIM115 - the caller owns the writer and closes it
    wav.setnchannels(1)
    wav.setsampwidth(2)
    wav.setframerate(RECORDING_SAMPLE_RATE)
    return wav


VIDEO_MID = "video"


def _with_video_section(offer: str) -> str:
    """An audio offer of aiortc's with a video section added after it, on the same transport (BUNDLE):
    VP8 and H.264, send and receive. aiortc never sees it (the sandbox customer has no camera): the
    answer must decline it (``accept_answer`` drops it again)."""
    lines = [line for line in offer.replace("\r\n", "\n").split("\n") if line]
    transport = [
        line
        for line in lines
        if line.startswith(("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:"))
    ]
    lines = [f"{line} {VIDEO_MID}" if line.startswith("a=group:BUNDLE") else line for line in lines]
    video = [
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        *transport,
        f"a=mid:{VIDEO_MID}",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 H264/90000",
        "a=fmtp:97 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    ]
    return "\r\n".join([*lines, *video]) + "\r\n"


def _check_remote_sdp(text: str) -> None:
    if (problem := sdp_problem(text)) is not None:
        raise MediaError(f"the SDP {problem}")


async def _set_remote_description(peer_connection: RTCPeerConnection, *, text: str, sdp_type: str) -> None:
    try:
        await peer_connection.setRemoteDescription(RTCSessionDescription(sdp=text, type=sdp_type))
    except (ValueError, OperationError, InvalidAccessError, InvalidStateError) as error:
        raise MediaError(f"the SDP {sdp_type} cannot be applied: {error}") from error
