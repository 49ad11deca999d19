"""Audio files the media legs play: decoded once into samples, any rate or channels in."""

import secrets
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np


class AudioFileError(ValueError):
    """The file cannot be read, or holds no audio."""


def decode_mono_s16(path: Path | str, *, rate: int) -> np.ndarray:
    """The whole file as mono 16-bit samples at `rate`.

    Mono on purpose: a voice is mono, and callers copy it into both channels themselves, because
    FFmpeg's mono-to-stereo matrix lowers the level by 3 dB.
    """
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path} has no audio stream")
            for frame in container.decode(audio=0):
                chunks.extend(resampled.to_ndarray().ravel() for resampled in resampler.resample(frame))
        chunks.extend(resampled.to_ndarray().ravel() for resampled in resampler.resample(None))
    except (OSError, av.FFmpegError) as error:
        raise AudioFileError(f"cannot read {path}: {error}") from error
    if not chunks:
        raise AudioFileError(f"{path} holds no audio")
    return np.concatenate(chunks)


# --- Opus packets (RFC 6716): what the media legs send, relay and record -------------------------

OPUS_RATE = 48_000  # Opus timestamps and decoded audio are always at 48 kHz
OPUS_FRAME_SAMPLES = 960  # 20 ms, the frame every packet made here holds
MAX_OPUS_PACKET_SAMPLES = 5_760  # 120 ms, the longest packet RFC 6716 allows

# Frame duration in 48 kHz samples by the TOC byte's configuration number (RFC 6716 §3.1, table 2):
# SILK 10/20/40/60 ms (0-11), hybrid 10/20 ms (12-15), CELT 2.5/5/10/20 ms (16-31).
_CONFIG_FRAME_SAMPLES = (480, 960, 1920, 2880) * 3 + (480, 960) * 2 + (120, 240, 480, 960) * 4


class OpusPacketError(ValueError):
    """Not an Opus packet (RFC 6716 §3): empty, or frames that do not add up."""


def opus_packet_samples(payload: bytes) -> int:
    """How many 48 kHz samples (per channel) an Opus packet holds, from its TOC byte (RFC 6716 §3.1).

    Raises ``OpusPacketError`` for a payload that cannot be an Opus packet: empty, a code 3 packet
    without its frame count byte, no frames, or more than 120 ms of audio.
    """
    if not payload:
        raise OpusPacketError("an empty payload is not an Opus packet")
    toc = payload[0]
    frame_samples = _CONFIG_FRAME_SAMPLES[toc >> 3]
    code = toc & 0x3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        if len(payload) < 2:
            raise OpusPacketError("a code 3 Opus packet needs its frame count byte")
        frames = payload[1] & 0x3F
    samples = frames * frame_samples
    if not 0 < samples <= MAX_OPUS_PACKET_SAMPLES:
        raise OpusPacketError(f"an Opus packet holds 2.5 to 120 ms, not {samples / 48:g} ms")
    return samples


