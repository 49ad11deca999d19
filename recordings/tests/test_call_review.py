"""Supervisors review calls in the back office: the list filtered and searched (by number, name and
what was said) at a flat number of queries, and a call's page with the call page's summary, player,
transcript and timeline, masked unless they may read raw text; nobody changes a call there."""

import datetime
import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateformat import format as date_format
from djmoney.money import Money

from agents.tests.factories import AgentFactory, QueueFactory, UserFactory, supervisor
from calls.models import Call, CallEvent
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import ConsentRecord
from messaging.models import Charge
from recordings.models import Recording, Summary, Transcript
from recordings.services import recording_store
from recordings.tests.test_services import spooled

pytestmark = pytest.mark.django_db

LIST = "/admin/calls/call/"
SAID = "my card is 4111 1111 1111 1111, mail me at lucia@example.com"
NOTICE = "This call is recorded to help us serve you better."


def ended_call(*, said: str = "", intent: str = "billing", sentiment: str = "neutral", **fields) -> Call:
    """An ended call an agent took; with `said`, recorded (a row only), transcribed and summarised."""
    now = timezone.now()
    before = datetime.timedelta
    call = CallFactory(
        **{
            "agent": AgentFactory(), "status": Call.Status.ENDED, "end_reason": Call.EndReason.COMPLETED,
            "queued_at": now - before(seconds=95), "connected_at": now - before(seconds=80), "ended_at": now,
            "talk_seconds": 80, **fields,
        }
    )  # fmt: skip
    if said:
        recording = Recording.objects.create(
            call=call, file=f"calls/{call.pk}.wav", duration_s=80, size_bytes=1, sha256="0" * 64,
            customer_rms=0.1, agent_rms=0.1, status=Recording.Status.DONE,
        )  # fmt: skip
        Transcript.objects.create(
            call=call, recording=recording, text=said, model="tiny.en", seconds_taken=0.1,
            segments=[{"start_s": 0.0, "end_s": 3.0, "speaker": "customer", "text": said, "confidence": 0.9}],
        )  # fmt: skip
        Summary.objects.create(
            call=call, paragraph=f"The customer said: {said}", intent=intent, outcome="resolved",
            sentiment=sentiment, sentiment_score=0.0, backend="local",
        )  # fmt: skip
    return call


@pytest.fixture
def reviewed(recordings_storage, tmp_path) -> Call:
    """A call with all a review shows: its audio sealed in storage, transcript, summary, events,
    the recording notice heard and the charge."""
    call = ended_call(contact=ContactFactory(name="Lucia Santos", wa_id="447700900311"))
    recording_store(
        call_id=call.pk, path=spooled(tmp_path / "call.wav", seconds=1.0, level=1), duration_s=1.0,
    )  # fmt: skip
    Transcript.objects.create(
        call=call, recording=call.recording, text=SAID, model="tiny.en", seconds_taken=0.1,
        segments=[{"start_s": 0.0, "end_s": 3.0, "speaker": "customer", "text": SAID, "confidence": 0.9}],
    )  # fmt: skip
    Summary.objects.create(
        call=call, paragraph="Lucia paid by card 4111 1111 1111 1111.", intent="billing", outcome="resolved",
        sentiment="neutral", sentiment_score=0.0, backend="local",
    )  # fmt: skip
    CallEvent.objects.create(
        call=call, from_status="offered", to_status="connected", at=call.connected_at, agent=call.agent
    )
    ConsentRecord.objects.create(
        call=call, contact=call.contact, business_number=call.business_number, language="en", text=NOTICE,
        kind=ConsentRecord.Kind.RECORDING_NOTICE, started_at=call.queued_at, completed_at=call.connected_at,
    )  # fmt: skip
    Charge.objects.create(
        kind=Charge.Kind.CALL, reference=call.wa_call_id, business_number=call.business_number,
        pricing_type=Charge.PricingType.FREE_USER_INITIATED, billed_on=call.ended_at.date(), quantity=14,
        duration_seconds=80, amount=Money("0.0000", "USD"),
    )  # fmt: skip
    return call


def shown(response) -> list[int]:
    return [call.pk for call in response.context["cl"].result_list]


