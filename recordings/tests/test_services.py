"""A recording's life in storage: sealed when stored, resealed when keys rotate, and gone with
everything derived from it when its retention ends or its contact is erased."""

import hashlib
import json
import wave
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils import timezone

from assistant.models import Lead
from calls.models import Call
from calls.signals import recording_finished
from calls.tests.factories import CallFactory, ContactFactory
from messaging.models import ConversationNote, ConversationWindow, Message
from messaging.tests.factories import ConversationFactory
from recordings.models import Erasure, Recording, Summary, Transcript
from recordings.selectors import summary_for_display
from recordings.services import (
    call_summarise,
    contact_erase,
    recording_opened,
    recording_reseal,
    recording_store,
    recordings_expire,
)
from whatsapp.models import WebhookDelivery, WebhookEvent
from whatsapp.services import webhook_deliveries_receive
from whatsapp.tests import payloads

pytestmark = pytest.mark.django_db

NEW_KEY = b"a-second-recording-key-32-bytes!"
CARD_SAID = "my card is 4111 1111 1111 1111"


def spooled(path, seconds: float = 0.5, *, level: int = 0):
    """A finished recording as the media process spools it: 48 kHz 16-bit stereo WAV."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(48_000)
        size = 4 * round(48_000 * seconds)
        wav.writeframes((bytes(range(256)) * (size // 256 + 1))[:size] if level else bytes(size))
    return path


def finish(call, path, **facts):
    recording_finished.send(
        sender=None,
        call_id=call.pk,
        path=path,
        **{"duration_s": 0.5, **facts},
    )


def plaintext_of(recording: Recording) -> bytes:
    with recording_opened(recording) as sealed:
        return b"".join(sealed.chunks())


def store(call, tmp_path, name: str = "call.wav") -> Recording:
    return recording_store(
        call_id=call.pk,
        path=spooled(tmp_path / name, level=1),
        duration_s=0.5,
    )


def test_a_finished_recording_is_sealed_into_the_recordings_storage(recordings_storage, tmp_path):
    call = CallFactory()
    path = spooled(tmp_path / "call.wav", level=1)
    audio = path.read_bytes()

    finish(call, path)

    recording = Recording.objects.get(call=call)
    stored = (recordings_storage / recording.file.name).read_bytes()
    assert not path.exists()
    assert recording.file.name.startswith(timezone.now().strftime("%Y/%m/%d/") + f"call-{call.pk}-")
    assert recording.file.name.endswith(".wav.sealed")
    assert (recording.key_id, recording.status) == (settings.RECORDING_KEY_ID, Recording.Status.QUEUED)
    assert (recording.sha256, recording.size_bytes) == (hashlib.sha256(stored).hexdigest(), len(audio))
    assert audio[44:1044] not in stored  # no stretch of the audio is readable at rest
    assert plaintext_of(recording) == audio


def test_storing_a_recording_queues_its_transcription_on_the_recordings_queue(
    recordings_storage, tmp_path, django_capture_on_commit_callbacks
):
    call = CallFactory()
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(settings.CELERY_RECORDINGS_QUEUE)

    with django_capture_on_commit_callbacks(execute=True):
        recording = store(call, tmp_path)

    queued = [
        json.loads(message)["headers"] for message in client.lrange(settings.CELERY_RECORDINGS_QUEUE, 0, -1)
    ]
    client.delete(settings.CELERY_RECORDINGS_QUEUE)
    client.close()
    assert [(headers["task"], headers["kwargsrepr"]) for headers in queued] == [
        ("recordings.transcribe_call", repr({"recording_id": recording.pk}))
    ]


def test_a_second_recording_for_the_same_call_is_discarded(recordings_storage, tmp_path):
    call = CallFactory()
    finish(call, spooled(tmp_path / "first.wav"))
    second = spooled(tmp_path / "second.wav", seconds=1.0)

    finish(call, second, duration_s=1.0)

    assert Recording.objects.get(call=call).duration_s == 0.5
    assert not second.exists()
    assert len([path for path in recordings_storage.rglob("*") if path.is_file()]) == 1


def test_a_recording_for_a_call_that_is_gone_leaves_nothing_stored(recordings_storage, tmp_path):
    call = CallFactory()
    call_id = call.pk
    call.delete()  # erased while the media process was finishing it
    path = spooled(tmp_path / "orphan.wav")

    recording_finished.send(sender=None, call_id=call_id, path=path, duration_s=0.5)

    assert not path.exists()
    assert not [path for path in recordings_storage.rglob("*") if path.is_file()]
    assert Recording.objects.count() == 0


def test_rotating_keys_reseals_a_recording_and_the_old_key_can_then_go(
    recordings_storage, tmp_path, settings, django_capture_on_commit_callbacks
):
    call = CallFactory()
    recording = store(call, tmp_path)
    audio = plaintext_of(recording)
    old_name = recording.file.name
    settings.RECORDING_KEYS = {**settings.RECORDING_KEYS, "2027": NEW_KEY}
    settings.RECORDING_KEY_ID = "2027"

    with django_capture_on_commit_callbacks(execute=True):
        changed = recording_reseal(recording_id=recording.pk)
    settings.RECORDING_KEYS = {"2027": NEW_KEY}

    recording.refresh_from_db()
    assert changed is True
    assert recording.key_id == "2027"
    assert plaintext_of(recording) == audio
    assert not (recordings_storage / old_name).exists()
    assert recording_reseal(recording_id=recording.pk) is False


def test_a_recording_stored_before_sealing_is_still_heard_and_sealed_on_rotation(
    recordings_storage, tmp_path, django_capture_on_commit_callbacks
):
    call = CallFactory()
    audio = spooled(tmp_path / "old.wav", level=1).read_bytes()
    recordings_storage.mkdir(parents=True)
    (recordings_storage / "old.wav").write_bytes(audio)
    recording = Recording.objects.create(
        call=call, file="old.wav", duration_s=0.5, size_bytes=len(audio), sha256="", key_id="",
        customer_rms=0.1, agent_rms=0.1,
    )  # fmt: skip

    heard = plaintext_of(recording)
    with django_capture_on_commit_callbacks(execute=True):
        recording_reseal(recording_id=recording.pk)

    recording.refresh_from_db()
    assert heard == audio
    assert recording.key_id == settings.RECORDING_KEY_ID
    assert plaintext_of(recording) == audio


def derived(call, tmp_path, name: str = "call.wav") -> Recording:
    """A call with all that is made after it: recording, transcript, summary."""
    recording = store(call, tmp_path, name)
    Transcript.objects.create(
        call=call, recording=recording, text=CARD_SAID, model="tiny.en", seconds_taken=0.1,
        segments=[{"start_s": 0, "end_s": 2, "speaker": "customer", "text": CARD_SAID, "confidence": 0.9}],
    )  # fmt: skip
    Summary.objects.create(
        call=call, paragraph="Paid by card.", intent="billing", outcome="resolved", sentiment="neutral",
        sentiment_score=0.0, backend="local",
    )  # fmt: skip
    return recording


def files_in(folder) -> list:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_retention_removes_old_recordings_with_their_transcripts_and_summaries(
    recordings_storage, tmp_path, django_capture_on_commit_callbacks
):
    old_call, new_call, kept_call = CallFactory(), CallFactory(), CallFactory()
    for call in (old_call, new_call):
        call.business_number.recording_retention_days = 30
        call.business_number.save()
    old, new, kept = (derived(call, tmp_path, f"{call.pk}.wav") for call in (old_call, new_call, kept_call))
    long_ago = timezone.now() - timedelta(days=31)
    Recording.objects.filter(pk__in=[old.pk, kept.pk]).update(created_at=long_ago)  # kept: no retention set

    with django_capture_on_commit_callbacks(execute=True):
        removed = recordings_expire()

    assert removed == 1
    assert set(Recording.objects.values_list("pk", flat=True)) == {new.pk, kept.pk}
    assert set(Transcript.objects.values_list("call_id", flat=True)) == {new_call.pk, kept_call.pk}
    assert set(Summary.objects.values_list("call_id", flat=True)) == {new_call.pk, kept_call.pk}
    assert sorted(path.name for path in files_in(recordings_storage)) == sorted(
        [new.file.name.rsplit("/", 1)[-1], kept.file.name.rsplit("/", 1)[-1]]
    )
    erasure = Erasure.objects.get()
    assert (erasure.kind, erasure.counts) == (
        Erasure.Kind.RETENTION,
        {"recordings": 1, "files": 1, "transcripts": 1, "summaries": 1},
    )
    assert Call.objects.filter(pk=old_call.pk).exists()  # the call itself stays, for the figures


def test_erasing_a_contact_leaves_nothing_of_theirs_behind(
    recordings_storage, tmp_path, django_capture_on_commit_callbacks, captured, admin_user
):
    customer = ContactFactory(wa_id="447700900555", name="Lucia Santos")
    other = ContactFactory(wa_id="447700900666", name="Ravi Patel")
    call = CallFactory(contact=customer, wrap_up_notes="Lucia's card ends 1111", status=Call.Status.ENDED)
    other_call = CallFactory(contact=other, business_number=call.business_number)
    derived(call, tmp_path, "hers.wav")
    theirs = derived(other_call, tmp_path, "theirs.wav")
    Message.objects.create(
        business_number=call.business_number, contact=customer, direction="inbound", message_type="text",
        text="call me at 4pm", status="received",
    )  # fmt: skip
    ConversationWindow.objects.create(business_number=call.business_number, contact=customer)
    conversation = ConversationFactory(contact=customer, business_number=call.business_number)
    ConversationNote.objects.create(conversation=conversation, text="Lives at 12 Rue Haute")
    Lead.objects.create(
        conversation=conversation, fields={"team_size": "25"}, summary="Wants Pro for 25 people."
    )
    webhook_deliveries_receive(
        bodies=[
            json.dumps(payloads.text_message("wamid.hers", **{"from": "447700900555"})).encode(),
            json.dumps(payloads.text_message("wamid.theirs", **{"from": "447700900666"})).encode(),
        ]
    )

    with django_capture_on_commit_callbacks(execute=True):
        erasure = contact_erase(
            contact_id=customer.pk, requested_by_id=admin_user.pk, reason="GDPR request 42"
        )

    customer.refresh_from_db()
    call.refresh_from_db()
    assert (customer.name, customer.wa_id) == ("", f"erased-{customer.pk}")
    assert call.wrap_up_notes == ""
    assert not Recording.objects.filter(call__contact=customer).exists()
    assert not Transcript.objects.filter(call__contact=customer).exists()
    assert not Summary.objects.filter(call__contact=customer).exists()
    assert not Message.objects.filter(contact=customer).exists()
    assert not ConversationWindow.objects.filter(contact=customer).exists()
    assert not ConversationNote.objects.filter(conversation__contact=customer).exists()
    assert not Lead.objects.filter(conversation__contact=customer).exists()
    assert [path.name for path in files_in(recordings_storage)] == [theirs.file.name.rsplit("/", 1)[-1]]
    assert not any(
        b"447700900555" in bytes(body) for body in WebhookDelivery.objects.values_list("body", flat=True)
    )
    assert not WebhookEvent.objects.filter(payload__icontains="447700900555").exists()
    assert WebhookEvent.objects.filter(payload__icontains="447700900666").count() == 1
    assert (erasure.kind, erasure.requested_by, erasure.reason) == (
        Erasure.Kind.CONTACT,
        admin_user,
        "GDPR request 42",
    )
    assert erasure.contact_label == "+44…55"
    assert erasure.counts == {
        "recordings": 1, "files": 1, "transcripts": 1, "summaries": 1, "messages": 1, "message_files": 0,
        "conversation_windows": 1, "conversation_notes": 1, "leads": 1, "calls_cleared": 1,
        "webhook_events": 1, "webhook_deliveries": 1,
    }  # fmt: skip
    with pytest.raises(ValueError):
        contact_erase(contact_id=customer.pk, requested_by_id=None, reason="again")


def test_files_the_storage_could_not_delete_are_deleted_by_the_next_sweep(
    recordings_storage, tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    call = CallFactory()
    call.business_number.recording_retention_days = 1
    call.business_number.save()
    recording = derived(call, tmp_path)
    Recording.objects.filter(pk=recording.pk).update(created_at=timezone.now() - timedelta(days=2))

    def unreachable(self, name):
        raise OSError("the storage is unreachable")

    monkeypatch.setattr(FileSystemStorage, "delete", unreachable)

    with django_capture_on_commit_callbacks(execute=True):
        recordings_expire()
    left_behind = Erasure.objects.get().pending_files
    monkeypatch.undo()
    recordings_expire()

    assert left_behind == [recording.file.name]
    assert Erasure.objects.get().pending_files == []
    assert files_in(recordings_storage) == []


# What the recording of a call nobody answered holds: the queue's notice and hold audio on the
# business's side, and the customer alone on theirs.
HOLD_AUDIO_SAID = [
    {"start_s": 0, "end_s": 4, "speaker": "agent", "text": "Thank you for calling, this call is recorded."},
    {"start_s": 4, "end_s": 6, "speaker": "customer", "text": "Great, thanks, I love it. Where is my order?"},
    {"start_s": 6, "end_s": 9, "speaker": "agent", "text": "Your call is very important to us, please hold."},
]


@pytest.mark.parametrize(
    ("end_reason", "direction"),
    [
        (Call.EndReason.ABANDONED, Call.Direction.INBOUND),
        (Call.EndReason.NO_AGENT, Call.Direction.INBOUND),
        (Call.EndReason.REJECTED, Call.Direction.OUTBOUND),
        (Call.EndReason.UNANSWERED, Call.Direction.OUTBOUND),
        (Call.EndReason.FAILED, Call.Direction.INBOUND),
    ],
)
def test_a_call_nobody_answered_is_summarised_without_intent_or_sentiment(
    recordings_storage, tmp_path, end_reason, direction
):
    call = CallFactory(
        status=Call.Status.ENDED, end_reason=end_reason, direction=direction, agent=None, talk_seconds=None
    )
    recording = store(call, tmp_path)
    Transcript.objects.create(
        call=call, recording=recording, text="", model="tiny.en", seconds_taken=0.1, segments=HOLD_AUDIO_SAID
    )

    summary = call_summarise(call_id=call.pk)

    assert (summary.intent, summary.outcome, summary.sentiment, summary.sentiment_score) == (
        "",
        "no_conversation",
        "",
        None,
    )
    shown = summary_for_display(summary=summary, is_raw=True)
    assert (shown["intent"], shown["sentiment"], shown["sentiment_score"]) == (None, None, None)
