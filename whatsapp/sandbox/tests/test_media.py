"""The simulated customer's media leg against a plain aiortc peer playing the business, on loopback."""

import asyncio
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer, MediaRecorder

from whatsapp.sandbox import media
from whatsapp.sandbox.audio_metrics import wav_duration_s, wav_rms, wav_samples
from whatsapp.sandbox.customers import SimulatedCustomer, conversation_script
from whatsapp.sandbox.media import CustomerMedia, MediaError
from whatsapp.sandbox.meta import SandboxMeta

AUDIO = Path(__file__).resolve().parent.parent / "audio"
CUSTOMER_SPEECH = AUDIO / "customer_order.wav"
BUSINESS_SPEECH = AUDIO / "customer_goodbye.wav"

# espeak-ng speech measures 0.07-0.10 of full scale and keeps its level through Opus (aiortc's
# MediaPlayer, which the business side uses, lowers it by 3 dB to about 0.05); digital silence through
# Opus measures 0.0. Anything between the two means audio went missing.
SPEECH_RMS = 0.02
SILENCE_RMS = 0.001


@pytest.fixture(autouse=True)
def loopback_only(settings):
    """ICE on 127.0.0.1 only: nothing leaves the machine, and no STUN server is asked."""
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


class Business:
    """The business's side of the call as any aiortc peer would do it: plays a WAV, records to one."""

    def __init__(self, *, play: Path | None, record_to: Path) -> None:
        self.peer_connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.player = MediaPlayer(str(play)) if play is not None else None
        self.recorder = MediaRecorder(str(record_to))
        self.peer_connection.on("track", self.recorder.addTrack)
        if self.player is not None:
            self.peer_connection.addTrack(self.player.audio)
        else:
            self.peer_connection.addTransceiver("audio", direction="recvonly")

    async def answer(self, offer_sdp: str) -> str:
        await self.peer_connection.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.recorder.start()
        await self.peer_connection.setLocalDescription(await self.peer_connection.createAnswer())
        return self.peer_connection.localDescription.sdp

    async def offer(self) -> str:
        await self.peer_connection.setLocalDescription(await self.peer_connection.createOffer())
        return self.peer_connection.localDescription.sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        await self.peer_connection.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        await self.recorder.start()

    async def close(self) -> None:
        await self.recorder.stop()
        await self.peer_connection.close()
        if self.player is not None:
            self.player.audio.stop()


async def talk(customer: CustomerMedia, business: Business, *, seconds: float) -> float:
    """Let both sides talk once connected, hang up, and return how long the call was connected."""
    try:
        await customer.wait_connected(timeout_s=5)
        connected_at = time.monotonic()
        await asyncio.sleep(seconds)
        await customer.close()
        return time.monotonic() - connected_at
    finally:
        await customer.close()
        await business.close()