def test_a_supervisor_reviews_a_call_with_its_player_and_its_transcript_masked(client, reviewed):
    client.force_login(supervisor())

    page = client.get(f"/admin/calls/call/{reviewed.pk}/change/")
    audio = client.get(f"/calls/{reviewed.pk}/recording/")

    text = page.content.decode()
    assert page.status_code == 200
    assert f'<audio controls preload="metadata" src="/calls/{reviewed.pk}/recording/"' in text
    assert "recordings/call.js" in text
    assert "<strong>Customer</strong> my card is [card], mail me at [email]" in text
    assert "Lucia paid by card [card]." in text
    assert "4111" not in text
    assert "offered → connected" in text
    assert NOTICE in text
    assert "Free: the customer called" in text
    assert 'name="_save"' not in text
    assert (audio.status_code, audio["Content-Type"]) == (200, "audio/wav")


def test_a_supervisor_who_may_read_raw_text_reads_it_in_the_review(client, reviewed):
    client.force_login(supervisor(sees_raw_text=True))

    page = client.get(f"/admin/calls/call/{reviewed.pk}/change/")

    assert SAID in page.content.decode()
    assert "Lucia paid by card 4111 1111 1111 1111." in page.content.decode()


def test_staff_who_may_not_listen_see_the_record_but_not_the_recording_or_the_charges(client, reviewed):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_call"))
    client.force_login(user)

    page = client.get(f"/admin/calls/call/{reviewed.pk}/change/")

    text = page.content.decode()
    assert page.status_code == 200
    assert "<audio" not in text
    assert "my card is" not in text
    assert "the recording and its transcript are for the agent who took the call" in text
    assert "offered → connected" in text
    assert "<h2>Charges</h2>" not in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("summary__intent=refund", ["refund"]),
        ("summary__sentiment__exact=negative", ["refund"]),
        ("recorded=yes", ["refund", "billing"]),
        ("recorded=no", ["abandoned", "outbound"]),
        ("direction__exact=outbound", ["outbound"]),
        ("end_reason__exact=abandoned", ["abandoned"]),
        ("agent__id__exact=AGENT", ["billing"]),
        ("queue__id__exact=QUEUE", ["refund"]),
    ],
)
def test_the_review_list_filters_by_what_supervisors_look_for(client, query, expected):
    calls = {
        "refund": ended_call(said="I want a refund", intent="refund", sentiment="negative"),
        "billing": ended_call(said="my bill is wrong", intent="billing"),
        "abandoned": ended_call(agent=None, end_reason=Call.EndReason.ABANDONED, talk_seconds=None),
        "outbound": ended_call(direction=Call.Direction.OUTBOUND, queue=None, queued_at=None),
    }
    query = query.replace("AGENT", str(calls["billing"].agent_id))
    query = query.replace("QUEUE", str(calls["refund"].queue_id))
    client.force_login(supervisor())

    response = client.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert sorted(shown(response)) == sorted(calls[name].pk for name in expected)


def test_the_review_list_shows_what_a_supervisor_scans(client):
    queue = QueueFactory(name="Care")
    call = ended_call(
        said="I want a refund", intent="refund", sentiment="negative", queue=queue,
        contact=ContactFactory(name="Ravi Patel", wa_id="447700900312"),
        agent=AgentFactory(display_name="Amira Haddad"),
    )  # fmt: skip
    client.force_login(supervisor())

    response = client.get(LIST)

    link = f'href="/admin/calls/call/{call.pk}/change/'
    row = response.content.decode().split(link, 1)[1].split("</tr>")[0]
    assert _cells(row) == [
        date_format(timezone.localtime(call.started_at), "Y-m-d H:i"), "In", "Ravi Patel (+447700900312)",
        "Care", "Amira Haddad", "0:15", "1:20", "Completed", "negative", "resolved", "done",
    ]  # fmt: skip


def _cells(row: str) -> list[str]:
    """The text of each cell of a list row from its first (the link), tags dropped; an icon as
    its alt text."""
    row = re.sub(r'<img [^>]*alt="([^"]*)"[^>]*>', r"\1", row)
    return [re.sub(r"<[^>]+>", "", f"<{cell}").strip() for cell in re.split(r"</t[dh]>", row)][:-1]


