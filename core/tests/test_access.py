"""Who may see what, on every surface: each kind of viewer (the agent of a call, another agent of its
number, an agent of another number, supervisors with and without the raw-text permission, API keys of
each scope and number) against every page, admin page, API endpoint, socket and export; and free text
(a card number, an e-mail and a national id in every field a person typed or said) masked wherever
it shows or can be searched, for every reader without the raw-text permission."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from agents.models import QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory, UserFactory, supervisor
from assistant.models import Lead
from calls.models import Call
from calls.selectors import last_call_shown, previous_calls_of
from calls.tests.factories import CallFactory, ContactFactory
from campaigns.services import campaign_create
from config.asgi import application
from core.access import viewer_of_key, viewer_of_user
from integrations.models import ApiKey
from integrations.services import api_key_create
from messaging.models import Conversation, ConversationNote, MarketingPreference, Message, Template
from messaging.preferences import marketing_preference_apply
from messaging.tests.factories import ConversationFactory
from recordings.models import Summary, Transcript
from recordings.services import recording_store
from recordings.tests.test_services import spooled
from whatsapp.models import CallingSettingsChange
from whatsapp.tests.factories import BusinessNumberFactory

CARD, EMAIL, NATIONAL_ID = "4111 1111 1111 1111", "jo.bloggs@example.com", "AB 12 34 56 C"
PERSONAL = (CARD, EMAIL, NATIONAL_ID)
SAID = f"My card is {CARD}, write to {EMAIL}, my insurance number is {NATIONAL_ID}"
MASKED = "My card is [card], write to [email], my insurance number is [national id]"


@dataclass
class Floor:
    """Number X with its queue, the agent who took a call on it and a colleague; number Y with its
    own agent and call; the customer of X, who called and wrote."""

    x: object
    y: object
    agent: object
    colleague: object
    other_agent: object
    contact: object
    other_contact: object
    call: object
    colleagues_call: object
    other_call: object
    message: object
    photo: object
    conversation: object
    note: object
    colleagues_note: object
    handed_chat: object  # of X: the chat of X's call Cat is on (Cat serves only Y now)
    preference: object  # the customer stopped X's marketing messages
    campaign: object  # of X, to its customer


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _number_with_agents(name: str, *agents):
    number = BusinessNumberFactory(label=name)
    queue = QueueFactory(name=f"{name} care")
    queue.business_numbers.add(number)
    for agent in agents:
        QueueMembership.objects.create(queue=queue, agent=agent)
    return number, queue


@pytest.fixture
def floor(recordings_storage, tmp_path, settings) -> Floor:
    caches["api"].clear()
    settings.MEDIA_ROOT = tmp_path / "media"
    # The onboarding page reads Meta: unreachable here, it answers at once (with its error box).
    settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_MAX_RETRIES = f"http://127.0.0.1:{_closed_port()}/v23.0", 0
    agent, colleague, other_agent = (AgentFactory(display_name=name) for name in ("Ann", "Ben", "Cat"))
    x, x_queue = _number_with_agents("X", agent, colleague)
    y, y_queue = _number_with_agents("Y", other_agent)
    contact = ContactFactory(wa_id="447700900101", name="Xavier Customer", country="GB")
    other_contact = ContactFactory(wa_id="447700900202", name="Yolanda Customer", country="GB")

    def ended(number, queue, who, customer, notes):
        return CallFactory(
            business_number=number, queue=queue, contact=customer, agent=who, status=Call.Status.ENDED,
            end_reason=Call.EndReason.COMPLETED, talk_seconds=30, disposition="resolved", wrap_up_notes=notes,
        )  # fmt: skip

    call = ended(x, x_queue, agent, contact, f"Notes: {SAID}")
    colleagues_call = ended(x, x_queue, colleague, contact, f"Ben's notes: {SAID}")
    other_call = ended(y, y_queue, other_agent, other_contact, "Yolanda's notes")
    recording = recording_store(
        call_id=call.pk, path=spooled(tmp_path / "x.wav", level=1), duration_s=0.5,
    )  # fmt: skip
    Transcript.objects.create(
        call=call, recording=recording, text=SAID, model="tiny.en", seconds_taken=0.1,
        segments=[{"start_s": 0.0, "end_s": 2.0, "speaker": "customer", "text": SAID, "confidence": 0.9}],
    )  # fmt: skip
    Summary.objects.create(
        call=call, paragraph=f"The customer said: {SAID}", intent="billing", outcome="resolved",
        sentiment="positive", sentiment_score=0.5, backend="local",
    )  # fmt: skip
    message = Message.objects.create(
        business_number=x, contact=contact, direction=Message.Direction.INBOUND, message_type="text",
        text=SAID, wa_message_id="wamid.X1", status=Message.Status.RECEIVED,
    )  # fmt: skip
    photo = Message.objects.create(
        business_number=x, contact=contact, direction=Message.Direction.INBOUND, message_type="image",
        text="The broken part", wa_message_id="wamid.X2", status=Message.Status.RECEIVED,
        mime_type="image/png", media_id="1234567890", media_status=Message.MediaStatus.STORED,
    )  # fmt: skip
    photo.media.save("part.png", ContentFile(b"\x89PNG\r\n\x1a\n"))
    conversation = ConversationFactory(
        contact=contact, business_number=x, queue=x_queue, state=Conversation.State.ASSIGNED, agent=agent,
        waiting_since=None, assigned_at=timezone.now(), opened_at=message.created_at,
    )  # fmt: skip
    note = ConversationNote.objects.create(
        conversation=conversation, author=agent.user, text=f"Inbox note by Ann: {SAID}"
    )
    colleagues_note = ConversationNote.objects.create(
        conversation=conversation, author=colleague.user, text=f"Inbox note by Ben: {SAID}"
    )
    Lead.objects.create(conversation=conversation, score=60, summary=f"Lead summary: {SAID}")
    # The warm handoff: a call of X after the customer's chat, taken by Cat, who has since left X's
    # queue. Cat reads the chat's thread beside the call, and no more of X.
    handed_chat = ConversationFactory(
        contact=contact, business_number=x, queue=x_queue, state=Conversation.State.CLOSED, agent=agent,
        waiting_since=None, closed_at=timezone.now(),
    )  # fmt: skip
    CallFactory(
        business_number=x, queue=x_queue, contact=contact, agent=other_agent, status=Call.Status.CONNECTED,
        conversation=handed_chat, connected_at=timezone.now(),
    )  # fmt: skip
    preference = marketing_preference_apply(
        business_number_id=x.pk, contact_id=contact.pk, is_stopped=True, at=timezone.now(),
        source=MarketingPreference.Source.WEBHOOK, detail="User requested to stop marketing messages",
    )  # fmt: skip
    campaign = campaign_create(
        name="Spring on X", business_number=x, lines=[contact.wa_id],
        template=Template.objects.create(waba_id=x.waba_id, name="spring", language="en", category="utility",
                                         status=Template.Status.APPROVED),
    )  # fmt: skip
    return Floor(
        x=x, y=y, agent=agent, colleague=colleague, other_agent=other_agent, contact=contact,
        other_contact=other_contact, call=call, colleagues_call=colleagues_call, other_call=other_call,
        message=message, photo=photo, conversation=conversation, note=note, colleagues_note=colleagues_note,
        campaign=campaign,
        handed_chat=handed_chat, preference=preference,
    )  # fmt: skip


USERS = ("agent of the call", "colleague", "agent of another number", "supervisor", "supervisor with raw")
KEYS = ("read key", "admin key", "calls:write key", "messages:write key", "other number's admin key")


def user_of(who: str, floor: Floor):
    return {
        "agent of the call": lambda: floor.agent.user,
        "colleague": lambda: floor.colleague.user,
        "agent of another number": lambda: floor.other_agent.user,
        "supervisor": lambda: supervisor(sees_raw_text=False),
        "supervisor with raw": lambda: supervisor(sees_raw_text=True),
    }[who]()


def key_of(who: str, floor: Floor) -> str:
    scope = who.removeprefix("other number's ").removesuffix(" key")
    number = floor.y if who.startswith("other number's") else floor.x
    _, token = api_key_create(
        name="CRM", scopes=[scope], created_by_id=None, business_number_ids=[number.pk],
        rate_limit_per_minute=1000,
    )  # fmt: skip
    return token


PAGES = {  # surface: (path, what shows the call, the contact or the message of number X on it)
    "dashboard": ("/", None),
    "call page": ("/calls/{call}/", None),
    "call's recording": ("/calls/{call}/recording/", None),
    "colleague's call page": ("/calls/{colleagues_call}/", None),
    "contacts": ("/contacts/", "Xavier Customer"),
    "contacts search": ("/contacts/?q=Xavier", "Xavier Customer"),
    "contact": ("/contacts/{contact}/", None),
    "contact's marketing preference": ("/contacts/{contact}/", 'data-marketing="stopped"'),
    "customer's photo": ("/messages/{photo}/media/", None),
    "inbox": ("/inbox/?tab=all", "/inbox/{conversation}/"),
    "inbox list": ("/inbox/list/?tab=all", "/inbox/{conversation}/"),  # the list the page refreshes
    "conversation": ("/inbox/{conversation}/", None),
    "conversation's thread": ("/inbox/{conversation}/thread/", None),
    "agent's note on the thread": ("/inbox/{conversation}/thread/", 'data-note="{note}"'),
    "colleague's note on the thread": ("/inbox/{conversation}/thread/", 'data-note="{colleagues_note}"'),
    "inbox search by name": ("/inbox/?q=Xavier", "/inbox/{conversation}/"),
    "inbox search by words": ("/inbox/?q=insurance", "/inbox/{conversation}/"),
    "inbox search by card": (f"/inbox/?q={CARD}", "/inbox/{conversation}/"),  # what the mask hides
    "chat of a call": ("/inbox/{handed_chat}/", None),
    "chat of a call's thread": ("/inbox/{handed_chat}/thread/", None),
    "other number's contact": ("/contacts/{other_contact}/", None),
    "wallboard": ("/wallboard/", None),
    "KPIs CSV": ("/reports/kpis.csv", None),
    "costs": ("/reports/costs/", None),
    "compliance check": ("/compliance/why/", None),
    "number onboarding": ("/numbers/{x}/onboarding/", None),
    "campaigns": ("/campaigns/", "/campaigns/{campaign}/"),
    "new campaign": ("/campaigns/new/", None),
    "campaign page": ("/campaigns/{campaign}/", None),
    "campaign progress": ("/campaigns/{campaign}/progress/", None),  # the part the page refreshes
    "admin": ("/admin/", None),
    "admin calls": ("/admin/calls/call/", "/admin/calls/call/{call}/change/"),
    "admin call": ("/admin/calls/call/{call}/change/", None),
    "admin messages": ("/admin/messaging/message/", "/admin/messaging/message/{message}/change/"),
    "admin message": ("/admin/messaging/message/{message}/change/", None),
    "admin contact": ("/admin/messaging/contact/{contact}/change/", None),
    "admin summaries": ("/admin/recordings/summary/", None),
    "admin recordings": ("/admin/recordings/recording/", None),
    "admin conversations": (
        "/admin/messaging/conversation/",
        "/admin/messaging/conversation/{conversation}/change/",
    ),
    "admin knowledge base": ("/admin/assistant/knowledgeentry/", None),
    "admin leads": ("/admin/assistant/lead/", None),  # what customers said of themselves
    "admin canned replies": ("/admin/messaging/cannedreply/", None),
    "admin marketing preferences": (
        "/admin/messaging/marketingpreference/",
        "/admin/messaging/marketingpreference/{preference}/change/",
    ),
    "admin marketing preference": ("/admin/messaging/marketingpreference/{preference}/change/", None),
    "admin marketing changes": ("/admin/messaging/marketingpreferencechange/", None),
    "admin calling settings changes": ("/admin/whatsapp/callingsettingschange/", None),
    "admin campaigns": ("/admin/campaigns/campaign/", "/admin/campaigns/campaign/{campaign}/change/"),
    "admin campaign": ("/admin/campaigns/campaign/{campaign}/change/", None),
    "admin campaign recipients": ("/admin/campaigns/recipient/", None),
    "admin opt-ins": ("/admin/campaigns/optin/", None),
}
API = {  # surface: (path, the id of X's row a list should hold)
    "API contacts": ("/api/v1/contacts/", "contact"),
    "API contact": ("/api/v1/contacts/{contact}/", None),
    "API calls": ("/api/v1/calls/", "call"),
    "API call": ("/api/v1/calls/{call}/", None),
    "API colleague's call": ("/api/v1/calls/{colleagues_call}/", None),
    "API transcript": ("/api/v1/calls/{call}/transcript/", None),
    "API recording link": ("/api/v1/calls/{call}/recording/", None),
    "API messages": ("/api/v1/messages/", "message"),
    "API agents": ("/api/v1/agents/", None),
    "API can-call": ("/api/v1/compliance/can-call/?number={x}&contact={contact}", None),
    "API KPIs": ("/api/v1/kpis/?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z", None),
    "API charges": ("/api/v1/charges/", None),
    "API campaigns": ("/api/v1/campaigns/", "campaign"),
    "API campaign": ("/api/v1/campaigns/{campaign}/", None),
    # A monitoring system's, with the metrics token: no session and no API key reads it.
    "metrics": ("/metrics", None),
}


def fill(path: str, floor: Floor) -> str:
    return path.format(
        call=floor.call.pk, colleagues_call=floor.colleagues_call.pk, contact=floor.contact.pk,
        other_contact=floor.other_contact.pk, message=floor.message.pk, photo=floor.photo.pk, x=floor.x.pk,
        conversation=floor.conversation.pk, note=floor.note.pk, colleagues_note=floor.colleagues_note.pk,
        handed_chat=floor.handed_chat.pk, preference=floor.preference.pk, campaign=floor.campaign.pk,
    )  # fmt: skip


def seen(response, marker: str | None, floor: Floor):
    """The status, or for a list whether X's row is in it ("listed" / "not listed")."""
    if response.status_code != 200 or marker is None:
        return response.status_code
    if marker in ("call", "contact", "message", "campaign"):
        ids = {row["id"] for row in response.json()["results"]}
        return "listed" if getattr(floor, marker).pk in ids else "not listed"
    return "listed" if fill(marker, floor) in response.content.decode() else "not listed"