def opus_encode_mono(samples: np.ndarray) -> tuple[bytes, ...]:
    """Mono 16-bit samples at 48 kHz as Opus packets of 20 ms each (the last one padded with silence).

    For audio sent many times (prompts, hold music, silence): encoded once, each send is only a copy.
    """
    samples = np.asarray(samples, dtype=np.int16)
    samples = np.concatenate([samples, np.zeros(-len(samples) % OPUS_FRAME_SAMPLES, dtype=np.int16)])
    encoder = OpusEncoder()
    packets = []
    for start in range(0, len(samples), OPUS_FRAME_SAMPLES):
        packets += encoder.encode(samples[start : start + OPUS_FRAME_SAMPLES])
    packets += encoder.flush()
    # libopus holds back its look-ahead and flushes it as one more packet: as many packets as frames.
    return tuple(packets[: len(samples) // OPUS_FRAME_SAMPLES])


class OpusEncoder:
    """Mono 16-bit samples at 48 kHz, 20 ms at a time, as Opus packets (libopus, 48 kbps: wideband voice
    and music on hold; Meta and browsers decode any rate). A packet may come one frame late: libopus
    holds back its look-ahead."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.sample_rate = OPUS_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._codec.bit_rate = 48_000
        self._pts = 0

    def encode(self, frame: np.ndarray) -> list[bytes]:
        """The packets ready after ``frame`` (OPUS_FRAME_SAMPLES samples)."""
        audio = av.AudioFrame.from_ndarray(
            np.asarray(frame, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        audio.sample_rate = OPUS_RATE
        audio.pts = self._pts
        self._pts += audio.samples
        return [bytes(packet) for packet in self._codec.encode(audio)]

    def flush(self) -> list[bytes]:
        """The packets held back, at the end."""
        return [bytes(packet) for packet in self._codec.encode(None)]


class OpusDecoder:
    """One stream of Opus packets, decoded in order to mono 16-bit samples at 48 kHz.

    A WhatsApp or browser voice is mono, sent as one- or two-channel Opus: libopus mixes it down.
    """

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "r")
        self._codec.sample_rate = OPUS_RATE
        self._codec.layout = "mono"
        self._codec.format = "s16"

    def decode(self, payload: bytes) -> np.ndarray:
        """The packet's samples; raises ``OpusPacketError`` when libopus cannot decode it."""
        try:
            frames = self._codec.decode(av.Packet(payload))
        except av.FFmpegError as error:
            raise OpusPacketError(f"the Opus packet cannot be decoded: {error}") from error
        if len(frames) == 1:
            return frames[0].to_ndarray().reshape(-1)
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames] or [np.zeros(0, np.int16)])


# --- Ogg Opus recordings (RFC 7845): the packets as they came, no decoding -----------------------

MAX_OPUS_FRAME_BYTES = 1_275  # RFC 6716 §3.2.1
OGG_MAX_LACING = 255  # segments of one Ogg page (RFC 3533 §6)
VENDOR = b"Switchboard"


def _frame_length(payload: bytes, at: int) -> tuple[int, int]:
    """A frame length coded at ``at`` (RFC 6716 §3.2.1: one byte below 252, else two) and where it ends."""
    if at >= len(payload):
        raise OpusPacketError("the Opus packet ends inside a frame length")
    first = payload[at]
    if first < 252:
        return first, at + 1
    if at + 1 >= len(payload):
        raise OpusPacketError("the Opus packet ends inside a frame length")
    return first + 4 * payload[at + 1], at + 2


