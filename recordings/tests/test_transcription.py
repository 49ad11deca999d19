"""Each channel of a recording transcribed on its own: the speaker of every segment is exact."""

import itertools
import wave
from pathlib import Path

import numpy as np
import pytest

from core.audio import decode_mono_s16
from recordings.transcription import AGENT, CUSTOMER, TranscriptionError, transcribe_recording

AUDIO = Path(__file__).resolve().parents[2] / "whatsapp" / "sandbox" / "audio"


def stereo_recording(path: Path, *, left: Path | None, right: Path | None, right_starts_s: float) -> Path:
    """A call as the bridge records it: 48 kHz 16-bit, the customer left, the agent right."""
    rate = 48_000
    sides = [decode_mono_s16(side, rate=rate) if side else np.zeros(0, np.int16) for side in (left, right)]
    offset = round(right_starts_s * rate)
    length = max(len(sides[0]), offset + len(sides[1])) + rate // 2
    samples = np.zeros((length, 2), dtype="<i2")
    samples[: len(sides[0]), 0] = sides[0]
    samples[offset : offset + len(sides[1]), 1] = sides[1]
    with wave.open(str(path), "wb") as recording:
        recording.setnchannels(2)
        recording.setsampwidth(2)
        recording.setframerate(rate)
        recording.writeframes(samples.tobytes())
    return path


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


def test_silence_is_an_empty_transcript_and_an_unreadable_file_an_error(tmp_path):
    silent = stereo_recording(tmp_path / "silent.wav", left=None, right=None, right_starts_s=0)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF nothing")

    assert transcribe_recording(silent) == []
    with pytest.raises(TranscriptionError):
        transcribe_recording(broken)