def observe_user(client: Client, floor: Floor) -> dict:
    pages = {
        name: seen(client.get(fill(path, floor)), marker, floor) for name, (path, marker) in PAGES.items()
    }
    return pages | observe_api(client, floor, {})


def observe_api(client: Client, floor: Floor, headers: dict) -> dict:
    return {
        name: seen(client.get(fill(path, floor), **headers), marker, floor)
        for name, (path, marker) in API.items()
    }


ADMIN_PAGES = {
    "admin", "admin calls", "admin call", "admin messages", "admin message", "admin contact",
    "admin summaries", "admin recordings", "admin conversations", "admin knowledge base", "admin leads",
    "admin canned replies", "admin marketing preferences", "admin marketing preference",
    "admin marketing changes",
    "admin calling settings changes", "admin campaigns", "admin campaign", "admin campaign recipients",
    "admin opt-ins",
}  # fmt: skip
EVERYTHING_OF_X = {
    "dashboard": 200, "call page": 200, "call's recording": 200, "colleague's call page": 200,
    "contacts": "listed", "contacts search": "listed", "contact": 200, "other number's contact": 200,
    "contact's marketing preference": "listed",
    "customer's photo": 200,
    "wallboard": 200, "KPIs CSV": 200, "costs": 200, "compliance check": 200, "number onboarding": 200,
    "campaigns": "listed", "new campaign": 200, "campaign page": 200, "campaign progress": 200,
    "API contacts": "listed", "API contact": 200, "API calls": "listed", "API call": 200,
    "API colleague's call": 200, "API transcript": 200, "API recording link": 200, "API messages": "listed",
    "API agents": 200, "API can-call": 200, "API KPIs": 200, "API charges": 200,
    "inbox": "listed", "conversation": 200, "conversation's thread": 200,
    "agent's note on the thread": "listed", "colleague's note on the thread": "listed",
    "inbox search by name": "listed", "inbox search by words": "listed", "inbox search by card": "not listed",
    "chat of a call": 200, "chat of a call's thread": 200,
} | {page: 200 for page in ADMIN_PAGES} | {
    "admin calls": "listed", "admin messages": "listed", "admin conversations": "listed",
    "admin marketing preferences": "listed", "admin campaigns": "listed",
    "API campaigns": "listed", "API campaign": 200,
    "metrics": 403,
    "admin leads": 403,  # leads: administrators'
    "admin calling settings changes": 403,  # administrators'; supervisors read them on the onboarding page
}  # fmt: skip
AN_AGENTS = {  # what every agent gets whatever their calls: no back office, no wallboard, no reports
    "dashboard": 200, "wallboard": 302, "KPIs CSV": 403, "costs": 403, "compliance check": 302,
    "number onboarding": 302,
    "API KPIs": 403, "API charges": 403, "API agents": 200, "metrics": 403,
    "API campaigns": 403, "API campaign": 403,  # campaigns are the supervisors'
    "campaigns": 403, "new campaign": 403, "campaign page": 403, "campaign progress": 403,
} | {page: 302 for page in ADMIN_PAGES}  # fmt: skip
EXPECTED_FOR_USERS = {
    "agent of the call": AN_AGENTS | {
        "inbox": "listed", "conversation": 200, "conversation's thread": 200,  # theirs
        "agent's note on the thread": "listed", "colleague's note on the thread": "not listed",
        "inbox search by name": "listed", "inbox search by words": "listed",
        "inbox search by card": "not listed",
        "chat of a call": 200, "chat of a call's thread": 200,  # of their number
        "call page": 200, "call's recording": 200, "colleague's call page": 403, "contacts": "listed",
        "contacts search": "listed", "contact": 200, "other number's contact": 404, "API contacts": "listed",
        "contact's marketing preference": "listed",
        "customer's photo": 200, "API contact": 200, "API calls": "listed", "API call": 200,
        "API colleague's call": 404,
        "API transcript": 200, "API recording link": 200, "API messages": "listed", "API can-call": 200,
    },
    "colleague": AN_AGENTS | {
        "inbox": "not listed", "conversation": 200, "conversation's thread": 200,  # their number's
        "agent's note on the thread": "not listed", "colleague's note on the thread": "listed",  # Ben's own
        "inbox search by name": "listed", "inbox search by words": "listed",
        "inbox search by card": "not listed",
        "chat of a call": 200, "chat of a call's thread": 200,
        "call page": 403, "call's recording": 403, "colleague's call page": 200, "contacts": "listed",
        "contacts search": "listed", "contact": 200, "other number's contact": 404, "API contacts": "listed",
        "contact's marketing preference": "listed",
        "customer's photo": 200, "API contact": 200, "API calls": "not listed", "API call": 404,
        "API colleague's call": 200,
        "API transcript": 404, "API recording link": 404, "API messages": "listed", "API can-call": 200,
    },
    "agent of another number": AN_AGENTS | {
        "inbox": "not listed", "conversation": 404, "conversation's thread": 404,
        "agent's note on the thread": 404, "colleague's note on the thread": 404,
        "inbox search by name": "not listed", "inbox search by words": "not listed",
        "inbox search by card": "not listed",
        # X's chat of the call they are on: its thread beside the call, not the inbox's page.
        "chat of a call": 404, "chat of a call's thread": 200,
        "call page": 403, "call's recording": 403, "colleague's call page": 403, "contacts": "not listed",
        "contacts search": "not listed", "contact": 404, "other number's contact": 200,
        "contact's marketing preference": 404,
        "customer's photo": 404,
        "API contacts": "not listed", "API contact": 404, "API calls": "not listed", "API call": 404,
        "API colleague's call": 404, "API transcript": 404, "API recording link": 404,
        "API messages": "not listed", "API can-call": 404,
    },
    "supervisor": EVERYTHING_OF_X,
    "supervisor with raw": EVERYTHING_OF_X | {"inbox search by card": "listed"},
}  # fmt: skip
# The inbox's list, refreshed live, shows each viewer what the inbox page lists.
for _expected in EXPECTED_FOR_USERS.values():
    _expected["inbox list"] = _expected["inbox"]
