"""The call bridge on loopback. The sandbox's simulated customer (an aiortc leg) plays both the customer and
the agent's browser, which does what a browser does: send an offer, then apply the answer."""

import asyncio
import fractions
import math
import struct
import time
import wave
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole

from calls.bridge import SAMPLE_RATE, BridgeError, CallBridge, _OpusRecording, _Packet
from core.audio import (
    decode_channels,
    ogg_packets,
    opus_encode_mono,
    opus_multistream_split,
    opus_packet_samples,
)
from core.webrtc import apply_host_addresses, receive_encoded, rtc_configuration
from whatsapp.sandbox.audio_metrics import wav_duration_s, wav_rms
from whatsapp.sandbox.customers import conversation_script
from whatsapp.sandbox.media import CustomerMedia

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_SPEECH = ROOT / "whatsapp" / "sandbox" / "audio" / "customer_order.wav"
AGENT_SPEECH = ROOT / "whatsapp" / "sandbox" / "audio" / "customer_goodbye.wav"
NOTICE = ROOT / "static" / "audio" / "notice" / "en.wav"
OUTBOUND_NOTICE = ROOT / "static" / "audio" / "outbound_notice" / "en.wav"
AGENT_HELLO = ROOT / "whatsapp" / "sandbox" / "audio" / "agent" / "hello.wav"  # 4.5 s of speech, a 2 s pause
HOLD = ROOT / "static" / "audio" / "hold.wav"

# espeak-ng speech measures 0.07-0.10 of full scale through Opus; digital silence measures 0.0.
SPEECH_RMS = 0.02
SILENCE_RMS = 0.001
BLOCK_S = 0.1  # what a recording holds is judged a tenth of a second at a time

# Tones tell apart who is heard: the notice, the hold audio, the customer and the agent.
NOTICE_HZ, HOLD_HZ, CUSTOMER_HZ, AGENT_HZ = 440, 660, 770, 1000
TONES_QUEUED = {"notice": NOTICE_HZ, "hold": HOLD_HZ}
TONES_HEARD_BY_CUSTOMER = {"hold": HOLD_HZ, "agent": AGENT_HZ}
TONES_OF_BOTH_SIDES = {"customer": CUSTOMER_HZ, "agent": AGENT_HZ}


@pytest.fixture(autouse=True)
def loopback_only(settings):
    """ICE on 127.0.0.1 only: nothing leaves the machine, and no STUN server is asked."""
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


