"""WhatsApp calls are voice only (WHATSAPP_API.md §10.4): an offer that also carries video is answered
for its audio, the video declined with port 0 (RFC 3264 §6), and the call goes on as a voice call."""

import asyncio
from pathlib import Path

import pytest
from aiortc import sdp as aiortc_sdp

from calls.bridge import CallBridge
from calls.tests.test_bridge import recording_levels
from core.webrtc import sdp_audio_only, sdp_problem
from whatsapp.sandbox.media import VIDEO_MID, CustomerMedia

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_SPEECH = ROOT / "whatsapp" / "sandbox" / "audio" / "customer_order.wav"
SPEECH_RMS = 0.02
TRANSPORT = (
    "a=ice-ufrag:",
    "a=ice-pwd:",
    "a=fingerprint:",
    "a=setup:",
    "a=candidate:",
    "a=end-of-candidates",
)


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


def sections(sdp: str) -> list[list[str]]:
    lines = sdp.replace("\r\n", "\n").split("\n")
    starts = [index for index, line in enumerate(lines) if line.startswith("m=")]
    return [lines[start:end] for start, end in zip(starts, [*starts[1:], len(lines)], strict=True)]


def video_first(offer: str) -> str:
    """The offer as a browser bundling its video first would make it: the video section leads the
    BUNDLE and alone carries the shared transport (credentials, fingerprint, candidates)."""
    lines = offer.replace("\r\n", "\n").split("\n")
    session = lines[: next(index for index, line in enumerate(lines) if line.startswith("m="))]
    audio, video = sections(offer)
    shared = [line for line in audio if line.startswith(TRANSPORT)]
    audio = [line for line in audio if line and not line.startswith(TRANSPORT)]
    video = [line for line in video if line and not line.startswith(TRANSPORT)]
    mid = next(line for line in audio if line.startswith("a=mid:"))[len("a=mid:") :]
    session = [
        f"a=group:BUNDLE {VIDEO_MID} {mid}" if line.startswith("a=group:BUNDLE") else line for line in session
    ]
    return "\r\n".join([*session, video[0], *shared, *video[1:], *audio]) + "\r\n"


async def talk_over_video_offer(tmp_path: Path, *, shape) -> tuple[str, str, float]:
    bridge = CallBridge(call_id="video", recording_path=tmp_path / "call.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=None)
    try:
        offer = shape(await customer.create_offer(with_video=True))
        answer = await bridge.answer_customer(offer)
        await customer.accept_answer(answer)
        await customer.wait_connected(timeout_s=10)
        bridge.record_from_now()  # as for a conversation: what the customer says is recorded
        await asyncio.sleep(1.5)
        result = await bridge.close()
    finally:
        await bridge.close()
        await customer.close()
    return offer, answer, recording_levels(result.path)[0]


@pytest.mark.parametrize("shape", [lambda offer: offer, video_first], ids=["audio_first", "video_first"])
async def test_a_video_call_is_answered_for_its_audio_with_the_video_declined(tmp_path, shape):
    offer, answer, customer_rms = await talk_over_video_offer(tmp_path, shape=shape)

    offered = aiortc_sdp.SessionDescription.parse(offer)
    answered = aiortc_sdp.SessionDescription.parse(answer)
    audio_mid = next(media.rtp.muxId for media in offered.media if media.kind == "audio")
    assert [(media.kind, media.rtp.muxId) for media in answered.media] == [
        (media.kind, media.rtp.muxId) for media in offered.media
    ]
    video = next(media for media in answered.media if media.kind == "video")
    audio = next(media for media in answered.media if media.kind == "audio")
    assert (video.port, video.direction, video.fmt) == (0, "inactive", [96, 97])
    assert audio.port != 0 and audio.ice_candidates
    assert [codec.mimeType for codec in audio.rtp.codecs] == ["audio/opus"]
    assert [(group.semantic, group.items) for group in answered.group] == [("BUNDLE", [audio_mid])]
    assert sdp_problem(answer) is None
    assert customer_rms > SPEECH_RMS  # the customer was heard: the call went on, as a voice call


def test_an_offer_of_audio_alone_is_answered_as_it_came():
    offer = (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
    )

    assert sdp_audio_only(offer) == (offer, ())


@pytest.mark.parametrize(
    "offer",
    ["", "not SDP\x00\xff", "v=0\r\nm=video\r\nm=audio\r\n", "v=0\r\nm=audio 9\r\nm=video 9 RTP/AVP 96\r\n"],
)
def test_an_offer_that_is_not_sdp_is_left_for_the_checks_to_refuse(offer):
    audio, declined = sdp_audio_only(offer)

    assert (audio, declined) == (offer, ()) or sdp_problem(audio) is not None
