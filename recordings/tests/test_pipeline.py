"""After the call: the recording is transcribed, then summarised; progress and the summary are
pushed live; every step is idempotent, and a recording that cannot be read fails with its reason."""

import json
import uuid
from datetime import timedelta

import pytest
import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from agents.tests.factories import AgentFactory
from calls.models import Call
from calls.routing import call_wrap_up
from calls.tests.factories import CallFactory, ContactFactory
from core.realtime import flush
from core.tests.test_realtime import listen, receive_or_none
from recordings import broker, services
from recordings.models import Recording, Summary, Transcript
from recordings.services import (
    MAX_ATTEMPTS,
    TransientError,
    call_summarise,
    contact_erase,
    recording_store,
    recording_transcribe,
    recordings_requeue_stalled,
)
from recordings.tests.test_transcription import AUDIO, stereo_recording

pytestmark = pytest.mark.django_db(transaction=True)


def ended_call(**fields) -> Call:
    defaults = {"end_reason": Call.EndReason.COMPLETED, "end_detail": "Meta: completed", "talk_seconds": 14}
    return CallFactory(
        contact=ContactFactory(name="Lucia Santos"), agent=AgentFactory(), status=Call.Status.ENDED,
        **{**defaults, **fields},
    )  # fmt: skip


def stored(
    call, tmp_path, *, left=AUDIO / "customer_order.wav", right=AUDIO / "customer_goodbye.wav"
) -> Recording:
    path = stereo_recording(tmp_path / "call.ogg", left=left, right=right, right_starts_s=6)  # as recorded
    return recording_store(call_id=call.pk, path=path, duration_s=12.0)


def queued_on(queue: str) -> list[tuple[str, str]]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    messages = client.lrange(queue, 0, -1)
    client.delete(queue)
    client.close()
    return [
        (json.loads(message)["headers"]["task"], json.loads(message)["headers"]["kwargsrepr"])
        for message in messages
    ]


def frames_of(layer, channel) -> list[dict]:
    frames = []
    while (frame := async_to_sync(receive_or_none)(layer, channel, 0.3)) is not None:
        frames.append(frame)
    return frames


def test_a_recorded_call_is_transcribed_by_speaker_summarised_and_its_agent_told(
    recordings_storage, tmp_path
):
    call = ended_call()
    recording = stored(call, tmp_path)
    agent_layer, agent_channel = async_to_sync(listen)(f"agent.{call.agent_id}")
    page_layer, page_channel = async_to_sync(listen)(f"call.{call.pk}")

    is_transcribed = recording_transcribe(recording_id=recording.pk)
    summary = call_summarise(call_id=call.pk)
    flush()

    transcript = Transcript.objects.get(call=call)
    customer = " ".join(
        segment["text"] for segment in transcript.segments if segment["speaker"] == "customer"
    )
    agent = " ".join(segment["text"] for segment in transcript.segments if segment["speaker"] == "agent")
    assert is_transcribed is True
    assert "order" in customer.lower() and "goodbye" in agent.lower()
    assert transcript.segments[0]["speaker"] == "customer"
    assert transcript.text.startswith(transcript.segments[0]["text"])
    assert (summary.backend, summary.sentiment in {"positive", "neutral", "negative"}) == ("local", True)
    assert summary.paragraph
    recording.refresh_from_db()
    assert (recording.status, recording.progress, recording.attempts) == (Recording.Status.DONE, 100, 1)
    assert recording.format == Recording.Format.OGG_OPUS
    assert recording.customer_rms > 0.02 and recording.agent_rms > 0.02  # measured as it was decoded
    page = frames_of(page_layer, page_channel)
    progress = [(f["status"], f["progress"]) for f in page if f["type"] == "recording.progress"]
    assert progress[0] == ("transcribing", 0)
    assert progress[-2:] == [("summarising", 0), ("done", 100)]
    assert page[-1] == {"type": "summary.ready", "call_id": call.pk, "contact": str(call.contact)}
    assert [frame["type"] for frame in frames_of(agent_layer, agent_channel)] == ["summary.ready"]


def test_transcribing_again_does_the_work_once(recordings_storage, tmp_path):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    recording_transcribe(recording_id=recording.pk)

    again = recording_transcribe(recording_id=recording.pk)

    assert again is False
    assert Transcript.objects.filter(call=call).count() == 1


def test_a_silent_recording_is_an_empty_transcript_and_a_summary_of_the_facts(recordings_storage, tmp_path):
    call = ended_call(end_reason=Call.EndReason.ABANDONED, talk_seconds=None)
    recording = stored(call, tmp_path, left=None, right=None)

    recording_transcribe(recording_id=recording.pk)
    summary = call_summarise(call_id=call.pk)

    assert Transcript.objects.get(call=call).segments == []
    assert Recording.objects.filter(pk=recording.pk, customer_rms=0.0, agent_rms=0.0).exists()
    assert summary.outcome == "no_conversation"
    assert Recording.objects.get(pk=recording.pk).status == Recording.Status.DONE