def write_tone(path: Path, *, hz: float, seconds: float, amplitude: float = 0.3) -> Path:
    """A sine as 16 kHz mono 16-bit WAV, a whole number of cycles long so that it loops without a click."""
    rate = 16_000
    times = np.arange(round(round(seconds * hz) / hz * rate)) / rate
    samples = np.round(amplitude * 32767 * np.sin(2 * np.pi * hz * times)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


def wav_channels(path: Path) -> tuple[int, np.ndarray]:
    """The frame rate and the samples of a 16-bit WAV as floats in [-1, 1), one column per channel."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        rate, channels = wav.getframerate(), wav.getnchannels()
        raw = wav.readframes(wav.getnframes())
    return rate, (np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768).reshape(-1, channels)


def recording_channels(path: Path | BinaryIO) -> tuple[int, np.ndarray]:
    """A call's recording (Ogg Opus, as the bridge writes it) decoded: its rate and samples as floats in
    [-1, 1), the customer's column then the agent's."""
    rate, samples = decode_channels(path)
    return rate, samples.astype(np.float64) / 32768


def recording_levels(source: Path | BinaryIO) -> tuple[float, float]:
    """The level (root mean square of full scale, 0.0 is silence) of each side of a call's recording."""
    _, samples = recording_channels(source)
    return rms(samples[:, 0]), rms(samples[:, 1])


def recorded_packets(path: Path) -> list[list[bytes]]:
    """A call's recording as its packets: for every 20 ms, the customer's packet and the agent's, after
    checking the headers say so (RFC 7845: OpusHead, channel mapping family 1, two uncoupled streams)."""
    with path.open("rb") as file:
        head, tags, *audio = ogg_packets(file)
    channels, _, rate, _, family, streams, coupled = struct.unpack("<xxxxxxxxxBHIhBBB", head[:21])
    assert (channels, rate, family, streams, coupled, head[21:]) == (2, SAMPLE_RATE, 1, 2, 0, b"\x00\x01")
    assert tags.startswith(b"OpusTags")
    return [opus_multistream_split(packet, streams=2) for packet in audio]


def heard_by(path: Path) -> tuple[int, np.ndarray]:
    """A simulated customer's recording of what it heard (mono): its frame rate and samples."""
    rate, samples = wav_channels(path)
    return rate, samples[:, 0]


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


def heard(samples: np.ndarray, *, rate: int, tones: dict[str, float]) -> list[str]:
    """What the recording holds, block by block, as runs: "silence", a tone's name, or "other".

    Runs shorter than three blocks (the moment of a switch) are left out.
    """
    size = round(BLOCK_S * rate)
    frequencies = np.fft.rfftfreq(size, 1 / rate)
    labels = []
    for start in range(0, len(samples) - size + 1, size):
        block = samples[start : start + size]
        if rms(block) < 5 * SILENCE_RMS:
            labels.append("silence")
            continue
        power = np.square(np.abs(np.fft.rfft(block * np.hanning(size))))
        shares = {
            name: power[np.abs(frequencies - hz) < 30].sum() / power.sum() for name, hz in tones.items()
        }
        loudest = max(shares, key=shares.get)
        labels.append(loudest if shares[loudest] > 0.8 else "other")
    runs: list[str] = []
    for index, label in enumerate(labels):
        if labels[index : index + 3] == [label] * 3 and (not runs or runs[-1] != label):
            runs.append(label)
    return runs


async def answered_customer(bridge: CallBridge, customer: CustomerMedia) -> str:
    answer = await bridge.answer_customer(await customer.create_offer())
    await customer.accept_answer(answer)
    await customer.wait_connected(timeout_s=5)
    return answer


async def connected_agent(bridge: CallBridge, agent: CustomerMedia) -> None:
    await agent.accept_answer(await bridge.connect_agent(await agent.create_offer()))
    await agent.wait_connected(timeout_s=5)


async def test_bridge_plays_notice_and_hold_then_bridges_and_records_the_conversation(tmp_path):
    bridge = CallBridge(
        call_id="flow",
        recording_path=tmp_path / "call.ogg",
        notice=write_tone(tmp_path / "notice.wav", hz=NOTICE_HZ, seconds=1.0),
        hold=write_tone(tmp_path / "hold.wav", hz=HOLD_HZ, seconds=0.5),
    )
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=tmp_path / "customer_heard.wav", loop=True)
    agent = CustomerMedia(play=AGENT_SPEECH, record_to=tmp_path / "agent_heard.wav")

    started_at = time.monotonic()
    answer = await answered_customer(bridge, customer)
    await bridge.start_notice_then_hold()
    await asyncio.wait_for(bridge.notice_finished.wait(), timeout=3)
    await asyncio.sleep(0.8)
    agent_joined_s = time.monotonic() - started_at
    await connected_agent(bridge, agent)
    connected_s = time.monotonic() - started_at
    await asyncio.sleep(3)
    await customer.close()
    await agent.close()
    result = await bridge.close()
    closed_s = time.monotonic() - started_at

    assert "a=end-of-candidates" in answer
    assert [line for line in answer.splitlines() if line.startswith("a=rtpmap:")] == [
        "a=rtpmap:96 opus/48000/2"
    ]
    rate, customer_heard = heard_by(tmp_path / "customer_heard.wav")
    assert heard(customer_heard[: round(agent_joined_s * rate)], rate=rate, tones=TONES_QUEUED) == [
        "notice",
        "hold",
    ]
    assert rms(customer_heard[round((agent_joined_s + 0.5) * rate) :]) > SPEECH_RMS
    assert wav_rms(tmp_path / "agent_heard.wav") > SPEECH_RMS
    rate, recording = recording_channels(tmp_path / "call.ogg")
    assert (rate, recording.shape[1]) == (SAMPLE_RATE, 2)
    # Only the conversation is recorded: from the agent's leg on, nothing of the wait before it.
    assert closed_s - connected_s - 0.1 < result.duration_s <= closed_s - agent_joined_s + 0.02  # a packet
    assert rms(recording[:, 0]) > SPEECH_RMS
    assert rms(recording[round(0.3 * rate) :, 1]) > SPEECH_RMS
    assert result.duration_s == len(recording) / rate
    assert result.is_conversation is True
    assert result.path == tmp_path / "call.ogg"


async def test_a_sandbox_customer_is_quiet_while_queued_and_talks_once_an_agent_has_spoken(tmp_path):
    bridge = CallBridge(
        call_id="talk", recording_path=tmp_path / "call.ogg", notice=OUTBOUND_NOTICE, hold=HOLD
    )
    customer = CustomerMedia(play=None, record_to=None, script=conversation_script("en"))
    agent = CustomerMedia(play=AGENT_HELLO, record_to=tmp_path / "agent_heard.wav")

    started_at = time.monotonic()
    await answered_customer(bridge, customer)
    await bridge.start_notice_then_hold()
    await asyncio.sleep(3.8 + 2.0)  # the notice's words and pauses, then hold audio
    said_while_queued = customer.phrases_said
    agent_joined_s = time.monotonic() - started_at
    await connected_agent(bridge, agent)
    await asyncio.sleep(8.0)  # the agent's hello, a pause: the customer's turn
    said_once_answered = customer.phrases_said
    await customer.close()
    await agent.close()
    await bridge.close()

    assert (said_while_queued, said_once_answered) == (0, 1)
    assert wav_rms(tmp_path / "agent_heard.wav") > SPEECH_RMS  # the agent heard the customer
    rate, recording = recording_channels(tmp_path / "call.ogg")
    assert len(recording) / rate < time.monotonic() - started_at - agent_joined_s  # the conversation only
    assert rms(recording[:, 0]) > SPEECH_RMS and rms(recording[:, 1]) > SPEECH_RMS


