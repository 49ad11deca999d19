"""Where each call's work after the call stands, for whoever looks: the call page and the back
office's list say queued (and the place in line), transcribing, summarising or done, and the
wallboard shows supervisors the backlog."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.tests.factories import AgentFactory, supervisor
from calls.models import Call
from calls.selectors import wallboard_snapshot
from calls.tests.factories import CallFactory
from recordings.models import Recording

pytestmark = pytest.mark.django_db


def recorded_call(status: str, *, stored_ago_s: float, progress: int = 0) -> Call:
    """An ended call an agent took, its recording (a row only) at `status`, stored that long ago."""
    call = CallFactory(agent=AgentFactory(), status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED)
    recording = Recording.objects.create(
        call=call, file=f"calls/{call.pk}.wav", duration_s=60, size_bytes=1, sha256="0" * 64,
        customer_rms=0.1, agent_rms=0.1, status=status, progress=progress,
    )  # fmt: skip
    Recording.objects.filter(pk=recording.pk).update(
        created_at=timezone.now() - timedelta(seconds=stored_ago_s)
    )
    return call


@pytest.fixture
def backlog() -> dict[str, Call]:
    return {
        "transcribing": recorded_call(Recording.Status.TRANSCRIBING, stored_ago_s=300, progress=40),
        "first": recorded_call(Recording.Status.QUEUED, stored_ago_s=240),
        "second": recorded_call(Recording.Status.QUEUED, stored_ago_s=120),
        "third": recorded_call(Recording.Status.QUEUED, stored_ago_s=60),
        "summarising": recorded_call(Recording.Status.SUMMARISING, stored_ago_s=400),
        "done": recorded_call(Recording.Status.DONE, stored_ago_s=500),
    }


def test_the_call_page_says_a_queued_recordings_place_in_line(client, backlog):
    second = backlog["second"]
    client.force_login(second.agent.user)

    before = client.get(f"/calls/{second.pk}/").content.decode()
    Recording.objects.filter(call=backlog["first"]).update(status=Recording.Status.TRANSCRIBING)
    after = client.get(f"/calls/{second.pk}/").content.decode()
    client.force_login(backlog["transcribing"].agent.user)
    transcribing = client.get(f"/calls/{backlog['transcribing'].pk}/").content.decode()

    assert "Queued for transcription: number 2 in line…" in before
    assert "Queued for transcription: number 1 in line…" in after
    assert "Transcribing: 40 %…" in transcribing


def test_the_back_offices_list_says_where_each_calls_recording_is(client, backlog):
    unrecorded = CallFactory(status=Call.Status.ENDED, end_reason=Call.EndReason.ABANDONED)
    client.force_login(supervisor())

    page = client.get("/admin/calls/call/", {"o": "1"})

    shown = {
        row.pk: page.context["cl"].model_admin.after_the_call(row) for row in page.context["cl"].result_list
    }
    assert shown == {
        backlog["transcribing"].pk: "transcribing (40 %)",
        backlog["first"].pk: "queued (1 in line)",
        backlog["second"].pk: "queued (2 in line)",
        backlog["third"].pk: "queued (3 in line)",
        backlog["summarising"].pk: "summarising",
        backlog["done"].pk: "done",
        unrecorded.pk: "—",
    }
    assert "queued (2 in line)" in page.content.decode()


def test_the_wallboard_shows_supervisors_the_work_after_calls(client, backlog):
    client.force_login(supervisor())

    snapshot = wallboard_snapshot()
    page = client.get("/wallboard/").content.decode()

    assert 240 <= snapshot["after_calls"].pop("oldest_queued_s") <= 260  # the seconds the test took
    assert snapshot["after_calls"] == {"queued": 3, "transcribing": 1, "summarising": 1}
    assert '<strong data-after="queued">3</strong> waiting for transcription' in page