def test_a_damaged_recording_fails_with_its_reason_and_no_transcript(recordings_storage, tmp_path):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    sealed = recordings_storage / recording.file.name
    damaged = bytearray(sealed.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    sealed.write_bytes(bytes(damaged))

    is_transcribed = recording_transcribe(recording_id=recording.pk)

    recording.refresh_from_db()
    assert is_transcribed is False
    assert recording.status == Recording.Status.FAILED
    assert recording.failure
    assert not Transcript.objects.filter(call=call).exists()
    assert recording_transcribe(recording_id=recording.pk) is False  # failed for good: not tried again


def test_a_recording_the_storage_cannot_give_is_left_for_a_retry(recordings_storage, tmp_path):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    (recordings_storage / recording.file.name).unlink()

    with pytest.raises(TransientError):
        recording_transcribe(recording_id=recording.pk)

    assert Recording.objects.get(pk=recording.pk).status == Recording.Status.QUEUED  # for the retry to claim


def test_a_recording_that_keeps_failing_is_given_up_after_its_attempts(recordings_storage, tmp_path):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    Recording.objects.filter(pk=recording.pk).update(attempts=MAX_ATTEMPTS)  # each claim lost with its worker

    is_transcribed = recording_transcribe(recording_id=recording.pk)

    recording.refresh_from_db()
    assert is_transcribed is False
    assert (recording.status, recording.failure) == (
        Recording.Status.FAILED,
        f"gave up after {MAX_ATTEMPTS} attempts",
    )


def test_a_summary_written_while_the_contact_is_erased_is_not_kept(recordings_storage, tmp_path, monkeypatch):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    recording_transcribe(recording_id=recording.pk)
    real_summarise = services.summarise

    def erased_meanwhile(**arguments):
        found = real_summarise(**arguments)  # the slow part: a model endpoint, say
        contact_erase(contact_id=call.contact_id, requested_by_id=None, reason="request 7")
        return found

    monkeypatch.setattr(services, "summarise", erased_meanwhile)

    summary = call_summarise(call_id=call.pk)

    assert summary is None
    assert not Summary.objects.exists()


def test_filing_the_wrap_up_summarises_the_call_again(recordings_storage, tmp_path):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    recording_transcribe(recording_id=recording.pk)
    call_summarise(call_id=call.pk)
    queued_on(settings.CELERY_SUMMARIES_QUEUE)

    call_wrap_up(agent_id=call.agent_id, call_id=call.pk, disposition="wrong_number", notes="")

    assert queued_on(settings.CELERY_SUMMARIES_QUEUE) == [
        ("recordings.summarise_call", repr({"call_id": call.pk}))
    ]
    call_summarise(call_id=call.pk)
    assert Summary.objects.get(call=call).outcome == "wrong_number"


def test_stalled_work_is_queued_again(recordings_storage, tmp_path):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    queued_on(settings.CELERY_RECORDINGS_QUEUE)
    Recording.objects.filter(pk=recording.pk).update(
        status=Recording.Status.TRANSCRIBING, updated_at=timezone.now() - timedelta(minutes=20)
    )

    requeued = recordings_requeue_stalled()

    assert requeued == 1
    assert queued_on(settings.CELERY_RECORDINGS_QUEUE) == [
        ("recordings.transcribe_call", repr({"recording_id": recording.pk}))
    ]
    assert recordings_requeue_stalled() == 0  # just queued: not stalled


def test_the_sweep_leaves_a_recording_waiting_its_turn_in_line_and_queues_a_lost_one_once(
    recordings_storage, tmp_path
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)  # its transcription waits behind a backlog
    Recording.objects.filter(pk=recording.pk).update(updated_at=timezone.now() - timedelta(minutes=20))
    transcription = ("recordings.transcribe_call", repr({"recording_id": recording.pk}))

    while_waiting = recordings_requeue_stalled()
    in_line = queued_on(settings.CELERY_RECORDINGS_QUEUE)  # read and emptied: the broker lost it
    once_lost = recordings_requeue_stalled()

    assert (while_waiting, in_line) == (0, [transcription])
    assert (once_lost, queued_on(settings.CELERY_RECORDINGS_QUEUE)) == (1, [transcription])
    assert Recording.objects.get(pk=recording.pk).status == Recording.Status.QUEUED


def test_a_transcription_a_worker_has_taken_and_not_finished_is_not_queued_again(
    recordings_storage, tmp_path
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    Recording.objects.filter(pk=recording.pk).update(updated_at=timezone.now() - timedelta(minutes=20))
    queue, tag = settings.CELERY_RECORDINGS_QUEUE, f"test-{uuid.uuid4()}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    [message] = client.lrange(queue, 0, -1)
    client.delete(queue)
    # As kombu keeps a message a worker took and has not acknowledged (acks_late: not done yet).
    client.hset(broker.UNACKED_KEY, tag, json.dumps([json.loads(message), "", queue]))
    try:
        requeued = recordings_requeue_stalled()
    finally:
        client.hdel(broker.UNACKED_KEY, tag)
        client.close()

    assert (requeued, queued_on(queue)) == (0, [])


def test_the_sweep_leaves_a_summary_waiting_on_its_queue_in_line_and_queues_a_lost_one_once(
    recordings_storage, tmp_path
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    queued_on(settings.CELERY_RECORDINGS_QUEUE)
    recording_transcribe(recording_id=recording.pk)  # its summary is queued on the summaries' queue
    Recording.objects.filter(pk=recording.pk).update(updated_at=timezone.now() - timedelta(minutes=20))
    summary = ("recordings.summarise_call", repr({"call_id": call.pk}))

    while_waiting = recordings_requeue_stalled()
    in_line = queued_on(settings.CELERY_SUMMARIES_QUEUE)
    once_lost = recordings_requeue_stalled()

    assert (while_waiting, in_line) == (0, [summary])
    assert (once_lost, queued_on(settings.CELERY_SUMMARIES_QUEUE)) == (1, [summary])
    assert queued_on(settings.CELERY_RECORDINGS_QUEUE) == []


def test_a_second_copy_of_a_transcription_changes_nothing_and_queues_no_second_summary(
    recordings_storage, tmp_path
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    queued_on(settings.CELERY_RECORDINGS_QUEUE)
    recording_transcribe(recording_id=recording.pk)
    queued_on(settings.CELERY_SUMMARIES_QUEUE)
    before = Recording.objects.values().get(pk=recording.pk)

    again = recording_transcribe(recording_id=recording.pk)

    assert again is False
    assert Recording.objects.values().get(pk=recording.pk) == before
    assert (queued_on(settings.CELERY_SUMMARIES_QUEUE), queued_on(settings.CELERY_RECORDINGS_QUEUE)) == (
        [],
        [],
    )


def test_a_second_copy_of_a_summary_changes_pushes_and_publishes_nothing(
    recordings_storage, tmp_path, monkeypatch
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    recording_transcribe(recording_id=recording.pk)
    first = call_summarise(call_id=call.pk)
    flush()
    page_layer, page_channel = async_to_sync(listen)(f"call.{call.pk}")
    published = []
    monkeypatch.setattr(services, "event_publish", lambda kind, **_: published.append(kind))

    again = call_summarise(call_id=call.pk)
    flush()

    assert (again.pk, Summary.objects.get(call=call).updated_at) == (first.pk, first.updated_at)
    assert (frames_of(page_layer, page_channel), published) == ([], [])


def test_a_wrap_up_filed_while_the_summary_is_written_is_summarised_once_more(
    recordings_storage, tmp_path, monkeypatch
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    queued_on(settings.CELERY_RECORDINGS_QUEUE)
    recording_transcribe(recording_id=recording.pk)
    queued_on(settings.CELERY_SUMMARIES_QUEUE)
    real_summarise = services.summarise

    def filed_meanwhile(**arguments):
        found = real_summarise(**arguments)  # the slow part: a model endpoint, say
        call_wrap_up(agent_id=call.agent_id, call_id=call.pk, disposition="wrong_number", notes="")
        return found

    monkeypatch.setattr(services, "summarise", filed_meanwhile)
    first = call_summarise(call_id=call.pk)
    monkeypatch.setattr(services, "summarise", real_summarise)
    queued = queued_on(settings.CELERY_SUMMARIES_QUEUE)
    again = call_summarise(call_id=call.pk)

    assert first.outcome != "wrong_number"  # written of the call as it was read
    assert queued == [("recordings.summarise_call", repr({"call_id": call.pk}))] * len(queued) and queued
    assert again.outcome == "wrong_number"
    assert call_summarise(call_id=call.pk).updated_at == again.updated_at  # now current: nothing more


def test_the_sweep_queues_nothing_again_while_the_broker_cannot_say_what_waits(
    recordings_storage, tmp_path, settings
):
    call = ended_call()
    recording = stored(call, tmp_path, right=None)
    queued_on(settings.CELERY_RECORDINGS_QUEUE)  # lost, perhaps: the broker cannot say
    Recording.objects.filter(pk=recording.pk).update(updated_at=timezone.now() - timedelta(minutes=20))
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    requeued = recordings_requeue_stalled()

    assert requeued == 0
    assert Recording.objects.get(pk=recording.pk).status == Recording.Status.QUEUED  # for a later sweep


def test_a_recordings_worker_hands_back_the_memory_of_each_transcription(
    recordings_storage, tmp_path, monkeypatch
):
    from recordings import tasks

    handed_back = []
    monkeypatch.setattr(tasks, "release_freed_memory", lambda: handed_back.append(True) or True)
    recording = stored(ended_call(), tmp_path)

    tasks.transcribe_call.apply(kwargs={"recording_id": recording.pk})
    tasks.transcribe_call.apply(kwargs={"recording_id": recording.pk})  # a duplicate: nothing to do

    assert Transcript.objects.filter(call=recording.call).count() == 1
    assert handed_back == [True, True]
