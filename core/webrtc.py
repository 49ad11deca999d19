"""WebRTC plumbing shared by every aiortc peer the project runs (the sandbox customer, the media process).

Two settings steer it: ``MEDIA_ICE_SERVERS`` (STUN/TURN URLs) and ``MEDIA_HOST_ADDRESSES`` (the
addresses offered as ICE host candidates). ``receive_encoded()`` takes a receiver's packets before aiortc
decodes them.
"""

import functools
import ipaddress
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCRtpReceiver, RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


def rtc_configuration() -> RTCConfiguration:
    """The peer-connection configuration: exactly the ICE servers in ``settings.MEDIA_ICE_SERVERS``.

    Each entry is ``stun:host[:port]`` or ``turn[s]:user:password@host[:port][?transport=udp|tcp]``;
    user and password may be percent-encoded. An empty list gives no ICE server at all (aiortc's own
    default would be Google's public STUN server). aiortc uses only the first STUN and the first TURN
    server of the list. Raises ``ImproperlyConfigured`` on a malformed entry.
    """
    return RTCConfiguration(iceServers=[_ice_server(url) for url in settings.MEDIA_ICE_SERVERS])


def _ice_server(url: str) -> RTCIceServer:
    scheme, separator, rest = url.partition(":")
    username = credential = None
    if scheme in ("turn", "turns") and "@" in rest:
        # The credentials ride in the URL so that one environment list holds the whole server;
        # aiortc wants them as separate fields.
        userinfo, _, rest = rest.rpartition("@")
        username, _, credential = userinfo.partition(":")
        username, credential = unquote(username), unquote(credential)
    bare_url = f"{scheme}{separator}{rest}"
    try:
        parse_stun_turn_uri(bare_url)
    except ValueError as error:
        raise ImproperlyConfigured(f"MEDIA_ICE_SERVERS: {url!r} is not a STUN/TURN URL ({error})") from None
    if scheme in ("turn", "turns") and not (username and credential):
        raise ImproperlyConfigured(f"MEDIA_ICE_SERVERS: TURN server {bare_url!r} needs user:password@")
    return RTCIceServer(urls=bare_url, username=username, credential=credential)


def apply_host_addresses() -> None:
    """Make aioice offer exactly ``settings.MEDIA_HOST_ADDRESSES`` as host candidates, when that is set.

    aioice enumerates the machine's interfaces and never offers 127.0.0.1 (RFC 8445), so on a
    loopback-only machine both peers gather nothing and sit in "connecting" without an error; behind
    1:1 NAT the interface address is the wrong one to offer. The lookup is replaced once per process
    (calling this again does nothing) and reads the setting on every gathering, so an empty list, now or
    later, means aioice's own lookup. Raises ``ImproperlyConfigured`` on an entry that is not an IP.
    """
    addresses = settings.MEDIA_HOST_ADDRESSES
    if not addresses:
        return
    for address in addresses:
        _ip_version(address)
    if getattr(aioice.ice.get_host_addresses, "is_switchboard_override", False):
        return
    # Patched at module level because aioice.ice.Connection.gather_candidates looks the name up in its
    # module's globals on every call, and aiortc offers no hook to pass addresses in.
    aioice.ice.get_host_addresses = _configured_host_addresses(aioice.ice.get_host_addresses)


HostAddressLookup = Callable[[bool, bool], list[str]]


def _configured_host_addresses(interface_addresses: HostAddressLookup) -> HostAddressLookup:
    @functools.wraps(interface_addresses)
    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        configured = settings.MEDIA_HOST_ADDRESSES
        if not configured:
            return interface_addresses(use_ipv4, use_ipv6)
        wanted_versions = {4} if use_ipv4 else set()
        if use_ipv6:
            wanted_versions.add(6)
        return [address for address in configured if _ip_version(address) in wanted_versions]

    host_addresses.is_switchboard_override = True  # type: ignore[attr-defined]
    return host_addresses


def _ip_version(address: str) -> int:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        raise ImproperlyConfigured(f"MEDIA_HOST_ADDRESSES: {address!r} is not an IP address") from None


EncodedAudioSink = Callable[[bytes, int, float], None]


