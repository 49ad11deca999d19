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
from recordings.models import Recording

pytestmark = pytest.mark.django_db(transaction=True)


def spool_file(path, *, seconds: float, age_s: float = 0.0):
    """A recording as a writer that died mid-write leaves it: both channels, then a torn last write
    (the wave module rewrites the header after each complete write, so it covers what came before)."""
    samples = np.zeros((round(48_000 * seconds), 2), dtype="<i2")
    samples[:, 0] = 3277  # the customer at 0.1 of full scale; the agent silent
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(samples.tobytes())
    with path.open("ab") as torn:
        torn.write(b"\x01\x02" * 501)
    if age_s:
        os.utime(path, (time.time() - age_s, time.time() - age_s))
    return path


def test_leftover_recordings_of_ended_calls_are_stored_and_live_and_empty_ones_not(
    recordings_storage, tmp_path
):
    spool = tmp_path / "spool"
    spool.mkdir()
    ended = CallFactory(status=Call.Status.ENDED)
    live = CallFactory(status=Call.Status.CONNECTED)
    just_ended = CallFactory(status=Call.Status.ENDED)
    spool_file(spool / f"call-{ended.pk}.wav", seconds=1.5, age_s=120)
    spool_file(spool / f"call-{live.pk}.wav", seconds=1.0, age_s=120)
    spool_file(spool / f"call-{just_ended.pk}.wav", seconds=1.0)  # its own process may still store it
    no_conversation = CallFactory(status=Call.Status.ENDED)
    spool_file(spool / f"call-{no_conversation.pk}.wav", seconds=0, age_s=120)  # no agent came: empty
    never_written = CallFactory(status=Call.Status.ENDED)
    (spool / f"call-{never_written.pk}.wav").touch()  # the process died before writing a byte
    os.utime(spool / f"call-{never_written.pk}.wav", (time.time() - 120, time.time() - 120))
    (spool / "call-notanumber.wav").write_bytes(b"junk")
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=spool)

    stored = asyncio.run(media.store_leftover_recordings())

    recording = Recording.objects.get()
    assert stored == 1
    assert recording.call_id == ended.pk
    assert recording.duration_s == pytest.approx(1.5)
    assert recording.customer_rms == pytest.approx(0.1, abs=0.001)
    assert recording.agent_rms == 0.0
    assert sorted(path.name for path in spool.iterdir()) == sorted(
        [f"call-{live.pk}.wav", f"call-{just_ended.pk}.wav", "call-notanumber.wav"]
    )
