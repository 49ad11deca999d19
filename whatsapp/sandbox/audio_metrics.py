"""Measurements of WAV files for tests and benchmarks: is there sound, and how long is it."""

import wave
from pathlib import Path

import numpy as np


def wav_samples(path: Path) -> np.ndarray:
    """The 16-bit PCM samples of ``path`` as floats in [-1, 1), all channels mixed down to one."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported, not {8 * wav.getsampwidth()}-bit")
        channels = wav.getnchannels()
        raw = wav.readframes(wav.getnframes())
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1)


def wav_rms(path: Path) -> float:
    """Root mean square level of the whole file, relative to full scale: 0.0 is digital silence.

    espeak-ng speech measures about 0.07-0.10; a file with no samples measures 0.0.
    """
    samples = wav_samples(path)
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples))))


def wav_duration_s(path: Path) -> float:
    """Length of the file in seconds, from its header."""
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()
