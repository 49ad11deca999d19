"""A call's page and its recording: the agent of the call and supervisors only; the audio streams
decrypted, in ranges; personal data in the transcript is masked for those without the permission."""

import re
from datetime import timedelta

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import Permission
from django.test import AsyncRequestFactory

from agents.tests.factories import AgentFactory, UserFactory
from calls.models import Call, CallEvent
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import ConsentRecord
from recordings import views
from recordings.models import Summary, Transcript
from recordings.services import recording_store
from recordings.tests.test_services import spooled
from recordings.tests.test_transcription import write_recording

pytestmark = pytest.mark.django_db

SAID = "my card is 4111 1111 1111 1111, mail me at lucia@example.com"


@pytest.fixture(params=["ogg_opus", "wav"], ids=["ogg_opus", "wav_of_an_earlier_version"])
def reviewed(request, recordings_storage, tmp_path):
    """An ended call of an agent's, recorded (as the media process records now, or in WAV as earlier
    versions did), transcribed and summarised; and its audio."""
    call = CallFactory(
        contact=ContactFactory(name="Lucia Santos"), agent=AgentFactory(), status=Call.Status.ENDED,
        end_reason=Call.EndReason.COMPLETED,
    )  # fmt: skip
    if request.param == "ogg_opus":  # 12 s of noise on both sides: more than 100 kB, as Opus packets
        noise = np.random.default_rng(3).normal(0, 3000, (48_000 * 12, 2)).astype(np.int16)
        path = write_recording(tmp_path / "call.ogg", noise)
    else:
        path = spooled(tmp_path / "call.wav", seconds=1.0, level=1)
    audio = path.read_bytes()
    recording = recording_store(call_id=call.pk, path=path, duration_s=1.0)
    Transcript.objects.create(
        call=call, recording=recording, text=SAID, model="tiny.en", seconds_taken=0.1,
        segments=[{"start_s": 0.0, "end_s": 3.0, "speaker": "customer", "text": SAID, "confidence": 0.9}],
    )  # fmt: skip
    Summary.objects.create(
        call=call, paragraph="Lucia paid by card 4111 1111 1111 1111.", intent="billing", outcome="resolved",
        sentiment="neutral", sentiment_score=0.0, backend="local",
    )  # fmt: skip
    return call, audio


def supervisor(*, raw: bool = False):
    user = UserFactory(is_staff=True)
    codenames = ["listen_recording"] + (["view_raw_transcript"] if raw else [])
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="recordings", codename__in=codenames)
    )
    return user


def test_the_agent_of_the_call_hears_it_and_reads_it_masked(client, reviewed):
    call, audio = reviewed
    client.force_login(call.agent.user)

    page = client.get(f"/calls/{call.pk}/")
    heard = client.get(f"/calls/{call.pk}/recording/")

    assert page.status_code == 200
    assert "my card is [card], mail me at [email]" in page.content.decode()
    assert "4111" not in page.content.decode()
    assert "Lucia paid by card [card]." in page.content.decode()
    media_type, extension = (
        ("audio/ogg", "ogg") if call.recording.format == "ogg_opus" else ("audio/wav", "wav")
    )
    assert (heard.status_code, heard["Content-Type"], heard["Accept-Ranges"]) == (200, media_type, "bytes")
    assert heard["Content-Disposition"] == f'inline; filename="call-{call.pk}.{extension}"'
    assert heard["Cache-Control"] == "private, no-store"
    assert b"".join(heard.streaming_content) == audio


def test_a_supervisor_with_the_permission_reads_the_raw_text(client, reviewed):
    call, _ = reviewed
    client.force_login(supervisor(raw=True))

    page = client.get(f"/calls/{call.pk}/")

    assert SAID in page.content.decode()


@pytest.mark.parametrize("who", ["another agent", "staff without the permission"])
def test_anyone_else_gets_403_on_the_audio_and_the_page(client, reviewed, who):
    call, _ = reviewed
    client.force_login(AgentFactory().user if who == "another agent" else UserFactory(is_staff=True))

    assert client.get(f"/calls/{call.pk}/recording/").status_code == 403
    assert client.get(f"/calls/{call.pk}/").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, reviewed):
    call, _ = reviewed

    response = client.get(f"/calls/{call.pk}/recording/")

    assert (response.status_code, response["Location"].split("?")[0]) == (302, "/login/")


@pytest.mark.parametrize(
    ("asked", "span"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100000-", (100000, None)),
        ("bytes=-44", (-44, None)),
        ("bytes=5-5", (5, 6)),
    ],
)
def test_the_audio_is_served_in_ranges_so_players_can_seek(client, reviewed, asked, span):
    call, audio = reviewed
    client.force_login(supervisor())
    start, end = span
    expected = audio[start:end] if end is not None else audio[start:]
    first = len(audio) + start if start < 0 else start

    response = client.get(f"/calls/{call.pk}/recording/", HTTP_RANGE=asked)

    assert response.status_code == 206
    assert b"".join(response.streaming_content) == expected
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(audio)}"
    assert response["Content-Length"] == str(len(expected))