def tone_bridge(
    tmp_path: Path, call_id: str, *, notice_s: float | None = None
) -> tuple[CallBridge, Path, Path]:
    """A bridge whose hold audio (and notice, given `notice_s`) are tones; and the tones the
    customer and the agent play, so that each side's sound is told apart."""
    notice = write_tone(tmp_path / "notice.wav", hz=NOTICE_HZ, seconds=notice_s) if notice_s else None
    hold = write_tone(tmp_path / "hold.wav", hz=HOLD_HZ, seconds=0.5)
    bridge = CallBridge(call_id=call_id, recording_path=tmp_path / "call.ogg", notice=notice, hold=hold)
    customer_tone = write_tone(tmp_path / "customer.wav", hz=CUSTOMER_HZ, seconds=0.5)
    agent_tone = write_tone(tmp_path / "agent.wav", hz=AGENT_HZ, seconds=0.5)
    return bridge, customer_tone, agent_tone


STEP_S = 0.8


async def test_bridge_hold_and_mute_change_what_each_side_hears_and_what_is_recorded(tmp_path):
    bridge, customer_tone, agent_tone = tone_bridge(tmp_path, "hold")
    customer = CustomerMedia(play=customer_tone, record_to=tmp_path / "customer_heard.wav", loop=True)
    agent = CustomerMedia(play=agent_tone, record_to=tmp_path / "agent_heard.wav", loop=True)

    await answered_customer(bridge, customer)
    await bridge.start_notice_then_hold()
    await asyncio.sleep(0.6)
    await connected_agent(bridge, agent)
    await asyncio.sleep(STEP_S)
    await bridge.set_hold(is_on=True)
    await asyncio.sleep(STEP_S)
    await bridge.set_hold(is_on=False)
    await asyncio.sleep(STEP_S)
    await bridge.set_mute(is_on=True)
    await asyncio.sleep(STEP_S)
    await bridge.set_mute(is_on=False)
    await asyncio.sleep(STEP_S)
    await customer.close()
    await agent.close()
    await bridge.close()

    rate, customer_heard = heard_by(tmp_path / "customer_heard.wav")
    assert heard(customer_heard, rate=rate, tones=TONES_HEARD_BY_CUSTOMER) == [
        "hold",
        "agent",
        "hold",
        "agent",
        "silence",
        "agent",
    ]
    rate, agent_heard = heard_by(tmp_path / "agent_heard.wav")
    assert heard(agent_heard, rate=rate, tones={"customer": CUSTOMER_HZ}) == [
        "customer",
        "silence",
        "customer",
    ]
    rate, recording = recording_channels(tmp_path / "call.ogg")
    assert heard(recording[:, 0], rate=rate, tones=TONES_OF_BOTH_SIDES) == ["customer"]
    agent_runs = heard(recording[:, 1], rate=rate, tones=TONES_OF_BOTH_SIDES)
    # The recording starts with the agent's leg; its audio comes a moment later.
    assert agent_runs[agent_runs[0] == "silence" :] == ["agent", "silence", "agent", "silence", "agent"]


async def test_an_agent_who_accepts_during_the_notice_is_heard_only_once_it_has_played(tmp_path):
    bridge, customer_tone, agent_tone = tone_bridge(tmp_path, "early", notice_s=2.0)
    customer = CustomerMedia(play=customer_tone, record_to=tmp_path / "customer_heard.wav", loop=True)
    agent = CustomerMedia(play=agent_tone, record_to=tmp_path / "agent_heard.wav", loop=True)

    await answered_customer(bridge, customer)
    notice_started = time.monotonic()
    await bridge.start_notice_then_hold()
    await asyncio.sleep(0.3)
    joined = time.monotonic()
    await connected_agent(bridge, agent)
    assert bridge.is_notice_playing
    await asyncio.wait_for(bridge.notice_finished.wait(), timeout=4)
    assert not bridge.is_notice_playing
    await asyncio.sleep(1.5)
    await customer.close()
    await agent.close()
    await bridge.close()

    rate, customer_heard = heard_by(tmp_path / "customer_heard.wav")
    tones = {"notice": NOTICE_HZ, "hold": HOLD_HZ, "agent": AGENT_HZ}
    assert heard(customer_heard, rate=rate, tones=tones) == ["notice", "agent"]  # no hold, no cut
    rate, agent_heard = heard_by(tmp_path / "agent_heard.wav")
    assert heard(agent_heard, rate=rate, tones={"customer": CUSTOMER_HZ}) == ["customer"]
    rate, recording = recording_channels(tmp_path / "call.ogg")
    agent_runs = heard(recording[:, 1], rate=rate, tones=TONES_OF_BOTH_SIDES)
    assert agent_runs == ["silence", "agent"]  # the agent is recorded once the customer can hear them
    agent_starts_s = np.argmax(np.abs(recording[:, 1]) > 0.05) / rate
    notice_ends_s = notice_started + 2.0 - joined  # on the recording's timeline, which the agent started
    assert notice_ends_s - 0.2 < agent_starts_s < notice_ends_s + 0.8  # give or take the legs' start-up


async def test_say_goodbye_plays_the_closing_message_in_full_then_silence(tmp_path):
    bridge = CallBridge(
        call_id="bye",
        recording_path=tmp_path / "call.ogg",
        notice=None,
        hold=write_tone(tmp_path / "hold.wav", hz=HOLD_HZ, seconds=0.5),
    )
    closing = write_tone(tmp_path / "closing.wav", hz=NOTICE_HZ, seconds=1.0)
    customer = CustomerMedia(play=None, record_to=tmp_path / "customer_heard.wav")

    await answered_customer(bridge, customer)
    await bridge.start_notice_then_hold()
    await asyncio.sleep(0.6)
    started = time.monotonic()
    assert await bridge.say_goodbye(closing, timeout_s=3) is True
    took_s = time.monotonic() - started
    await asyncio.sleep(0.5)
    await customer.close()
    await bridge.close()

    assert 1.3 < took_s < 2.0  # the message, then a moment for its last words to be heard
    rate, customer_heard = heard_by(tmp_path / "customer_heard.wav")
    assert heard(customer_heard, rate=rate, tones={"hold": HOLD_HZ, "closing": NOTICE_HZ}) == [
        "hold",
        "closing",
        "silence",
    ]


