"""Audio files the media legs play: decoded once into samples, any rate or channels in."""

from pathlib import Path

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
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = OPUS_RATE
    encoder.layout = "mono"
    encoder.format = "s16"
    encoder.bit_rate = 48_000  # wideband voice and music on hold; Meta and browsers decode any rate
    packets = []
    for start in range(0, len(samples), OPUS_FRAME_SAMPLES):
        frame = av.AudioFrame.from_ndarray(
            samples[start : start + OPUS_FRAME_SAMPLES].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = OPUS_RATE
        frame.pts = start
        packets.extend(bytes(packet) for packet in encoder.encode(frame))
    packets.extend(bytes(packet) for packet in encoder.encode(None))
    # libopus holds back its look-ahead and flushes it as one more packet: as many packets as frames.
    return tuple(packets[: len(samples) // OPUS_FRAME_SAMPLES])


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