@pytest.mark.parametrize("asked", ["bytes=999999999-", "bytes=-0"])
def test_a_range_beyond_the_recording_is_416(client, reviewed, asked):
    call, audio = reviewed
    client.force_login(supervisor())

    response = client.get(f"/calls/{call.pk}/recording/", HTTP_RANGE=asked)

    assert (response.status_code, response["Content-Range"]) == (416, f"bytes */{len(audio)}")


@pytest.mark.parametrize(
    "asked",
    [
        "items=0-5",
        "bytes=0-1,5-6",
        "bytes=10-5",
        "bytes=-",
        "bytes=x-1",
        "bytes=٣-",
        "bytes=" + "9" * 5000 + "-",
    ],
)
def test_a_range_not_understood_is_ignored_and_the_whole_recording_served(client, reviewed, asked):
    call, audio = reviewed
    client.force_login(supervisor())

    response = client.get(f"/calls/{call.pk}/recording/", HTTP_RANGE=asked)

    assert (response.status_code, b"".join(response.streaming_content)) == (200, audio)


def test_head_gives_the_headers_without_the_audio(client, reviewed):
    call, audio = reviewed
    client.force_login(supervisor())

    response = client.head(f"/calls/{call.pk}/recording/")

    assert (response.status_code, response["Content-Length"]) == (200, str(len(audio)))
    assert b"".join(response.streaming_content) == b""


def test_a_missing_file_is_404_and_a_damaged_one_503(client, reviewed, recordings_storage):
    call, _ = reviewed
    client.force_login(supervisor())
    stored = recordings_storage / call.recording.file.name
    stored.write_bytes(stored.read_bytes()[:-1])

    damaged = client.get(f"/calls/{call.pk}/recording/")
    stored.unlink()
    missing = client.get(f"/calls/{call.pk}/recording/")

    assert damaged.status_code == 503
    assert missing.status_code == 404


def test_under_asgi_the_audio_streams_asynchronously_chunk_by_chunk(reviewed):
    # Django reads a synchronous iterator whole before an ASGI response's first byte: a recording
    # served to the web server must be an asynchronous one.
    call, audio = reviewed
    request = AsyncRequestFactory().get(f"/calls/{call.pk}/recording/")
    request.user = supervisor()

    response = views.call_recording(request, pk=call.pk)

    async def read() -> list[bytes]:
        return [part async for part in response]

    parts = async_to_sync(read)()
    response.close()
    assert response.is_async is True
    assert b"".join(parts) == audio
    assert len(parts) == -(-len(audio) // (64 * 1024))  # one part a chunk


def test_a_call_page_without_a_recording_says_why(client):
    call = CallFactory(agent=AgentFactory(), status=Call.Status.ENDED, end_reason=Call.EndReason.ABANDONED)
    client.force_login(call.agent.user)

    page = client.get(f"/calls/{call.pk}/")
    audio = client.get(f"/calls/{call.pk}/recording/")

    assert "No recording: nobody was on the line" in page.content.decode()
    assert audio.status_code == 404


def test_a_call_page_is_headed_by_the_contact_and_lists_what_happened_in_order(client, reviewed):
    call, _ = reviewed
    at = call.started_at
    for seconds, from_status, to_status in [
        (40, "offered", "connected"),
        (0, "", "ringing"),
        (2, "ringing", "queued"),
    ]:
        CallEvent.objects.create(
            call=call, from_status=from_status, to_status=to_status, at=at + timedelta(seconds=seconds)
        )  # written out of order
    ConsentRecord.objects.create(
        call=call, contact=call.contact, business_number=call.business_number, language="en",
        text="Recorded.", kind=ConsentRecord.Kind.RECORDING_NOTICE, started_at=at + timedelta(seconds=3),
    )  # fmt: skip
    client.force_login(call.agent.user)

    text = client.get(f"/calls/{call.pk}/").content.decode()

    heading = re.search(r"<h1[^>]*>(.*?)</h1>", text).group(1)
    assert heading == f"Call from Lucia Santos (+{call.contact.wa_id})"
    assert f'<a href="/contacts/{call.contact.pk}/">Contact page</a>' in text
    timeline = re.search(r'<ol class="events" data-role="timeline">(.*?)</ol>', text, re.DOTALL).group(1)
    assert re.findall(r"<li><span class=\"muted\">[0-9:]+</span> (.*?)</li>", timeline) == [
        "— → ringing",
        "ringing → queued",
        "recording notice played (en), not heard to its end",
        "offered → connected",
    ]


NOTES = "Card 4111 1111 1111 1111, mail jo@example.com"


@pytest.mark.parametrize(("raw", "shown"), [(False, "Card [card], mail [email]"), (True, NOTES)])
def test_the_wrap_up_notes_on_the_call_page_are_masked_unless_the_reader_may_read_raw_text(
    client, reviewed, raw, shown
):
    call, _ = reviewed
    Call.objects.filter(pk=call.pk).update(wrap_up_notes=NOTES)
    client.force_login(supervisor(raw=raw))

    text = client.get(f"/calls/{call.pk}/").content.decode()

    assert f"<h2>Notes</h2><p>{shown}</p>" in text
    assert ("4111" in text) == raw