async def test_say_goodbye_stops_waiting_when_the_customer_leaves(tmp_path):
    bridge = CallBridge(call_id="gone", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=None, record_to=None)
    await answered_customer(bridge, customer)
    closing = write_tone(tmp_path / "closing.wav", hz=NOTICE_HZ, seconds=5.0)

    goodbye = asyncio.ensure_future(bridge.say_goodbye(closing, timeout_s=10))
    await asyncio.sleep(0.3)
    await customer.close()
    assert await asyncio.wait_for(goodbye, timeout=8) is False
    await bridge.close()
    with pytest.raises(BridgeError, match="closed"):
        await bridge.say_goodbye(closing, timeout_s=1)


class Metronome(MediaStreamTrack):
    """20 ms frames on a grid of the process's clock, a beep on every half second: peers beep together."""

    kind = "audio"
    BEEP_EVERY = 25  # frames

    def __init__(self) -> None:
        super().__init__()
        self._slot: int | None = None
        self._beep = np.repeat(
            np.round(0.5 * 32767 * np.sin(np.arange(960) * 2 * np.pi * 1000 / SAMPLE_RATE)), 2
        )

    async def recv(self) -> av.AudioFrame:
        self._slot = math.ceil(time.monotonic() / 0.02) if self._slot is None else self._slot + 1
        await asyncio.sleep(max(0.0, self._slot * 0.02 - time.monotonic()))
        is_beep = self._slot % self.BEEP_EVERY == 0
        samples = self._beep if is_beep else np.zeros(1920)
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.int16).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._slot * 960
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


class MetronomePeer:
    """A plain aiortc peer that offers, sends a metronome and throws away what it hears."""

    def __init__(self) -> None:
        apply_host_addresses()
        self.peer_connection = RTCPeerConnection(rtc_configuration())
        self.blackhole = MediaBlackhole()
        self.peer_connection.on("track", self.blackhole.addTrack)
        self.peer_connection.addTrack(Metronome())

    async def offer(self) -> str:
        await self.peer_connection.setLocalDescription(await self.peer_connection.createOffer())
        return self.peer_connection.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self.peer_connection.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await self.blackhole.start()

    async def close(self) -> None:
        await self.blackhole.stop()
        await self.peer_connection.close()


def beep_starts_s(samples: np.ndarray, *, rate: int) -> np.ndarray:
    """Where each beep of a metronome starts, in seconds: the first loud sample after 0.2 s of quiet."""
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    if not loud.size:
        return loud
    starts = loud[np.concatenate([[True], np.diff(loud) > 0.2 * rate])]
    return starts / rate