ALL_OF_X = {name: ("listed" if marker else 200) for name, (_, marker) in API.items()} | {
    "API charges": 403, "metrics": 403,
}  # fmt: skip
NOTHING_OF_X = {name: ("not listed" if marker else 404) for name, (_, marker) in API.items()} | {
    "API agents": 200, "API KPIs": 200, "API charges": 200, "metrics": 403,
}  # fmt: skip
EXPECTED_FOR_KEYS = {
    "read key": ALL_OF_X,
    "admin key": ALL_OF_X | {"API charges": 200},
    "calls:write key": {name: 403 for name in API},
    "messages:write key": {name: 403 for name in API},
    "other number's admin key": NOTHING_OF_X,
}


@pytest.mark.django_db
@pytest.mark.parametrize("who", USERS)
def test_each_user_on_every_page_admin_page_api_endpoint_and_export(client, floor, who):
    client.force_login(user_of(who, floor))

    observed = observe_user(client, floor)

    assert observed == EXPECTED_FOR_USERS[who]


@pytest.mark.django_db
@pytest.mark.parametrize("who", KEYS)
def test_each_key_on_every_api_endpoint(client, floor, who):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key_of(who, floor)}"}

    observed = observe_api(client, floor, headers)

    assert observed == EXPECTED_FOR_KEYS[who]


