import hashlib
import wave

import pytest

from calls.signals import recording_finished
from calls.tests.factories import CallFactory
from recordings.models import Recording

pytestmark = pytest.mark.django_db


def spooled(path, seconds: float = 0.5):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        wav.writeframes(bytes(4 * round(48_000 * seconds)))
    return path


def finish(call, path, **facts):
    recording_finished.send(
        sender=None,
        call_id=call.pk,
        path=path,
        **{"duration_s": 0.5, "customer_rms": 0.08, "agent_rms": 0.07, **facts},
    )


def test_a_finished_recording_moves_from_the_spool_into_the_recordings_storage(recordings_storage, tmp_path):
    call = CallFactory()
    path = spooled(tmp_path / "call.wav")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    finish(call, path)

    recording = Recording.objects.get(call=call)
    assert not path.exists()
    assert recording.file.path.startswith(str(recordings_storage))
    assert recording.file.name.endswith(f"call-{call.pk}.wav")
    assert (recording.sha256, recording.size_bytes) == (digest, 44 + 4 * 24_000)
    assert (recording.channels, recording.sample_rate, recording.duration_s) == (2, 48_000, 0.5)
    with recording.file.open("rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == digest


def test_a_second_recording_for_the_same_call_is_discarded(recordings_storage, tmp_path):
    call = CallFactory()
    finish(call, spooled(tmp_path / "first.wav"))
    second = spooled(tmp_path / "second.wav", seconds=1.0)

    finish(call, second, duration_s=1.0)

    assert Recording.objects.get(call=call).duration_s == 0.5
    assert not second.exists()
    assert len(list(recordings_storage.rglob("*.wav"))) == 1


def test_a_recording_for_a_call_that_is_gone_leaves_nothing_stored(recordings_storage, tmp_path):
    call = CallFactory()
    call_id = call.pk
    call.delete()  # erased (a contact's data removed) while the media process was finishing it
    path = spooled(tmp_path / "orphan.wav")

    recording_finished.send(
        sender=None, call_id=call_id, path=path, duration_s=0.5, customer_rms=0.1, agent_rms=0.1
    )

    assert not path.exists()
    assert not list(recordings_storage.rglob("*.wav"))
    assert Recording.objects.count() == 0