async def test_bridge_recording_keeps_both_sides_on_one_timeline(tmp_path):
    bridge = CallBridge(call_id="aligned", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer, agent = MetronomePeer(), MetronomePeer()

    await customer.accept_answer(await bridge.answer_customer(await customer.offer()))
    await agent.accept_answer(await bridge.connect_agent(await agent.offer()))
    await asyncio.sleep(3.5)
    await customer.close()
    await agent.close()
    await bridge.close()

    rate, recording = recording_channels(tmp_path / "call.ogg")
    agent_beeps = beep_starts_s(recording[:, 1], rate=rate)
    # Compared from the agent's first beep: the agent's leg connects a moment after the customer's.
    customer_beeps = [
        beep for beep in beep_starts_s(recording[:, 0], rate=rate) if beep > agent_beeps[0] - 0.1
    ]
    offsets_s = [float(agent_beeps[np.abs(agent_beeps - beep).argmin()] - beep) for beep in customer_beeps]
    assert len(customer_beeps) >= 6
    assert len(agent_beeps) == len(customer_beeps)
    assert max(abs(offset) for offset in offsets_s) < 0.03
    assert max(offsets_s) - min(offsets_s) < 0.01


def test_recording_timeline_survives_jitter_stalls_late_joining_and_clock_drift(tmp_path):
    """Sixty simulated seconds: every packet must land within 60 ms of when it was said (plus least delay)."""
    recording = _OpusRecording(tmp_path / "call.ogg")
    random = np.random.default_rng(7)
    least_delay_s = 0.1
    said_at: dict[tuple[int, int], float] = {}
    arrivals: list[tuple[float, int, int, int]] = []  # (arrives at, side, frame number, media position)
    # The customer's clock runs 0.3 % fast, the agent's 0.3 % slow (far worse than real devices); the agent
    # joins after 5 s; each side stalls once for 400 ms and then delivers what it held back all at once;
    # the customer's RTP timestamps start again from 0 after 30 s (a restarted sender).
    for side, clock_rate, joins_s, stall_s in ((0, 1.003, 0.0, 20.0), (1, 0.997, 5.0, 40.0)):
        arrives_at = 0.0
        for number in range(1, round((60 - joins_s) / 0.02)):
            said = joins_s + number * 0.02 / clock_rate
            said_at[side, number] = said
            delay = least_delay_s + random.uniform(0, 0.03) + (0.4 if stall_s <= said < stall_s + 0.4 else 0)
            arrives_at = max(arrives_at, said + 0.02 + delay)  # in order, as a jitter buffer hands them over
            media_position = (number if side == 1 or number < 1500 else number - 1500) * 960
            arrivals.append((arrives_at, side, number, media_position))

    recording.start(at=1000.0)
    for arrives_at, side, number, media_position in sorted(arrivals):
        numbered = _Packet(bytes([31 << 3]) + b"N" + number.to_bytes(2, "big"), 960)  # a 20 ms CELT frame
        recording.add_packet(
            side, numbered, is_heard=True, media_time_s=media_position / SAMPLE_RATE, at=1000.0 + arrives_at
        )
    result = recording.finish(at=1000.0 + 60.5)

    slots = recorded_packets(tmp_path / "call.ogg")
    for side in (0, 1):
        placed = [(slot, packet) for slot, packet in enumerate(pair[side] for pair in slots)]
        errors_s = [
            slot * 0.02 - said_at[side, int.from_bytes(packet[2:], "big")] - least_delay_s
            for slot, packet in placed
            if packet[1:2] == b"N"
        ]
        assert len(errors_s) > 0.99 * sum(1 for key in said_at if key[0] == side)
        assert max(abs(error) for error in errors_s) < 0.06
    assert not any(agent[1:2] == b"N" for _, agent in slots[: round(5.0 / 0.02)])
    assert result.duration_s == len(slots) * 0.02 == 60.5


class PacketPeer:
    """An aiortc peer that sends the given Opus payloads in turn, 20 ms apart, and keeps every payload it
    receives, as it leaves the jitter buffer (nothing is decoded either way)."""

    def __init__(self, payloads: list[bytes]) -> None:
        apply_host_addresses()
        self.received: list[bytes] = []
        self.peer_connection = RTCPeerConnection(rtc_configuration())
        transceiver = self.peer_connection.addTransceiver(PacketTrack(payloads), direction="sendrecv")
        receive_encoded(
            transceiver.receiver, lambda payload, timestamp, arrived_at: self.received.append(payload)
        )

    async def offer(self) -> str:
        await self.peer_connection.setLocalDescription(await self.peer_connection.createOffer())
        return self.peer_connection.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self.peer_connection.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        await self.peer_connection.close()


class PacketTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, payloads: list[bytes]) -> None:
        super().__init__()
        self._payloads = payloads
        self._sent = 0
        self._started_at: float | None = None

    async def recv(self) -> av.Packet:
        if self._started_at is None:
            self._started_at = time.monotonic()
        await asyncio.sleep(max(0.0, self._started_at + self._sent * 0.02 - time.monotonic()))
        packet = av.Packet(self._payloads[self._sent % len(self._payloads)])
        packet.pts = self._sent * 960
        packet.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._sent += 1
        return packet