def _session_cookie(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return session.session_key


SOCKETS = {
    "agent socket": "/ws/agent/",
    "wallboard socket": "/ws/wallboard/",
    "call page socket": "/ws/calls/{call}/",
}
EXPECTED_SOCKETS = {  # who: the sockets that open for them
    "agent of the call": {"agent socket", "call page socket"},
    "colleague": {"agent socket"},
    "agent of another number": {"agent socket"},
    "supervisor": {"wallboard socket", "call page socket"},
    "supervisor with raw": {"wallboard socket", "call page socket"},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", USERS)
async def test_each_user_on_every_socket(floor, who):
    user = await sync_to_async(user_of)(who, floor)
    cookie = await sync_to_async(_session_cookie)(user)
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]

    opened = set()
    for name, path in SOCKETS.items():
        communicator = WebsocketCommunicator(application, fill(path, floor), headers=headers)
        connected, _ = await communicator.connect()
        if connected:
            opened.add(name)
        await communicator.disconnect()

    assert opened == EXPECTED_SOCKETS[who]


# Masking: every free text, every view.

READERS = ("agent of the call", "supervisor", "supervisor with raw")


def _texts_of_views(client: Client, floor: Floor, headers: dict | None = None) -> dict[str, str]:
    """What each view shows of X's call, contact and message."""
    call, contact, message = floor.call.pk, floor.contact.pk, floor.message.pk
    pages = {
        "call page": f"/calls/{call}/",
        "contact": f"/contacts/{contact}/",
        "conversation": f"/inbox/{floor.conversation.pk}/",
        "admin call": f"/admin/calls/call/{call}/change/",
        "admin calls": "/admin/calls/call/",
        "admin messages": "/admin/messaging/message/",
        "admin message": f"/admin/messaging/message/{message}/change/",
        "admin summaries": "/admin/recordings/summary/",
        "admin summary": f"/admin/recordings/summary/{floor.call.summary.pk}/change/",
        "API call": f"/api/v1/calls/{call}/",
        "API calls": "/api/v1/calls/",
        "API transcript": f"/api/v1/calls/{call}/transcript/",
        "API messages": "/api/v1/messages/",
    }
    texts = {}
    for name, path in pages.items():
        response = client.get(path, **(headers or {}))
        if response.status_code == 200:
            texts[name] = response.content.decode()
    return texts


def _raw_shown(texts: dict[str, str]) -> dict[str, list[str]]:
    return {name: [data for data in PERSONAL if data in text] for name, text in texts.items()}


@pytest.mark.django_db
@pytest.mark.parametrize("who", READERS)
def test_every_free_text_is_masked_in_every_view_without_the_raw_permission(client, floor, who):
    client.force_login(user_of(who, floor))

    texts = _texts_of_views(client, floor)

    is_raw = who == "supervisor with raw"
    expected_views = {
        "call page",
        "contact",
        "conversation",
        "API call",
        "API calls",
        "API transcript",
        "API messages",
    }
    if who != "agent of the call":
        expected_views |= {"admin call", "admin calls", "admin messages", "admin message", "admin summaries",
                           "admin summary"}  # fmt: skip
    assert set(texts) == expected_views
    shows_free_text = expected_views - {"admin calls", "admin summaries", "API calls"}  # lists without words
    raw = _raw_shown(texts)
    assert {name: raw[name] for name in shows_free_text} == {
        name: list(PERSONAL) if is_raw else [] for name in shows_free_text
    }
    assert all(raw[name] == [] or is_raw for name in expected_views)
    shown_as = SAID if is_raw else MASKED  # the inbox's notes and the lead, on the conversation page
    assert f"Inbox note by Ann: {shown_as}" in texts["conversation"]
    assert (f"Inbox note by Ben: {shown_as}" in texts["conversation"]) == (who != "agent of the call")
    assert f"Lead summary: {shown_as}" in texts["conversation"]
    if not is_raw:
        assert all("[card]" in texts[name] for name in shows_free_text), [
            name for name in shows_free_text if "[card]" not in texts[name]
        ]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["read key", "admin key"])