def opening_rms(path: Path, *, seconds: float) -> float:
    """The level of the first ``seconds`` of a fixture: what the far end should hear after as long."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
    samples = wav_samples(path)[: round(seconds * rate)]
    return float(np.sqrt(np.mean(np.square(samples))))


async def test_customer_media_placed_call_carries_speech_both_ways(tmp_path):
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=tmp_path / "customer_heard.wav")
    business = Business(play=BUSINESS_SPEECH, record_to=tmp_path / "business_heard.wav")

    offer = await customer.create_offer()
    await customer.accept_answer(await business.answer(offer))
    connected_s = await talk(customer, business, seconds=2.5)

    assert "a=rtpmap:96 opus/48000/2" in offer
    assert "a=end-of-candidates" in offer
    assert wav_rms(tmp_path / "business_heard.wav") > SPEECH_RMS
    assert connected_s - 0.5 < wav_duration_s(tmp_path / "business_heard.wav") < connected_s + 0.2
    assert wav_rms(tmp_path / "business_heard.wav") == pytest.approx(
        opening_rms(CUSTOMER_SPEECH, seconds=wav_duration_s(tmp_path / "business_heard.wav")), rel=0.2
    )
    assert wav_rms(tmp_path / "customer_heard.wav") > SPEECH_RMS
    assert connected_s - 0.5 < wav_duration_s(tmp_path / "customer_heard.wav") < connected_s + 0.2
    assert customer.is_closed is True
    assert customer.is_connected is False


async def test_customer_media_answered_call_carries_speech_both_ways(tmp_path):
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=tmp_path / "customer_heard.wav")
    business = Business(play=BUSINESS_SPEECH, record_to=tmp_path / "business_heard.wav")

    answer = await customer.answer(await business.offer())
    await business.accept_answer(answer)
    connected_s = await talk(customer, business, seconds=1.5)

    assert "a=rtpmap:96 opus/48000/2" in answer
    assert wav_rms(tmp_path / "business_heard.wav") > SPEECH_RMS
    assert connected_s - 0.5 < wav_duration_s(tmp_path / "business_heard.wav") < connected_s + 0.2
    assert wav_rms(tmp_path / "customer_heard.wav") > SPEECH_RMS


def write_tone(path: Path, *, seconds: float, amplitude: float = 0.3) -> Path:
    """A 440 Hz sine as 16 kHz mono 16-bit WAV: RMS is amplitude / sqrt(2)."""
    rate = 16_000
    times = np.arange(round(seconds * rate)) / rate
    samples = np.round(amplitude * 32767 * np.sin(2 * np.pi * 440 * times)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


async def place_call(customer: CustomerMedia, business: Business, *, seconds: float) -> float:
    await customer.accept_answer(await business.answer(await customer.create_offer()))
    return await talk(customer, business, seconds=seconds)


def closing_rms(path: Path, *, seconds: float) -> float:
    """The level of the last ``seconds`` of a recording."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
    samples = wav_samples(path)[-round(seconds * rate) :]
    return float(np.sqrt(np.mean(np.square(samples))))


async def test_customer_media_play_once_loop_or_none(tmp_path):
    tone = write_tone(tmp_path / "tone.wav", seconds=0.2)
    calls = {
        "once": CustomerMedia(play=tone, record_to=None),
        "looped": CustomerMedia(play=tone, record_to=None, loop=True),
        "silent": CustomerMedia(play=None, record_to=None),
    }
    businesses = {name: Business(play=None, record_to=tmp_path / f"{name}.wav") for name in calls}

    await asyncio.gather(*(place_call(calls[name], businesses[name], seconds=1.0) for name in calls))

    assert wav_rms(tmp_path / "once.wav") > SPEECH_RMS
    assert closing_rms(tmp_path / "once.wav", seconds=0.5) < SILENCE_RMS
    assert closing_rms(tmp_path / "looped.wav", seconds=0.5) > 0.15
    assert wav_rms(tmp_path / "silent.wav") < SILENCE_RMS
    assert wav_duration_s(tmp_path / "silent.wav") > 0.5


async def test_customer_media_offer_lists_only_loopback_host_candidates():
    customer = CustomerMedia(play=None, record_to=None)

    try:
        offer = await customer.create_offer()
    finally:
        await customer.close()

    candidates = [line for line in offer.splitlines() if line.startswith("a=candidate:")]
    assert [line.split()[4] for line in candidates] == ["127.0.0.1"]
    assert [line.split()[7] for line in candidates] == ["host"]
    assert [line for line in offer.splitlines() if line.startswith("a=rtpmap:")] == [
        "a=rtpmap:96 opus/48000/2"
    ]


async def business_offer_without_audio() -> str:
    peer_connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    peer_connection.createDataChannel("chat")
    await peer_connection.setLocalDescription(await peer_connection.createOffer())
    await peer_connection.close()
    return peer_connection.localDescription.sdp