async def test_the_relay_forwards_each_sides_opus_packets_unchanged_and_drops_what_is_not_opus(tmp_path):
    seconds = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    customer_says = list(opus_encode_mono(np.round(0.3 * 32767 * np.sin(2 * np.pi * CUSTOMER_HZ * seconds))))
    agent_says = list(opus_encode_mono(np.round(0.3 * 32767 * np.sin(2 * np.pi * AGENT_HZ * seconds))))
    not_opus = [b"", bytes([31 << 3 | 3]), bytes([31 << 3 | 3, 63, 0])]  # no TOC, no count, 1.26 s
    silence = opus_encode_mono(np.zeros(960, np.int16))[0]
    for index, bad in enumerate(not_opus):
        customer_says[10 + 10 * index] = bad
    bridge = CallBridge(call_id="forward", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer, agent = PacketPeer(customer_says), PacketPeer(agent_says)

    await customer.accept_answer(await bridge.answer_customer(await customer.offer()))
    await agent.accept_answer(await bridge.connect_agent(await agent.offer()))
    await asyncio.sleep(2.5)
    await customer.close()
    await agent.close()
    result = await bridge.close()

    agent_heard = [payload for payload in agent.received if payload in customer_says]
    customer_heard = [payload for payload in customer.received if payload in agent_says]
    # Byte for byte what the other side sent (a relay that decoded and re-encoded would match none),
    # in the order it was sent, the bad packets left out.
    assert len(agent_heard) > 50 and len(customer_heard) > 50
    start = customer_says.index(agent_heard[0])
    assert agent_heard[:40] == [payload for payload in customer_says[start:] if payload not in not_opus][:40]
    start = agent_says.index(customer_heard[0])
    assert customer_heard[:40] == agent_says[start : start + 40]
    assert not set(not_opus) & set(agent.received)
    # What else a side heard is the relay's silence (before the other side's first packet), one packet.
    assert len(set(agent.received) - set(customer_says)) <= 1
    # The recording keeps the same packets, byte for byte: nothing decoded, nothing encoded again.
    recorded = recorded_packets(tmp_path / "call.ogg")
    customer_kept = [customer for customer, _ in recorded if customer in customer_says]
    agent_kept = [agent for _, agent in recorded if agent in agent_says]
    assert len(customer_kept) > 0.9 * len(agent_heard) and len(agent_kept) > 0.9 * len(customer_heard)
    assert all(customer in customer_says or customer == silence for customer, _ in recorded)
    assert all(agent in agent_says or agent == silence for _, agent in recorded)
    assert result.duration_s == len(recorded) * 0.02
    rate, recording = recording_channels(tmp_path / "call.ogg")
    tones = {"customer": CUSTOMER_HZ, "agent": AGENT_HZ}
    assert heard(recording[round(1.5 * rate) :, 0], rate=rate, tones=tones) == ["customer"]
    assert heard(recording[round(1.5 * rate) :, 1], rate=rate, tones=tones) == ["agent"]


async def test_bridge_notices_a_leg_that_drops(tmp_path):
    bridge = CallBridge(call_id="drop", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=None, record_to=None)
    agent = CustomerMedia(play=None, record_to=None)
    await answered_customer(bridge, customer)
    await connected_agent(bridge, agent)

    await agent.close()
    await asyncio.wait_for(bridge.agent_left.wait(), timeout=3)
    is_customer_left_after_agent = bridge.customer_left.is_set()
    await customer.close()
    await asyncio.wait_for(bridge.customer_left.wait(), timeout=3)
    await bridge.close()

    assert is_customer_left_after_agent is False


async def test_a_leg_whose_media_stops_is_gone_long_before_ice_notices(tmp_path, settings):
    """A customer's network drops: no packet arrives, yet the connection stays up for ICE's ~30 s.
    Silence for MEDIA_SILENCE_TIMEOUT_S is enough. A leg still sending is never taken for gone."""
    settings.MEDIA_SILENCE_TIMEOUT_S = 1.0
    bridge = CallBridge(call_id="silent", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=None, record_to=None)
    agent = CustomerMedia(play=None, record_to=None)
    await answered_customer(bridge, customer)
    await connected_agent(bridge, agent)
    await asyncio.sleep(1.5)  # both legs send (silence is sent too): neither is gone
    is_anyone_gone_while_sending = bridge.customer_left.is_set() or bridge.agent_left.is_set()

    async def stalled():
        await asyncio.Event().wait()

    customer._speech.recv = stalled  # the customer's packets stop; the connection stays up
    stopped_at = time.monotonic()
    await asyncio.wait_for(bridge.customer_left.wait(), timeout=5)
    noticed_after_s = time.monotonic() - stopped_at
    connection = customer.connection_state
    await bridge.close()
    await customer.close()
    await agent.close()

    assert is_anyone_gone_while_sending is False
    assert 1.0 <= noticed_after_s < 2.5
    assert connection == "connected"
    assert (bridge.is_customer_silent, bridge.agent_left.is_set()) == (True, False)


async def test_a_customer_we_call_is_not_taken_for_gone_before_picking_up(tmp_path, settings):
    """Before pick-up a called customer's media may start and stop (the ring is Meta's to time
    out); once the conversation starts (`record_from_now`), media that stops is their leaving."""
    settings.MEDIA_SILENCE_TIMEOUT_S = 1.0
    bridge = CallBridge(call_id="called", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=None, record_to=None)

    async def stalled():
        await asyncio.Event().wait()

    answer = await customer.answer(await bridge.offer_customer())
    await bridge.accept_customer_answer(answer)
    await customer.wait_connected(timeout_s=5)
    await asyncio.sleep(0.5)  # some media comes
    customer._speech.recv = stalled
    await asyncio.sleep(2.0)
    gone_while_ringing = bridge.customer_left.is_set()
    bridge.record_from_now()  # picked up
    await asyncio.wait_for(bridge.customer_left.wait(), timeout=5)
    await bridge.close()
    await customer.close()

    assert gone_while_ringing is False
    assert bridge.is_customer_silent is True


async def test_a_dropped_agent_leaves_the_customer_on_hold_until_a_new_leg_takes_over(tmp_path):
    bridge, customer_tone, agent_tone = tone_bridge(tmp_path, "reload")
    customer = CustomerMedia(play=customer_tone, record_to=tmp_path / "customer_heard.wav", loop=True)
    first_tab = CustomerMedia(play=agent_tone, record_to=None, loop=True)
    reloaded_tab = CustomerMedia(play=agent_tone, record_to=None, loop=True)
    other_tab = CustomerMedia(play=agent_tone, record_to=tmp_path / "other_tab_heard.wav", loop=True)

    await answered_customer(bridge, customer)
    await bridge.start_notice_then_hold()
    await asyncio.sleep(0.3)
    await connected_agent(bridge, first_tab)
    await asyncio.sleep(STEP_S)
    await first_tab.close()  # the agent reloads the page: the browser's leg is gone
    await asyncio.wait_for(bridge.agent_left.wait(), timeout=3)
    await asyncio.sleep(STEP_S)
    await connected_agent(bridge, reloaded_tab)  # the reloaded page's softphone
    assert not bridge.agent_left.is_set()
    await asyncio.sleep(STEP_S)
    await connected_agent(bridge, other_tab)  # the audio moves to another tab: the live leg is replaced
    await asyncio.sleep(STEP_S)
    await customer.close()
    for tab in (reloaded_tab, other_tab):
        await tab.close()
    await bridge.close()

    rate, customer_heard = heard_by(tmp_path / "customer_heard.wav")
    assert heard(customer_heard, rate=rate, tones=TONES_HEARD_BY_CUSTOMER) == [
        "hold",
        "agent",
        "hold",
        "agent",
    ]
    rate, other_tab_heard = heard_by(tmp_path / "other_tab_heard.wav")
    assert heard(other_tab_heard, rate=rate, tones={"customer": CUSTOMER_HZ}) == ["customer"]


async def test_an_agent_whose_media_stops_leaves_and_the_customer_hears_hold_until_a_leg_takes_over(
    tmp_path, settings
):
    """The agent's laptop sleeps or their network drops: no packet comes, while ICE would take ~30 s to
    notice. After MEDIA_SILENCE_TIMEOUT_S the leg has left, the customer hears the hold audio and
    `wait_for_agent` waits for the next leg."""
    settings.MEDIA_SILENCE_TIMEOUT_S = 1.0
    bridge, customer_tone, agent_tone = tone_bridge(tmp_path, "agent-silent")
    customer = CustomerMedia(play=customer_tone, record_to=tmp_path / "customer_heard.wav", loop=True)
    first_agent = CustomerMedia(play=agent_tone, record_to=None, loop=True)
    next_agent = CustomerMedia(play=agent_tone, record_to=None, loop=True)

    async def stalled():
        await asyncio.Event().wait()

    await answered_customer(bridge, customer)
    await connected_agent(bridge, first_agent)
    is_on_at_once = await bridge.wait_for_agent(timeout_s=0)
    await asyncio.sleep(1.5)  # both legs send: neither is gone
    is_anyone_gone_while_sending = bridge.customer_left.is_set() or bridge.agent_left.is_set()
    first_agent._speech.recv = stalled
    stopped_at = time.monotonic()
    await asyncio.wait_for(bridge.agent_left.wait(), timeout=5)
    noticed_after_s = time.monotonic() - stopped_at
    is_back_meanwhile = await bridge.wait_for_agent(timeout_s=STEP_S)
    waiting = asyncio.ensure_future(bridge.wait_for_agent(timeout_s=10))
    await connected_agent(bridge, next_agent)
    is_back = await asyncio.wait_for(waiting, timeout=1)
    await asyncio.sleep(STEP_S)
    is_customer_left = bridge.customer_left.is_set()
    await customer.close()
    for agent in (first_agent, next_agent):
        await agent.close()
    await bridge.close()

    assert (is_on_at_once, is_anyone_gone_while_sending) == (True, False)
    assert 1.0 <= noticed_after_s < 2.5
    assert (is_back_meanwhile, is_back, is_customer_left) == (False, True, False)
    rate, customer_heard = heard_by(tmp_path / "customer_heard.wav")
    # Silence while the leg is not yet known to be gone, then hold until the next leg.
    runs = heard(customer_heard, rate=rate, tones=TONES_HEARD_BY_CUSTOMER)
    assert runs[-4:] == ["agent", "silence", "hold", "agent"]


async def test_bridge_closed_twice_before_any_conversation_leaves_an_empty_recording(tmp_path):
    bridge = CallBridge(call_id="alone", recording_path=tmp_path / "call.ogg", notice=None, hold=HOLD)
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=None)
    await answered_customer(bridge, customer)
    await bridge.start_notice_then_hold()
    await asyncio.sleep(1.5)

    first, second = await asyncio.gather(bridge.close(), bridge.close())
    third = await bridge.close()
    await customer.close()

    assert first == second == third
    assert recorded_packets(tmp_path / "call.ogg") == []  # a valid file, with nothing of the wait
    assert (first.is_conversation, first.duration_s) == (False, 0)
    assert bridge.notice_finished.is_set() is True
    assert (bridge.customer_left.is_set(), bridge.agent_left.is_set()) == (False, False)
    with pytest.raises(BridgeError, match="closed"):
        await bridge.set_hold(is_on=True)