def test_every_free_text_is_masked_for_a_key_without_the_admin_scope(client, floor, who):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key_of(who, floor)}"}

    raw = _raw_shown(_texts_of_views(client, floor, headers))

    views = {"API call", "API calls", "API transcript", "API messages"}
    shown = list(PERSONAL) if who == "admin key" else []
    assert raw == {name: shown for name in views}


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["supervisor", "supervisor with raw"])
def test_admin_search_finds_free_text_by_what_the_mask_hides_only_for_raw_readers(client, floor, who):
    client.force_login(user_of(who, floor))
    marker = f"/admin/messaging/message/{floor.message.pk}/change/"

    by_card = client.get("/admin/messaging/message/", {"q": CARD}).content.decode()
    by_mail = client.get("/admin/messaging/message/", {"q": EMAIL}).content.decode()
    calls_by_card = client.get("/admin/calls/call/", {"q": CARD}).content.decode()
    by_word = client.get("/admin/messaging/message/", {"q": "insurance"}).content.decode()

    found = who == "supervisor with raw"
    assert (marker in by_card, marker in by_mail) == (found, found)
    assert (f"/admin/calls/call/{floor.call.pk}/change/" in calls_by_card) == found
    assert marker in by_word  # words no mask hides are found by everyone


@pytest.mark.django_db
def test_the_ring_toast_shows_the_previous_calls_notes_only_to_whom_the_rule_allows(floor):
    ringing = CallFactory(business_number=floor.x, contact=floor.contact, status=Call.Status.OFFERED)
    now = timezone.now()
    Call.objects.filter(pk=floor.call.pk).update(ended_at=now - timedelta(hours=2))
    Call.objects.filter(pk=floor.colleagues_call.pk).update(ended_at=now - timedelta(hours=1))  # the last

    def notes_for(user) -> str:
        previous = previous_calls_of(contact_ids={floor.contact.pk}, excluded_ids={ringing.pk})
        return last_call_shown(previous[floor.contact.pk], viewer=viewer_of_user(user))["notes"]

    colleague_sees = notes_for(floor.colleague.user)  # their own call's notes
    agent_sees = notes_for(floor.agent.user)  # a colleague's call: hidden
    supervisor_sees = notes_for(supervisor(sees_raw_text=False))
    assert (MASKED in colleague_sees, agent_sees, MASKED in supervisor_sees) == (True, "", True)


