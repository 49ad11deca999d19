"""A media process that died leaves its calls' recordings in the spool: the next one stores them."""

import asyncio
import os
import time
import wave

import numpy as np
import pytest

from calls.media import CallMedia, MediaProcess
from calls.models import Call
from calls.tests.factories import CallFactory
from calls.tests.test_bridge import recording_levels
from core.audio import OggOpusWriter, opus_encode_mono, opus_multistream_packet
from recordings.models import Recording
from recordings.services import recording_read

pytestmark = pytest.mark.django_db(transaction=True)


def spool_file(path, *, seconds: float, age_s: float = 0.0):
    """A recording as a writer that died mid-write leaves it: the customer at 0.1 of full scale, the agent
    silent, then a torn last write. An Ogg Opus file is written a whole page at a time; a WAV's header is
    rewritten after each complete write (Python's wave module), so it covers what came before."""
    times = np.arange(round(48_000 * seconds)) / 48_000
    customer = np.round(0.1 * np.sqrt(2) * 32768 * np.sin(2 * np.pi * 440 * times)).astype(np.int16)
    if path.suffix == ".ogg":
        with path.open("wb") as file:
            writer = OggOpusWriter(file, channels=2)
            silence = opus_encode_mono(np.zeros(960, np.int16))[0]
            packets = [opus_multistream_packet([packet, silence]) for packet in opus_encode_mono(customer)]
            writer.write(packets, samples_each=960)
    else:
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(48_000)
            wav.writeframes(np.column_stack((customer, np.zeros_like(customer))).astype("<i2").tobytes())
    with path.open("ab") as torn:
        torn.write(b"OggS\x00\x02" * 101 if path.suffix == ".ogg" else b"\x01\x02" * 501)
    if age_s:
        os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


@pytest.mark.parametrize("suffix", [".ogg", ".wav"], ids=["ogg_opus", "wav_of_an_earlier_version"])
def test_leftover_recordings_of_ended_calls_are_stored_and_live_and_empty_ones_not(
    recordings_storage, tmp_path, suffix
):
    spool = tmp_path / "spool"
    spool.mkdir()
    ended = CallFactory(status=Call.Status.ENDED)
    live = CallFactory(status=Call.Status.CONNECTED)
    just_ended = CallFactory(status=Call.Status.ENDED)
    spool_file(spool / f"call-{ended.pk}{suffix}", seconds=1.5, age_s=120)
    spool_file(spool / f"call-{live.pk}{suffix}", seconds=1.0, age_s=120)
    spool_file(spool / f"call-{just_ended.pk}{suffix}", seconds=1.0)  # its own process may still store it
    no_conversation = CallFactory(status=Call.Status.ENDED)
    spool_file(spool / f"call-{no_conversation.pk}{suffix}", seconds=0, age_s=120)  # no agent came: empty
    never_written = CallFactory(status=Call.Status.ENDED)
    (spool / f"call-{never_written.pk}{suffix}").touch()  # the process died before writing a byte
    os.utime(spool / f"call-{never_written.pk}{suffix}", (time.time() - 120, time.time() - 120))
    (spool / f"call-notanumber{suffix}").write_bytes(b"junk")
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=spool)

    stored = asyncio.run(media.store_leftover_recordings())

    recording = Recording.objects.get()
    assert stored == 1
    assert recording.call_id == ended.pk
    assert recording.duration_s == pytest.approx(1.5)
    assert recording.format == (Recording.Format.OGG_OPUS if suffix == ".ogg" else Recording.Format.WAV)
    with recording_read(recording) as audio:  # whole: the torn write was left out
        customer_rms, agent_rms = recording_levels(audio)
    assert customer_rms == pytest.approx(0.1, abs=0.01)
    assert agent_rms < 0.001
    assert sorted(path.name for path in spool.iterdir()) == sorted(
        [f"call-{live.pk}{suffix}", f"call-{just_ended.pk}{suffix}", f"call-notanumber{suffix}"]
    )


def test_a_leftover_another_media_process_takes_meanwhile_is_passed_over(
    recordings_storage, tmp_path, monkeypatch
):
    """Two media processes starting together read the same spool: a file the other one stored (and
    removed) while this one looked at it is not this one's to store, and does not stop it."""
    from calls import media as media_module

    spool = tmp_path / "spool"
    spool.mkdir()
    first, taken = sorted(
        (CallFactory(status=Call.Status.ENDED) for _ in range(2)), key=lambda call: f"call-{call.pk}.ogg"
    )
    for call in (first, taken):
        spool_file(spool / f"call-{call.pk}.ogg", seconds=1.0, age_s=120)
    status_of = media_module._call_status

    def other_process_stores_the_next(call_id: int) -> str | None:
        if call_id == first.pk:  # meanwhile the other process stores (and removes) the next file
            (spool / f"call-{taken.pk}.ogg").unlink()
        return status_of(call_id)

    monkeypatch.setattr(media_module, "_call_status", other_process_stores_the_next)
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=spool)

    stored = asyncio.run(media.store_leftover_recordings())

    assert stored == 1
    assert list(Recording.objects.values_list("call_id", flat=True)) == [first.pk]
    assert list(spool.iterdir()) == []