async def business_offer_without_candidates() -> str:
    peer_connection = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    peer_connection.addTransceiver("audio")
    await peer_connection.setLocalDescription(await peer_connection.createOffer())
    await peer_connection.close()
    offer = peer_connection.localDescription.sdp
    return "".join(line for line in offer.splitlines(keepends=True) if not line.startswith("a=candidate:"))


BAD_OFFERS = {
    "garbage": lambda: "this is not SDP\x00\xff",
    "empty": lambda: "",
    "truncated m-line": lambda: "v=0\r\nm=audio\r\n",
    "no audio": business_offer_without_audio,
    "no candidates": business_offer_without_candidates,
}


@pytest.mark.parametrize("kind", BAD_OFFERS)
async def test_customer_media_answer_rejects_bad_sdp(kind):
    bad_sdp = BAD_OFFERS[kind]()
    if asyncio.iscoroutine(bad_sdp):
        bad_sdp = await bad_sdp
    customer = CustomerMedia(play=None, record_to=None)

    try:
        async with asyncio.timeout(1):
            with pytest.raises(MediaError):
                await customer.answer(bad_sdp)
    finally:
        await customer.close()


async def test_customer_media_accept_answer_rejects_bad_sdp():
    customer = CustomerMedia(play=None, record_to=None)
    await customer.create_offer()

    try:
        async with asyncio.timeout(1):
            with pytest.raises(MediaError, match="cannot be parsed"):
                await customer.accept_answer("v=0\r\nm=audio\r\n")
            with pytest.raises(MediaError, match="exactly one m=audio"):
                await customer.accept_answer(await business_offer_without_audio())
    finally:
        await customer.close()


async def test_customer_media_accept_answer_needs_an_offer_first():
    customer = CustomerMedia(play=None, record_to=None)

    with pytest.raises(MediaError, match="needs an offer"):
        await customer.accept_answer("v=0\r\n")


async def test_customer_media_wait_connected_times_out_without_an_answer():
    customer = CustomerMedia(play=None, record_to=None)
    await customer.create_offer()

    try:
        with pytest.raises(TimeoutError):
            await customer.wait_connected(timeout_s=0.1)
    finally:
        await customer.close()


async def test_customer_media_close_leaves_a_valid_empty_recording_when_nothing_was_heard(tmp_path):
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=tmp_path / "customer_heard.wav")
    await customer.create_offer()

    await customer.close()
    await customer.close()

    assert wav_duration_s(tmp_path / "customer_heard.wav") == 0.0
    assert wav_rms(tmp_path / "customer_heard.wav") == 0.0


def test_customer_media_rejects_an_unreadable_wav(tmp_path):
    not_audio = tmp_path / "not_audio.wav"
    not_audio.write_text("hello")

    with pytest.raises(MediaError, match="cannot read"):
        CustomerMedia(play=not_audio, record_to=None)


@pytest.mark.parametrize(
    ("wa_id", "language"),
    [("34612345678", "es"), ("5511987654321", "pt"), ("919876543210", "hi"), ("4915123456789", "en")],
)
def test_a_simulated_customer_talks_in_the_language_of_its_number_or_else_english(wa_id, language):
    customer = SimulatedCustomer(meta=SandboxMeta(), wa_id=wa_id, name="Ana")

    assert customer.language == language
    assert customer.script == conversation_script(language)
    assert [path.name for path in customer.script] == ["1.wav", "2.wav", "3.wav", "4.wav"]
    for phrase in customer.script:
        with wave.open(str(phrase), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        assert 1.0 < wav_duration_s(phrase) < 8.0 and wav_rms(phrase) > 0.05


def test_a_crowd_playing_one_script_decodes_each_file_once():
    script = [AUDIO / "customer_order.wav", AUDIO / "customer_goodbye.wav"]
    media._load_wav.cache_clear()

    legs = [CustomerMedia(play=script[0], record_to=None, script=script) for _ in range(5)]

    assert media._load_wav.cache_info().misses == 2
    assert legs[0]._speech._samples is legs[4]._speech._samples
