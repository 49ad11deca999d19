"""Reads about recordings: who may hear and read a call, and what they are shown."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q, QuerySet

from calls.models import Call, CallEvent
from compliance.models import ConsentRecord
from core.access import Viewer
from recordings.models import Recording, Summary, Transcript
from recordings.redaction import redact
from recordings.summaries import CallFacts, Line

AGENT_HUNG_UP = "the agent hung up"  # calls.handlers' end detail when the agent ends a call


def call_facts(call: Call) -> CallFacts:
    """What the summary may say of a call besides its words."""
    if call.end_detail == AGENT_HUNG_UP:
        ended_by = "agent"
    elif call.end_detail.startswith("Meta: ") or call.end_reason == Call.EndReason.ABANDONED:
        ended_by = "customer"  # Meta's terminate: the customer left (or ended the call)
    elif call.end_reason:
        ended_by = "system"
    else:
        ended_by = ""
    return CallFacts(
        direction=call.direction,
        talk_seconds=call.talk_seconds,
        end_reason=call.end_reason,
        ended_by=ended_by,
        disposition=call.disposition,
        notes=call.wrap_up_notes,
        customer_name=call.contact.name,
    )


def transcript_lines(transcript: Transcript) -> list[Line]:
    return [
        Line(speaker=segment["speaker"], text=segment["text"], start_s=segment["start_s"])
        for segment in transcript.segments
    ]


def transcript_for_display(*, transcript: Transcript | None, is_raw: bool, country: str = "") -> list[dict]:
    """The transcript's segments as a reader sees them: card numbers, national ids, emails and
    phone numbers masked unless `is_raw` (the reader may read the raw text)."""
    if transcript is None:
        return []
    return [
        {**segment, "text": segment["text"] if is_raw else redact(segment["text"], region=country or None)}
        for segment in transcript.segments
    ]


def summary_for_display(*, summary: Summary | None, is_raw: bool, country: str = "") -> dict | None:
    """The summary as a reader sees it: its paragraph masked unless `is_raw`; intent, sentiment and
    score None for a call with no conversation."""
    if summary is None:
        return None
    return {
        "paragraph": summary.paragraph if is_raw else redact(summary.paragraph, region=country or None),
        "intent": summary.intent or None,
        "outcome": summary.outcome,
        "sentiment": summary.sentiment or None,
        "sentiment_score": summary.sentiment_score,
        "backend": summary.backend,
        "note": summary.note,
    }


def recording_progress(recording: Recording | None) -> dict:
    """Where the work after the call stands, as the call page shows it; a queued recording's place
    in line too (1: the next to be transcribed)."""
    if recording is None:
        return {"status": "none", "progress": 0, "failure": "", "in_line": None}
    return {
        "status": recording.status,
        "progress": recording.progress,
        "failure": recording.failure,
        "in_line": recording_place_in_line(recording)
        if recording.status == Recording.Status.QUEUED
        else None,
    }


def recordings_ahead_of(created_at) -> QuerySet[Recording]:
    """The queued recordings stored up to `created_at`: those a recording then stored waits behind
    (the queue is first in, first out), itself included. Approximate for work queued again (by the
    sweep, or after a storage error), which waits at the back of the line."""
    return Recording.objects.filter(status=Recording.Status.QUEUED, created_at__lte=created_at)


def recording_place_in_line(recording: Recording) -> int:
    return recordings_ahead_of(recording.created_at).count()


def after_calls_backlog(now: datetime) -> dict:
    """The work after calls waiting or under way, for the wallboard: recordings queued for
    transcription (and how long the oldest has waited), being transcribed, being summarised."""
    counts = Recording.objects.filter(status__in=Recording.IN_PROGRESS).aggregate(
        queued=Count("pk", filter=Q(status=Recording.Status.QUEUED)),
        transcribing=Count("pk", filter=Q(status=Recording.Status.TRANSCRIBING)),
        summarising=Count("pk", filter=Q(status=Recording.Status.SUMMARISING)),
        oldest_queued_at=Min("created_at", filter=Q(status=Recording.Status.QUEUED)),
    )
    oldest = counts.pop("oldest_queued_at")
    return {
        "after_calls": {**counts, "oldest_queued_s": round((now - oldest).total_seconds()) if oldest else 0}
    }


@dataclass(frozen=True)
class TimelineEntry:
    """One line of what happened on a call: a transition (`event`) or the recording notice played
    (`consent`), at `at`."""

    at: datetime
    event: CallEvent | None = None
    consent: ConsentRecord | None = None


def call_timeline(*, call: Call) -> list[TimelineEntry]:
    """What happened on a call, in the order it happened: its transitions and the recording notice
    it played, by time, then id (transitions before the notice at the same instant), so a call's
    timeline reads the same on every page whatever order the rows were written in."""
    events = call.events.select_related("agent__user").order_by()
    consents = ConsentRecord.objects.filter(call=call).order_by()
    entries = [(event.at, 0, event.pk, TimelineEntry(at=event.at, event=event)) for event in events]
    entries += [
        (consent.started_at, 1, consent.pk, TimelineEntry(at=consent.started_at, consent=consent))
        for consent in consents
    ]
    return [entry for *_, entry in sorted(entries, key=lambda entry: entry[:3])]


def call_review(*, call: Call, viewer: Viewer) -> dict:
    """What the call page shows of a call, for the call page and its page in admin: the recording,
    its progress, the transcript, the summary and the wrap-up notes as `viewer` reads them (masked
    unless they read raw text; notes per core.access), the timeline (call_timeline). The caller has
    checked that the viewer may hear the call."""
    country, is_raw = call.contact.country, viewer.sees_raw_text
    recording = Recording.objects.filter(call=call).first()
    return {
        "call": call,
        "recording": recording,
        "progress": recording_progress(recording),
        "segments": transcript_for_display(
            transcript=Transcript.objects.filter(call=call).first(), is_raw=is_raw, country=country
        ),
        "summary": summary_for_display(
            summary=Summary.objects.filter(call=call).first(), is_raw=is_raw, country=country
        ),
        "notes": viewer.notes_of(call),
        "timeline": call_timeline(call=call),
        "chat_id": (
            call.conversation_id
            if call.conversation_id is not None
            and viewer.conversations().filter(pk=call.conversation_id).exists()
            else None
        ),
    }


def call_of_recording(*, recording_id: int) -> int | None:
    """The id of the call a recording is of (None: no such recording)."""
    return Recording.objects.filter(pk=recording_id).values_list("call_id", flat=True).first()
