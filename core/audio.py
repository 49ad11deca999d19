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