@pytest.mark.django_db
def test_the_rule_itself(floor):
    agent, colleague = viewer_of_user(floor.agent.user), viewer_of_user(floor.colleague.user)
    other = viewer_of_user(floor.other_agent.user)
    token = key_of("read key", floor)
    key = viewer_of_key(ApiKey.objects.get(prefix=token.split("_")[1]))

    assert set(agent.calls()) == {floor.call}
    assert set(colleague.calls()) == {floor.colleagues_call}
    assert set(key.calls()) == {floor.call, floor.colleagues_call, floor.handed_chat.calls.get()}
    assert set(agent.contacts()) == {floor.contact} and set(other.contacts()) == {floor.other_contact}
    assert agent.notes_of(floor.call) == f"Notes: {MASKED}"
    assert agent.notes_of(floor.colleagues_call) == ""
    assert other.notes_of(floor.call) == ""
    assert set(agent.within({floor.y.pk}).calls()) == set()
    assert agent.may_search_text("insurance") and not agent.may_search_text("4111")
    assert set(other.conversation_threads()) == {floor.handed_chat}  # the chat of their call only
    assert set(other.conversations()) == set()
    assert set(other.within({floor.y.pk}).conversation_threads()) == set()  # a widget of Y's key
    assert set(agent.conversation_threads()) == {floor.conversation, floor.handed_chat}
    assert (agent.may_see_conversation(floor.handed_chat), other.may_see_conversation(floor.handed_chat)) == (
        True,
        False,
    )