def _coded_length(length: int) -> bytes:
    if not 0 <= length <= MAX_OPUS_FRAME_BYTES:
        raise OpusPacketError(f"an Opus frame holds at most {MAX_OPUS_FRAME_BYTES} bytes, not {length}")
    if length < 252:
        return bytes((length,))
    first = 252 + (length - 252) % 4
    return bytes((first, (length - first) // 4))


def opus_self_delimited(payload: bytes) -> bytes:
    """The packet in self-delimiting framing (RFC 6716 appendix B): the length of its last frame (or of
    every frame, when they are all one size) written after the other lengths, so that another stream's
    packet can follow it in one multistream packet. Raises ``OpusPacketError`` when the frames and
    lengths of ``payload`` do not add up (RFC 6716 §3.4's rules R1-R7)."""
    opus_packet_samples(payload)
    code = payload[0] & 0x3
    if code == 0:
        return payload[:1] + _coded_length(len(payload) - 1) + payload[1:]
    if code == 1:
        if (len(payload) - 1) % 2:
            raise OpusPacketError("a code 1 Opus packet holds two frames of one size")
        return payload[:1] + _coded_length((len(payload) - 1) // 2) + payload[1:]
    if code == 2:
        first, at = _frame_length(payload, 1)
        second = len(payload) - at - first
        if second < 0:
            raise OpusPacketError("a code 2 Opus packet's first frame is longer than the packet")
        return payload[:at] + _coded_length(second) + payload[at:]
    count = payload[1] & 0x3F
    is_variable, has_padding = bool(payload[1] & 0x80), bool(payload[1] & 0x40)
    at, padding = 2, 0
    while has_padding:
        if at >= len(payload):
            raise OpusPacketError("a code 3 Opus packet ends inside its padding length")
        padding += 254 if payload[at] == 255 else payload[at]
        has_padding = payload[at] == 255
        at += 1
    if is_variable:
        lengths = 0
        for _ in range(count - 1):
            length, at = _frame_length(payload, at)
            lengths += length
        last = len(payload) - at - padding - lengths
        if last < 0:
            raise OpusPacketError("a code 3 Opus packet's frames are longer than the packet")
        return payload[:at] + _coded_length(last) + payload[at:]
    data = len(payload) - at - padding
    if data < 0 or data % count:
        raise OpusPacketError("a code 3 Opus packet's frames of one size do not fill it")
    return payload[:at] + _coded_length(data // count) + payload[at:]


def opus_multistream_packet(packets: Iterable[bytes]) -> bytes:
    """One packet per stream, of one duration, as a multistream packet (RFC 7845 §5.1.1): every
    stream's but the last in self-delimiting framing, the last as it is."""
    *delimited, last = packets
    return b"".join([*(opus_self_delimited(packet) for packet in delimited), last])


class OggOpusWriter:
    """Opus packets written into an Ogg Opus file (RFC 7845) as they come: one logical stream of
    ``channels`` mono Opus streams (channel mapping family 1 when more than one, so that channel N is
    stream N), page by page, each page whole and flushed, so that a file whose writer died is
    readable up to its last page. The header pages are written at once.

    Pages are framed with mutagen's ``OggPage`` (RFC 3533's page layout and checksum).
    """

    def __init__(self, file: BinaryIO, *, channels: int) -> None:
        self._file = file
        self._serial = secrets.randbits(32)
        self._sequence = 0
        self.granule = 0  # 48 kHz samples written (no pre-skip: the packets come from live encoders)
        family = 1 if channels > 1 else 0
        head = struct.pack("<8sBBHIhB", b"OpusHead", 1, channels, 0, OPUS_RATE, 0, family)
        if family:
            head += bytes((channels, 0, *range(channels)))  # streams, of which coupled, channel mapping
        tags = b"OpusTags" + struct.pack("<I", len(VENDOR)) + VENDOR + struct.pack("<I", 0)
        self._page([head], is_first=True)
        self._page([tags])

    def write(self, packets: Sequence[bytes], *, samples_each: int, is_last: bool = False) -> None:
        """Add ``packets`` of ``samples_each`` 48 kHz samples each, in as few pages as hold them;
        ``is_last`` ends the stream (its last page says so)."""
        page: list[bytes] = []
        lacing = 0
        for packet in packets:
            segments = len(packet) // 255 + 1
            if page and lacing + segments > OGG_MAX_LACING:
                self._page(page)
                page, lacing = [], 0
            page.append(packet)
            lacing += segments
            self.granule += samples_each
        if page or is_last:
            self._page(page, is_last=is_last)

    def _page(self, packets: list[bytes], *, is_first: bool = False, is_last: bool = False) -> None:
        from mutagen.ogg import OggPage

        page = OggPage()
        page.serial, page.sequence, page.packets = self._serial, self._sequence, packets
        page.position = self.granule
        page.first, page.last = is_first, is_last
        self._file.write(page.write())
        self._file.flush()
        self._sequence += 1


def ogg_readable_end(file: BinaryIO) -> tuple[int, int]:
    """Where the last whole page of an Ogg file ends, and the granule position it reached (for Opus:
    48 kHz samples). A file cut in the middle of a page (its writer died) reads up to the page before;
    a page is whole when its checksum holds."""
    from mutagen.ogg import OggPage, error

    end = granule = 0
    file.seek(0)
    while True:
        try:
            page = OggPage(file)
        except (EOFError, error, struct.error):
            return end, granule
        file.seek(page.offset)
        if file.read(page.size) != page.write():  # written again, checksum and all: the same bytes
            return end, granule
        end = page.offset + page.size
        if page.position >= 0:
            granule = page.position


def ogg_packets(file: BinaryIO) -> Iterator[bytes]:
    """The packets of an Ogg file's one logical stream, in order, headers included (for Opus: OpusHead,
    OpusTags, then the audio), a packet that spans pages joined."""
    from mutagen.ogg import OggPage

    file.seek(0)
    held = b""
    while True:
        try:
            page = OggPage(file)
        except EOFError:
            return
        for index, packet in enumerate(page.packets):
            if index == len(page.packets) - 1 and not page.complete:
                held += packet
            else:
                yield held + packet
                held = b""


def opus_multistream_split(packet: bytes, *, streams: int) -> list[bytes]:
    """A multistream packet (``opus_multistream_packet``) as each stream's packet, in normal framing."""
    parts = []
    for _ in range(streams - 1):
        end = _self_delimited_end(packet)
        parts.append(_undelimited(packet[:end]))
        packet = packet[end:]
    return [*parts, packet]


def _self_delimited_end(packet: bytes) -> int:
    """Where the self-delimited packet at the start of ``packet`` ends."""
    code = packet[0] & 0x3
    if code == 0:
        length, at = _frame_length(packet, 1)
        return at + length
    if code == 1:
        length, at = _frame_length(packet, 1)
        return at + 2 * length
    if code == 2:
        first, at = _frame_length(packet, 1)
        second, at = _frame_length(packet, at)
        return at + first + second
    count, at, padding = packet[1] & 0x3F, 2, 0
    has_padding = bool(packet[1] & 0x40)
    while has_padding:
        padding += 254 if packet[at] == 255 else packet[at]
        has_padding, at = packet[at] == 255, at + 1
    if packet[1] & 0x80:
        lengths = 0
        for _ in range(count):
            length, at = _frame_length(packet, at)
            lengths += length
        return at + lengths + padding
    length, at = _frame_length(packet, at)
    return at + count * length + padding


def _undelimited(packet: bytes) -> bytes:
    """A self-delimited packet in normal framing: its added length taken out again."""
    code = packet[0] & 0x3
    if code in (0, 1):
        _, at = _frame_length(packet, 1)
        return packet[:1] + packet[at:]
    if code == 2:
        _, start = _frame_length(packet, 1)
        _, end = _frame_length(packet, start)
        return packet[:start] + packet[end:]
    count, at = packet[1] & 0x3F, 2
    has_padding = bool(packet[1] & 0x40)
    while has_padding:
        has_padding, at = packet[at] == 255, at + 1
    if packet[1] & 0x80:
        for _ in range(count - 1):
            _, at = _frame_length(packet, at)
    _, end = _frame_length(packet, at)
    return packet[:at] + packet[end:]


def decode_channels(source: Path | str | BinaryIO) -> tuple[int, np.ndarray]:
    """A recording (a WAV, or an Ogg Opus file of mono streams) as its rate and int16 samples, one
    column per channel."""
    columns = []
    try:
        with av.open(source if not isinstance(source, Path) else str(source)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{source} has no audio stream")
            stream = container.streams.audio[0]
            rate, channels = stream.rate, stream.channels
            resampler = av.AudioResampler(format="s16", layout=stream.layout, rate=rate)
            for frame in container.decode(stream):
                columns.extend(
                    resampled.to_ndarray().reshape(-1, channels) for resampled in resampler.resample(frame)
                )
    except (OSError, av.FFmpegError) as error:
        raise AudioFileError(f"cannot read {source}: {error}") from error
    return rate, np.concatenate(columns) if columns else np.zeros((0, channels), np.int16)