@pytest.mark.parametrize(
    ("search", "found"), [("refund", "refund"), ("+44 7700 900313", "named"), ("Zyx", "named")]
)
def test_search_finds_a_call_by_what_was_said_the_number_or_the_name(client, search, found):
    calls = {
        "refund": ended_call(said="I want a refund for my order"),
        "named": ended_call(said="hi", contact=ContactFactory(name="Quinta Zyx", wa_id="447700900313")),
        "other": ended_call(said="my bill is wrong"),
    }
    client.force_login(supervisor())

    response = client.get(LIST, {"q": search})

    assert shown(response) == [calls[found].pk]


def test_a_search_for_what_is_masked_looks_into_transcripts_only_for_those_who_read_raw_text(client):
    call = ended_call(said=SAID)

    client.force_login(supervisor())
    masked = client.get(LIST, {"q": "4111"})
    client.force_login(supervisor(sees_raw_text=True))
    raw = client.get(LIST, {"q": "4111"})

    assert (shown(masked), shown(raw)) == ([], [call.pk])


def test_the_review_list_takes_as_many_queries_for_20_calls_as_for_1(client):
    client.force_login(supervisor())
    client.get(LIST)  # the session and the permissions cached, as on any later page
    ended_call(said="I want a refund", intent="refund")

    with CaptureQueriesContext(connection) as one:
        first = client.get(LIST)
    for index in range(19):
        ended_call(said=f"call {index}", intent=f"intent {index}", sentiment="positive")
    with CaptureQueriesContext(connection) as twenty:
        second = client.get(LIST)

    assert (first.context["cl"].result_count, second.context["cl"].result_count) == (1, 20)
    assert len(twenty) == len(one)


@pytest.mark.parametrize("action", ["add", "change", "delete"])
def test_nobody_adds_changes_or_deletes_a_call_in_admin(admin_client, action):
    call = ended_call()
    url = f"{LIST}add/" if action == "add" else f"{LIST}{call.pk}/{action}/"

    response = admin_client.post(url, {"end_reason": "failed", "post": "yes"})

    call.refresh_from_db()
    assert response.status_code == 403
    assert (Call.objects.count(), call.end_reason) == (1, Call.EndReason.COMPLETED)


NOTES = "Card 4111 1111 1111 1111, mail jo@example.com"


def staff_who_may_not_listen():
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_call"))
    return user


@pytest.mark.parametrize(
    ("user", "shown"),
    [
        (supervisor, "Card [card], mail [email]"),
        (lambda: supervisor(sees_raw_text=True), NOTES),
        (staff_who_may_not_listen, "Card [card], mail [email]"),
    ],
    ids=["supervisor", "supervisor reading raw text", "staff who may not listen"],
)
def test_the_wrap_up_notes_on_a_calls_admin_page_are_masked_unless_the_reader_may_read_raw_text(
    client, user, shown
):
    call = ended_call(said="hello", wrap_up_notes=NOTES)
    client.force_login(user())

    text = client.get(f"{LIST}{call.pk}/change/").content.decode()

    assert f'<div class="readonly">{shown}</div>' in text
    assert ("4111" in text) == (shown == NOTES)


def test_a_call_after_a_chat_links_its_conversation_on_its_admin_page_and_its_call_page(client):
    from messaging.tests.factories import ConversationFactory

    call = CallFactory(status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED)
    chat = ConversationFactory(contact=call.contact, business_number=call.business_number)
    Call.objects.filter(pk=call.pk).update(conversation=chat)
    silent = CallFactory(status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED)
    client.force_login(supervisor())

    admin_page = client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    call_page = client.get(f"/calls/{call.pk}/").content.decode()
    silent_page = client.get(f"/calls/{silent.pk}/").content.decode()

    assert f'<a href="/inbox/{chat.pk}/">Conversation {chat.pk}</a>' in admin_page
    assert f'href="/admin/messaging/conversation/{chat.pk}/change/"' in admin_page
    assert f'<a href="/inbox/{chat.pk}/" data-role="chat-link">The chat before the call</a>' in call_page
    assert 'data-role="chat-link"' not in silent_page
