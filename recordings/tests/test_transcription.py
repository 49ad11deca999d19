"""Each side's speech cut from its own channel and transcribed as one conversation: the speaker of
every segment is exact."""

import itertools
import wave
from pathlib import Path

import jiwer
import numpy as np
import pytest

from core.audio import (
    OPUS_FRAME_SAMPLES,
    OggOpusWriter,
    decode_mono_s16,
    opus_encode_mono,
    opus_multistream_packet,
)
from recordings.transcription import AGENT, CUSTOMER, TranscriptionError, transcribe_recording

AUDIO = Path(__file__).resolve().parents[2] / "whatsapp" / "sandbox" / "audio"
RATE = 48_000  # as the bridge records
# What each clip says (whatsapp/sandbox/audio/README.md).
SAID = {
    "customer_order.wav": "Hello, I'm calling about my order, number four five two one.",
    "customer_refund.wav": "Hi, I would like a refund, please, the package arrived damaged.",
    "customer_goodbye.wav": "Yes, that works for me. Thank you, goodbye.",
}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Words only: lower case, contractions expanded, digits as words ("4521" is "four five two one").
WORDS = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.ExpandCommonEnglishContractions(),
        jiwer.SubstituteRegexes({str(digit): f" {word} " for digit, word in enumerate(DIGIT_WORDS)}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def stereo_recording(path: Path, *, left: Path | None, right: Path | None, right_starts_s: float) -> Path:
    """A call as the bridge records it: 48 kHz 16-bit, the customer left, the agent right."""
    sides = [decode_mono_s16(side, rate=RATE) if side else np.zeros(0, np.int16) for side in (left, right)]
    offset = round(right_starts_s * RATE)
    length = max(len(sides[0]), offset + len(sides[1])) + RATE // 2
    samples = np.zeros((length, 2), dtype="<i2")
    samples[: len(sides[0]), 0] = sides[0]
    samples[offset : offset + len(sides[1]), 1] = sides[1]
    return write_recording(path, samples)


def dialogue_recording(path: Path, turns: list[tuple[str, Path]], *, pause_s: float = 0.4) -> Path:
    """A call as the bridge records it, each turn on its speaker's channel after the one before."""
    spoken = [(0 if speaker == CUSTOMER else 1, decode_mono_s16(clip, rate=RATE)) for speaker, clip in turns]
    pause = round(pause_s * RATE)
    samples = np.zeros((pause + sum(len(turn) + pause for _, turn in spoken), 2), dtype="<i2")
    start = pause
    for channel, turn in spoken:
        samples[start : start + len(turn), channel] = turn
        start += len(turn) + pause
    return write_recording(path, samples)


def write_recording(path: Path, samples: np.ndarray) -> Path:
    """Two columns of samples as a recording: Ogg Opus as the bridge writes it (each side encoded in 20 ms
    packets, as a phone or browser sends them) for a ``.ogg`` path, else a WAV (of an earlier version)."""
    if path.suffix == ".ogg":
        customer, agent = (opus_encode_mono(samples[:, side]) for side in (0, 1))
        with path.open("wb") as file:
            OggOpusWriter(file, channels=2).write(
                [opus_multistream_packet(pair) for pair in zip(customer, agent, strict=True)],
                samples_each=OPUS_FRAME_SAMPLES,
                is_last=True,
            )
        return path
    with wave.open(str(path), "wb") as recording:
        recording.setnchannels(2)
        recording.setsampwidth(2)
        recording.setframerate(RATE)
        recording.writeframes(samples.tobytes())
    return path


def word_error_rate(reference: str, hypothesis: str) -> float:
    return jiwer.wer(reference, hypothesis, reference_transform=WORDS, hypothesis_transform=WORDS)


def test_each_side_is_transcribed_with_its_speaker_in_time_order(tmp_path):
    path = stereo_recording(
        tmp_path / "call.wav",
        left=AUDIO / "customer_order.wav",
        right=AUDIO / "customer_goodbye.wav",
        right_starts_s=6,
    )

    segments = transcribe_recording(path)

    customer = " ".join(segment.text for segment in segments if segment.speaker == CUSTOMER)
    agent = " ".join(segment.text for segment in segments if segment.speaker == AGENT)
    assert "order" in customer.lower() and "4521" in customer
    assert "goodbye" in agent.lower() and "order" not in agent.lower()
    assert segments[0].speaker == CUSTOMER
    assert all(a.start_s <= b.start_s for a, b in itertools.pairwise(segments))
    assert min(segment.start_s for segment in segments if segment.speaker == AGENT) >= 5.5
    assert all(0 < segment.confidence <= 1 for segment in segments)


@pytest.mark.parametrize("suffix", [".ogg", ".wav"], ids=["ogg_opus", "wav_of_an_earlier_version"])
def test_a_dialogue_is_transcribed_word_for_word_per_speaker_turn_by_turn(tmp_path, suffix):
    turns = [
        (CUSTOMER, "customer_order.wav"),
        (AGENT, "customer_goodbye.wav"),
        (CUSTOMER, "customer_refund.wav"),
    ]
    path = dialogue_recording(
        tmp_path / f"call{suffix}", [(speaker, AUDIO / clip) for speaker, clip in turns]
    )

    segments = transcribe_recording(path)

    for speaker in (CUSTOMER, AGENT):
        said = " ".join(SAID[clip] for who, clip in turns if who == speaker)
        heard = " ".join(segment.text for segment in segments if segment.speaker == speaker)
        assert word_error_rate(said, heard) <= 0.15, (speaker, heard)
    # Turn by turn, as spoken: one speaker's pause never pulls a later turn before the other's reply.
    assert [speaker for speaker, _ in itertools.groupby(segment.speaker for segment in segments)] == [
        CUSTOMER,
        AGENT,
        CUSTOMER,
    ]


@pytest.fixture
def windows_heard(monkeypatch) -> list[int]:
    """How many 30-second windows Whisper's encoder is given, each time it is called."""
    import faster_whisper

    heard: list[int] = []
    encode = faster_whisper.WhisperModel.encode

    def counted(model, features):
        heard.append(1 if features.ndim == 2 else features.shape[0])
        return encode(model, features)

    monkeypatch.setattr(faster_whisper.WhisperModel, "encode", counted)
    return heard


def test_both_sides_of_a_short_call_are_heard_in_one_window(tmp_path, windows_heard):
    # Each side's speech alone would be a window of its own, padded with silence to 30 s.
    turns = [
        (CUSTOMER, "customer_order.wav"),
        (AGENT, "customer_goodbye.wav"),
        (CUSTOMER, "customer_refund.wav"),
    ]
    path = dialogue_recording(tmp_path / "call.ogg", [(speaker, AUDIO / clip) for speaker, clip in turns])

    segments = transcribe_recording(path)

    assert sum(windows_heard) == 1
    assert [speaker for speaker, _ in itertools.groupby(segment.speaker for segment in segments)] == [
        CUSTOMER,
        AGENT,
        CUSTOMER,
    ]


def test_a_long_silence_costs_nothing_and_what_follows_it_keeps_its_time(tmp_path, windows_heard):
    path = stereo_recording(
        tmp_path / "call.ogg",
        left=AUDIO / "customer_order.wav",
        right=AUDIO / "customer_goodbye.wav",
        right_starts_s=75,
    )

    segments = transcribe_recording(path)

    assert sum(windows_heard) == 1  # 80 s of recording, 10 s of speech
    (customer,) = (segment for segment in segments if segment.speaker == CUSTOMER)
    (agent,) = (segment for segment in segments if segment.speaker == AGENT)
    assert "4521" in customer.text and customer.start_s < 1.0 and customer.end_s < 5.5
    assert "goodbye" in agent.text.lower() and 75.0 <= agent.start_s < 76.0 and agent.end_s < 80.0


def test_both_sides_speaking_at_once_are_each_heard_on_their_own(tmp_path):
    path = stereo_recording(
        tmp_path / "call.ogg",
        left=AUDIO / "customer_order.wav",
        right=AUDIO / "customer_refund.wav",
        right_starts_s=1.5,
    )

    segments = transcribe_recording(path)

    heard = {
        speaker: " ".join(segment.text for segment in segments if segment.speaker == speaker)
        for speaker in (CUSTOMER, AGENT)
    }
    assert word_error_rate(SAID["customer_order.wav"], heard[CUSTOMER]) <= 0.15, heard
    assert word_error_rate(SAID["customer_refund.wav"], heard[AGENT]) <= 0.15, heard


def test_an_ogg_opus_recording_transcribes_with_the_words_and_levels_of_the_same_call_in_wav(tmp_path):
    turns = [
        (CUSTOMER, "customer_refund.wav"),
        (AGENT, "customer_order.wav"),
        (CUSTOMER, "customer_goodbye.wav"),
    ]
    spoken = [(speaker, AUDIO / clip) for speaker, clip in turns]
    heard, levels = {}, {}
    for suffix in (".wav", ".ogg"):
        segments = transcribe_recording(
            dialogue_recording(tmp_path / f"call{suffix}", spoken),
            on_levels=lambda customer, agent, suffix=suffix: levels.__setitem__(suffix, (customer, agent)),
        )
        heard[suffix] = {
            speaker: " ".join(segment.text for segment in segments if segment.speaker == speaker)
            for speaker in (CUSTOMER, AGENT)
        }

    for speaker in (CUSTOMER, AGENT):
        said = " ".join(SAID[clip] for who, clip in turns if who == speaker)
        assert word_error_rate(said, heard[".ogg"][speaker]) <= word_error_rate(said, heard[".wav"][speaker])
    assert levels[".ogg"] == pytest.approx(levels[".wav"], rel=0.05)
    assert min(levels[".wav"]) > 0.02
    assert (tmp_path / "call.ogg").stat().st_size < (tmp_path / "call.wav").stat().st_size / 10


def test_silence_is_an_empty_transcript_and_an_unreadable_file_an_error(tmp_path):
    silent = stereo_recording(tmp_path / "silent.wav", left=None, right=None, right_starts_s=0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF nothing")

    assert transcribe_recording(silent) == []
    with pytest.raises(TranscriptionError):
        transcribe_recording(broken)


def test_whisper_asked_to_use_a_gpu_it_cannot_use_runs_on_the_cpu_and_says_so(
    tmp_path, settings, monkeypatch, caplog
):
    import ctranslate2
    import faster_whisper

    from recordings import transcription

    class NoUsableGpu(faster_whisper.WhisperModel):
        """As CTranslate2 answers on a machine whose GPU has no usable driver (seen on this one)."""

        def __init__(self, *args, device: str = "auto", **kwargs) -> None:
            if device == "cuda":
                raise RuntimeError("CUDA failed with error CUDA driver version is insufficient")
            super().__init__(*args, device=device, **kwargs)

    monkeypatch.setattr(faster_whisper, "WhisperModel", NoUsableGpu)
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)
    settings.WHISPER_DEVICE = "auto"
    transcription._load_model.cache_clear()
    path = stereo_recording(
        tmp_path / "call.wav", left=AUDIO / "customer_order.wav", right=None, right_starts_s=0
    )
    try:
        loaded = transcription.whisper_model()
        segments = transcribe_recording(path)
    finally:
        transcription._load_model.cache_clear()

    assert loaded.device == "cpu"
    assert "cannot run on the GPU" in caplog.text
    assert "4521" in " ".join(segment.text for segment in segments)


def test_whisper_that_fails_on_the_gpu_while_transcribing_finishes_on_the_cpu_and_stays_there(
    tmp_path, settings, monkeypatch, caplog
):
    from recordings import transcription

    class FailingPipeline:
        def transcribe(self, *args, **kwargs):
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    class GpuModel(transcription.LoadedModel):
        def batched(self):
            return FailingPipeline()

    real_load = transcription._load_model
    monkeypatch.setattr(
        transcription,
        "_load_model",
        lambda name, device, *rest: (
            GpuModel(None, "cuda") if device != "cpu" else real_load(name, device, *rest)
        ),
    )
    settings.WHISPER_DEVICE = "cuda"
    path = stereo_recording(
        tmp_path / "call.wav", left=AUDIO / "customer_order.wav", right=None, right_starts_s=0
    )
    try:
        segments = transcribe_recording(path)
        device_after = transcription.whisper_model().device
    finally:
        transcription._gpu_failed.clear()

    assert "4521" in " ".join(segment.text for segment in segments)
    assert device_after == "cpu"
    assert "Whisper failed on the GPU" in caplog.text