async def test_bridge_closed_before_answering_leaves_an_empty_valid_recording(tmp_path):
    bridge = CallBridge(call_id="unanswered", recording_path=tmp_path / "call.ogg", notice=NOTICE, hold=HOLD)

    result = await bridge.close()

    assert recorded_packets(tmp_path / "call.ogg") == []
    assert (result.duration_s, result.is_conversation) == (0.0, False)


async def offer_without_audio() -> str:
    peer_connection = RTCPeerConnection(rtc_configuration())
    peer_connection.createDataChannel("chat")
    await peer_connection.setLocalDescription(await peer_connection.createOffer())
    await peer_connection.close()
    return peer_connection.localDescription.sdp


async def offer_without_candidates() -> str:
    peer_connection = RTCPeerConnection(rtc_configuration())
    peer_connection.addTransceiver("audio")
    await peer_connection.setLocalDescription(await peer_connection.createOffer())
    await peer_connection.close()
    offer = peer_connection.localDescription.sdp
    return "".join(line for line in offer.splitlines(keepends=True) if not line.startswith("a=candidate:"))


async def offer_without_opus() -> str:
    peer_connection = RTCPeerConnection(rtc_configuration())
    peer_connection.addTransceiver("audio")
    await peer_connection.setLocalDescription(await peer_connection.createOffer())
    await peer_connection.close()
    offer = peer_connection.localDescription.sdp
    return "".join(line for line in offer.splitlines(keepends=True) if "opus" not in line)