@pytest.mark.django_db
def test_the_viewers_of_many_agents_read_together_are_each_their_own(floor):
    from django.contrib.auth.models import Group, Permission

    from core.access import viewers_of_agents

    raw = Group.objects.create(name="Raw readers")
    raw.permissions.add(Permission.objects.get(codename="view_raw_transcript"))
    floor.colleague.user.groups.add(raw)
    floor.other_agent.user.user_permissions.add(
        *Permission.objects.filter(codename__in=["listen_recording", "read_colleagues_notes", "view_kpis"])
    )
    boss = AgentFactory(user=supervisor(sees_raw_text=True))
    agents = [floor.agent, floor.colleague, floor.other_agent, boss]

    together = viewers_of_agents({agent.pk for agent in agents})

    assert together == {agent.pk: viewer_of_user(agent.user) for agent in agents}
    assert (together[floor.colleague.pk].sees_raw_text, together[floor.other_agent.pk].sees_every_call) == (
        True,
        True,
    )


CONVERSATION_ACTIONS = {  # the inbox's actions, as its forms post them
    "claim": {}, "close": {}, "transfer": {"to": "queue:0"}, "read": {}, "typing": {},
    "reply": {"kind": "text", "text": "Hello", "idempotency_key": "matrix-1"},
    "notes": {"text": "A note"},
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("action", list(CONVERSATION_ACTIONS))
def test_the_inbox_actions_on_a_conversation_are_not_found_for_an_agent_of_another_number(
    client, floor, action
):
    client.force_login(user_of("agent of another number", floor))
    before = (Conversation.objects.get(pk=floor.conversation.pk).state, Message.objects.count())
    notes = ConversationNote.objects.count()

    response = client.post(f"/inbox/{floor.conversation.pk}/{action}/", CONVERSATION_ACTIONS[action])

    assert response.status_code == 404
    assert (Conversation.objects.get(pk=floor.conversation.pk).state, Message.objects.count()) == before
    assert ConversationNote.objects.count() == notes


CALLING_SETTINGS_POSTED = {  # the onboarding page's form, as it posts it
    "status": "ENABLED", "call_icon_visibility": "DEFAULT", "callback_permission_status": "DISABLED",
    "call_hours_status": "", "timezone_id": "", "holiday_rows": "1",
}  # fmt: skip
SETS_CALLING_SETTINGS = {  # who: (the answer, attempts recorded): only administrators reach Meta
    "agent of the call": (302, 0), "supervisor": (403, 0), "supervisor with raw": (403, 0),
    "administrator": (200, 1),  # Meta is unreachable here: the attempt is recorded as refused
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("who", list(SETS_CALLING_SETTINGS))
def test_only_administrators_set_a_numbers_calling_settings(client, floor, who):
    user = UserFactory(is_staff=True, is_superuser=True) if who == "administrator" else user_of(who, floor)
    client.force_login(user)

    response = client.post(f"/numbers/{floor.x.pk}/onboarding/", CALLING_SETTINGS_POSTED)

    assert (response.status_code, CallingSettingsChange.objects.count()) == SETS_CALLING_SETTINGS[who]