def receive_encoded(receiver: RTCRtpReceiver, on_packet: EncodedAudioSink) -> None:
    """Hand what ``receiver`` receives to ``on_packet`` as encoded payloads, on the event loop, in order.

    ``on_packet(payload, timestamp, arrived_at)`` gets each payload that leaves aiortc's jitter buffer
    (an Opus packet for an audio receiver), its RTP timestamp counted from the stream's first packet (in
    the codec's clock: 48 kHz for Opus) and its ``time.monotonic()`` arrival. Nothing is decoded: aiortc
    otherwise decodes every packet in a thread of its own and hands each frame back to the loop, two
    thread hand-offs per packet that cost more than the codec (MEDIA_NOTES.md). The receiver's track still
    ends when the receiver stops, so reading it tells when the leg is gone.

    Call it before the connection applies a description that starts the receiver: aiortc 1.16 reads
    ``RTCRtpReceiver.__decoder_queue`` from ``_handle_rtp_packet`` and its decoder thread, and there is no
    public hook; requirements.txt pins aiortc, and this raises ``RuntimeError`` if that attribute is gone.
    """
    attribute = "_RTCRtpReceiver__decoder_queue"
    if not isinstance(getattr(receiver, attribute, None), queue.Queue):
        raise RuntimeError("this aiortc has no RTCRtpReceiver decoder queue to take packets from")
    setattr(receiver, attribute, _EncodedTap(on_packet))


class _EncodedTap:
    """Stands in for aiortc's decoder queue: ``put()`` comes from the loop, ``get()`` from the decoder
    thread, which then only ever waits for the end (None) and passes it on to the track."""

    def __init__(self, on_packet: EncodedAudioSink) -> None:
        self._on_packet = on_packet
        self._end: queue.Queue[None] = queue.Queue()
        self._failures = 0

    def put(self, item: tuple | None) -> None:
        if item is None:
            self._end.put(None)
            return
        _codec, encoded_frame = item
        try:
            self._on_packet(encoded_frame.data, encoded_frame.timestamp, time.monotonic())
        except Exception:
            # Raised into aiortc's packet handling it would close the connection: the packet is lost
            # instead (a full disk under the recording, say), and the call goes on.
            self._failures += 1
            if self._failures == 1 or self._failures % 1000 == 0:
                logger.exception("a received packet could not be handled (%d so far)", self._failures)

    def get(self) -> None:
        return self._end.get()


def browser_ice_servers() -> list[dict]:
    """``settings.MEDIA_ICE_SERVERS`` as a browser's ``RTCPeerConnection`` wants them."""
    servers = []
    for server in rtc_configuration().iceServers:
        entry = {"urls": server.urls}
        if server.username:
            entry |= {"username": server.username, "credential": server.credential}
        servers.append(entry)
    return servers


def opus_codecs() -> list[RTCRtpCodecCapability]:
    """aiortc's Opus codec only: WhatsApp calls are Opus, so offering or answering G.722 or G.711
    would let a peer pick a codec Meta never sends (or make the bridge transcode)."""
    return [codec for codec in RTCRtpSender.getCapabilities("audio").codecs if codec.mimeType == "audio/opus"]


def sdp_problem(text: object) -> str | None:
    """Why ``text`` is not SDP that a WhatsApp call leg can use now, or None when it is: exactly one
    audio section (besides sections declined with port 0: an answer's video, say), ICE credentials and
    candidates (no trickle), a DTLS fingerprint, and Opus."""
    if not isinstance(text, str) or not text.strip():
        return "is empty"
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as error:  # noqa: BLE001 - aiortc's parser raises assorted built-ins on bad input
        return f"cannot be parsed: {type(error).__name__} {error}"
    live = [media for media in description.media if media.port != 0]
    kinds = [media.kind for media in live]
    if kinds != ["audio"]:
        return f"must have exactly one m=audio section and nothing else, not {kinds}"
    audio = live[0]
    if not audio.ice.usernameFragment or not audio.ice.password:
        return "has no ICE credentials (a=ice-ufrag, a=ice-pwd)"
    if audio.dtls is None or not audio.dtls.fingerprints:
        return "has no DTLS fingerprint"
    if not audio.ice_candidates:
        # With no candidate and no trickle ICE, the connection would wait for ever: fail now instead.
        return "has no ICE candidates (trickle ICE is not supported)"
    if not any(codec.mimeType.lower() == "audio/opus" for codec in audio.rtp.codecs):
        return "does not offer Opus"
    return None


# --- Voice only: offers with more than audio --------------------------------------------------

# What a section set aside from an offer may lend the audio section it shared a BUNDLE transport with
# (a browser puts the transport's credentials and candidates in the bundle's first section only).
_TRANSPORT_ATTRIBUTES = (
    "a=ice-ufrag:", "a=ice-pwd:", "a=ice-options:", "a=ice-lite", "a=fingerprint:", "a=setup:",
    "a=candidate:", "a=end-of-candidates",
)  # fmt: skip