async def garbage() -> str:
    return "this is not SDP\x00\xff"


async def empty() -> str:
    return ""


async def truncated_media_line() -> str:
    return "v=0\r\nm=audio\r\n"


@pytest.mark.parametrize(
    "make_offer",
    [garbage, empty, truncated_media_line, offer_without_audio, offer_without_candidates, offer_without_opus],
)
async def test_bridge_refuses_a_bad_offer_at_once(tmp_path, make_offer):
    bad_offer = await make_offer()
    bridge = CallBridge(call_id="bad", recording_path=tmp_path / "call.ogg", notice=None, hold=None)

    try:
        async with asyncio.timeout(1):
            with pytest.raises(BridgeError):
                await bridge.answer_customer(bad_offer)
    finally:
        await bridge.close()


async def test_bridge_refuses_an_agent_before_the_customer_and_a_second_customer(tmp_path):
    bridge = CallBridge(call_id="order", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=None, record_to=None)
    second_customer = CustomerMedia(play=None, record_to=None)

    try:
        with pytest.raises(BridgeError, match="before connecting an agent"):
            await bridge.connect_agent(await CustomerMedia(play=None, record_to=None).create_offer())
        await bridge.answer_customer(await customer.create_offer())
        with pytest.raises(BridgeError, match="already negotiated"):
            await bridge.answer_customer(await second_customer.create_offer())
    finally:
        await bridge.close()
        await customer.close()
        await second_customer.close()


def test_bridge_refuses_an_unreadable_prompt(tmp_path):
    not_audio = tmp_path / "not_audio.wav"
    not_audio.write_text("hello")

    with pytest.raises(BridgeError, match="cannot read"):
        CallBridge(call_id="prompt", recording_path=tmp_path / "call.ogg", notice=not_audio, hold=None)
    with pytest.raises(BridgeError, match="cannot read"):
        CallBridge(
            call_id="prompt", recording_path=tmp_path / "call.ogg", notice=None, hold=tmp_path / "none"
        )


def test_shipped_prompts_and_hold_audio_are_small_clear_16_khz_mono():
    prompts = sorted((ROOT / "static" / "audio").glob("*/*.wav"))
    assert len(prompts) >= 12  # each shipped language: the callers' notice, the outbound one, the closing
    lengths_s = {"notice": (5, 15), "outbound_notice": (3, 6), "closing": (5, 15)}  # outbound: no greeting
    for path, (shortest_s, longest_s) in [(HOLD, (4, 8)), *((p, lengths_s[p.parent.name]) for p in prompts)]:
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert shortest_s <= wav_duration_s(path) <= longest_s
        assert path.stat().st_size < 500_000
        assert path.with_suffix(".txt").is_file() or path == HOLD  # its words, for consent records
    assert all(wav_rms(prompt) > 0.05 for prompt in prompts)
    assert 0.02 < wav_rms(HOLD) < wav_rms(NOTICE)


def test_a_side_that_sends_10_ms_packets_is_recorded_in_time_with_the_other(tmp_path):
    """A peer may send 10 ms packets (Meta's offers say minptime=10): they are re-framed as 20 ms ones,
    each side still on its channel and in time."""
    seconds = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    customer_tone, agent_tone = (
        np.round(0.3 * 32767 * np.sin(2 * np.pi * hz * seconds)).astype(np.int16)
        for hz in (CUSTOMER_HZ, AGENT_HZ)
    )
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = SAMPLE_RATE, "mono", "s16"
    encoder.options = {"frame_duration": "10"}
    agent_packets = []
    for start in range(0, len(agent_tone), 480):
        frame = av.AudioFrame.from_ndarray(
            agent_tone[start : start + 480].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = SAMPLE_RATE, start
        agent_packets += [bytes(packet) for packet in encoder.encode(frame)]
    recording = _OpusRecording(tmp_path / "call.ogg")

    recording.start(at=1000.0)
    for number, payload in enumerate(opus_encode_mono(customer_tone)):
        arrives_at = 1000.0 + (number + 1) * 0.02
        recording.add_packet(
            0, _Packet(payload, 960), is_heard=True, media_time_s=number * 0.02, at=arrives_at
        )
        for half in (2 * number, 2 * number + 1):  # the agent joined 1 s in; its clock started elsewhere
            if number >= 50 and half - 100 < len(agent_packets):
                packet = _Packet(agent_packets[half - 100], 480)
                recording.add_packet(1, packet, is_heard=True, media_time_s=7.0 + half * 0.01, at=arrives_at)
    result = recording.finish(at=1000.0 + 4.0)

    rate, samples = recording_channels(tmp_path / "call.ogg")
    assert {opus_packet_samples(agent) for _, agent in recorded_packets(tmp_path / "call.ogg")} == {960}
    assert heard(samples[:, 0], rate=rate, tones=TONES_OF_BOTH_SIDES) == ["customer", "silence"]
    assert heard(samples[:, 1], rate=rate, tones=TONES_OF_BOTH_SIDES) == ["silence", "agent", "silence"]
    agent_starts_s = np.argmax(np.abs(samples[:, 1]) > 0.05) / rate
    assert agent_starts_s == pytest.approx(1.0, abs=0.05)
    assert result.duration_s == pytest.approx(4.0, abs=0.02)
