"""WebRTC plumbing shared by every aiortc peer the project runs (the sandbox customer, the media process).

Two settings steer it: ``MEDIA_ICE_SERVERS`` (STUN/TURN URLs) and ``MEDIA_HOST_ADDRESSES`` (the
addresses offered as ICE host candidates). ``speed_up_audio_level()`` replaces a slow aiortc function.
"""

import functools
import ipaddress
import math
import sys
from collections.abc import Callable
from urllib.parse import unquote

import aioice.ice
import aiortc.rtp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.rtcicetransport import parse_stun_turn_uri
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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


def speed_up_audio_level() -> None:
    """Replace aiortc's RTP audio-level function with an equivalent numpy one, once per process.

    Every audio frame an aiortc sender encodes first goes through ``aiortc.rtp.compute_audio_level_dbov``
    (the RFC 6465 level for the RTP header extension), a pure-Python loop over every sample: about a
    fifth of a core per bridged call. The replacement returns the same integer dBov for every frame,
    about 35 times faster; its ``__wrapped__`` is aiortc's original. Calling this again does nothing.
    """
    original = aiortc.rtp.compute_audio_level_dbov
    if getattr(original, "is_switchboard_override", False):
        return
    replacement = _numpy_audio_level(original)
    # rtcrtpsender reads the name from the aiortc.rtp module on every frame; an aiortc module that imported
    # the function by name (none does in 1.16) holds its own reference, so those are replaced too.
    for name, module in list(sys.modules.items()):
        is_aiortc = name == "aiortc" or name.startswith("aiortc.")
        if is_aiortc and vars(module).get("compute_audio_level_dbov") is original:
            module.compute_audio_level_dbov = replacement


def _numpy_audio_level(original: Callable[[av.AudioFrame], int]) -> Callable[[av.AudioFrame], int]:
    max_sample_value = 32767

    @functools.wraps(original)
    def compute_audio_level_dbov(frame: av.AudioFrame) -> int:
        # The same arithmetic as the original, quirks included (it reads the first plane as 16-bit
        # samples and divides by the per-channel sample count), so that the header values do not change.
        # The sum of squares is exact in int64 and equals the original's float sum, exact below 2**53.
        # Not np.dot: it goes through OpenBLAS, whose spinning threads take a whole core.
        samples = np.frombuffer(frame.planes[0], dtype=np.int16).astype(np.int64)
        energy = int(np.square(samples).sum())
        rms = math.sqrt(energy / (frame.samples * max_sample_value * max_sample_value))
        if rms > 0:
            return round(min(max(20 * math.log10(rms), -127), 0))
        return -127

    compute_audio_level_dbov.is_switchboard_override = True  # type: ignore[attr-defined]
    return compute_audio_level_dbov


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
    audio section, ICE credentials and candidates (no trickle), a DTLS fingerprint, and Opus."""
    if not isinstance(text, str) or not text.strip():
        return "is empty"
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as error:  # noqa: BLE001 - aiortc's parser raises assorted built-ins on bad input
        return f"cannot be parsed: {type(error).__name__} {error}"
    kinds = [media.kind for media in description.media]
    if kinds != ["audio"]:
        return f"must have exactly one m=audio section and nothing else, not {kinds}"
    audio = description.media[0]
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