@dataclass(frozen=True)
class DeclinedSection:
    """A media section of an offer that a voice-only answer declines: where it was, and what names it."""

    index: int  # among the offer's m= sections
    kind: str
    protocol: str
    formats: str
    mid: str

    @property
    def answer_lines(self) -> list[str]:
        """The section as an answer declines it (RFC 3264 §6, RFC 8829 §5.3.1): port 0, its
        formats and its mid, out of the BUNDLE group."""
        lines = [f"m={self.kind} 0 {self.protocol} {self.formats}", "c=IN IP4 0.0.0.0"]
        if self.mid:
            lines.append(f"a=mid:{self.mid}")
        return [*lines, "a=inactive"]


def sdp_audio_only(offer: str) -> tuple[str, tuple[DeclinedSection, ...]]:
    """Split an offer into what a WhatsApp call leg answers, its first audio section (the Calling API
    is voice only: WHATSAPP_API.md §10.4), and the sections its answer declines (video, data, more
    audio). An offer of audio alone, or without any, comes back unchanged, with nothing declined.
    Declined sections leave the BUNDLE group; transport attributes the audio section lacks are taken
    from the section it was bundled with."""
    lines = [line for line in offer.replace("\r\n", "\n").split("\n") if line]
    starts = [index for index, line in enumerate(lines) if line.startswith("m=")]
    if len(starts) < 2:
        return offer, ()
    session = lines[: starts[0]]
    sections = [lines[start:end] for start, end in zip(starts, [*starts[1:], len(lines)], strict=True)]
    audio_at = next(
        (index for index, section in enumerate(sections) if section[0].startswith("m=audio ")), None
    )
    if audio_at is None:
        return offer, ()
    declined = []
    for index, section in enumerate(sections):
        if index == audio_at:
            continue
        parts = section[0][2:].split(" ")
        if len(parts) < 4:
            return offer, ()  # not a media line: sdp_problem says what is wrong with the offer
        kind, _port, protocol, *formats = parts
        mid = next((line[len("a=mid:") :] for line in section if line.startswith("a=mid:")), "")
        declined.append(
            DeclinedSection(index=index, kind=kind, protocol=protocol, formats=" ".join(formats), mid=mid)
        )
    declined_mids = {section.mid for section in declined if section.mid}
    session = [_without_mids(line, declined_mids) for line in session]
    audio = list(sections[audio_at])
    for prefix in _TRANSPORT_ATTRIBUTES:
        if not any(line.startswith(prefix) for line in audio):
            lender = next(
                (section for section in sections if any(line.startswith(prefix) for line in section)), []
            )
            audio += [line for line in lender if line.startswith(prefix)]
    return "\r\n".join([*session, *audio]) + "\r\n", tuple(declined)


def _without_mids(line: str, mids: set[str]) -> str:
    if not line.startswith("a=group:BUNDLE"):
        return line
    return " ".join(item for item in line.split(" ") if item not in mids)


def sdp_answer_declining(answer: str, declined: tuple[DeclinedSection, ...]) -> str:
    """The answer to the audio part of an offer (``sdp_audio_only``), with the sections it set aside
    put back in their places, declined: the answer then has the offer's sections, in its order."""
    if not declined:
        return answer
    lines = [line for line in answer.replace("\r\n", "\n").split("\n") if line]
    starts = [index for index, line in enumerate(lines) if line.startswith("m=")]
    session = lines[: starts[0]]
    sections = [lines[start:end] for start, end in zip(starts, [*starts[1:], len(lines)], strict=True)]
    for section in sorted(declined, key=lambda section: section.index):
        sections.insert(section.index, section.answer_lines)
    return "\r\n".join([*session, *(line for section in sections for line in section)]) + "\r\n"


def sdp_declined_removed(answer: str) -> str:
    """An answer without the sections it declined (port 0): for a peer that applies only the audio
    section it offered (aiortc cannot apply a declined section: it wants ICE credentials in each)."""
    lines = [line for line in answer.replace("\r\n", "\n").split("\n") if line]
    kept, is_declined = [], False
    for line in lines:
        if line.startswith("m="):
            is_declined = line.split(" ")[1] == "0"
        if not is_declined:
            kept.append(line)
    return "\r\n".join(kept) + "\r\n"
