"""The call widget's server side: who may frame it, signing in inside it, its socket."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import signing
from django.core.cache import caches

from agents.models import Agent, QueueMembership
from agents.services import agents_tell_permission_lost
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory, UserFactory
from agents.tests.test_consumers import _session_cookie, open_socket
from calls import routing
from calls.models import Call, LiveCallCount
from calls.tests.factories import CallFactory, ContactFactory
from compliance.models import CallPermission
from compliance.tests.factories import CallPermissionFactory
from config.asgi import application
from integrations import widget
from integrations.consumers import CLOSE_KEY_REVOKED
from integrations.models import ApiKey, ApiWrite
from integrations.services import api_key_create, api_key_revoke, origin_normalise
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db
CRM = "https://crm.example.com"


@pytest.fixture
def desk():
    """A number, its queue and agent, another business's number and agent, and the CRM's key."""
    caches["api"].clear()
    number, elsewhere = BusinessNumberFactory(), BusinessNumberFactory()
    agents = []
    for served in (number, elsewhere):
        queue = QueueFactory()
        queue.business_numbers.add(served)
        agents.append(AgentFactory())
        QueueMembership.objects.create(queue=queue, agent=agents[-1])
    key, token = api_key_create(
        name="CRM", scopes=[ApiKey.Scope.CALLS_WRITE], business_number_ids=[number.pk], created_by_id=None,
        allowed_origins=[CRM],
    )  # fmt: skip
    return {"number": number, "agent": agents[0], "stranger": agents[1], "key": key, "token": token}


def sign_in(client, desk, **body):
    payload = {"key": desk["key"].prefix, "origin": CRM, **body}
    return client.post("/widget/session/", json.dumps(payload), content_type="application/json")


def password_sign_in(client, desk, agent=None):
    return sign_in(client, desk, username=(agent or desk["agent"]).user.username, password=PASSWORD)


def test_only_the_keys_origins_may_frame_the_widget(client, desk):
    response = client.get(f"/widget/frame/?key={desk['key'].prefix}")

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == f"frame-ancestors {CRM}"
    assert "X-Frame-Options" not in response
    assert response.context["config"]["allowed_origins"] == [CRM]
    assert 'id="widget-config"' in response.content.decode()


@pytest.mark.parametrize("case", ["unknown", "revoked", "no origins"])
def test_a_frame_of_a_bad_key_is_refused_and_framed_by_no_one(client, desk, case):
    key = desk["key"]
    if case == "revoked":
        api_key_revoke(key_id=key.pk)
    if case == "no origins":
        ApiKey.objects.filter(pk=key.pk).update(allowed_origins=[])

    response = client.get(f"/widget/frame/?key={'nope' if case == 'unknown' else key.prefix}")

    assert response.status_code == 403
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_the_host_script_is_served_to_any_page(client):
    response = client.get("/widget.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert b"switchboard.hello" in response.content


def test_an_agent_signs_in_with_a_password_and_gets_the_softphone(client, desk):
    response = password_sign_in(client, desk)

    assert response.status_code == 200, response.json()
    session = response.json()["session"]
    assert response.json()["agent"]["id"] == desk["agent"].pk
    assert not response.cookies  # nothing for the third-party frame to keep but what it is given
    panels = client.get("/widget/softphone/", HTTP_AUTHORIZATION=f"Widget {session}")
    assert panels.status_code == 200
    html = panels.content.decode()
    assert f'data-socket-path="/ws/widget/?widget={session}"' in html
    assert f'<option value="{desk["number"].pk}">' in html


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"origin": "https://elsewhere.example.com"}, 403, "origin_not_allowed"),
        ({"key": "0000"}, 403, "bad_key"),
        ({"password": "wrong"}, 401, "bad_credentials"),
        ({"password": ""}, 400, "invalid"),
    ],
)
def test_sign_in_refusals(client, desk, change, status, code):
    body = {"username": desk["agent"].user.username, "password": PASSWORD, **change}

    response = sign_in(client, desk, **body)

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_an_agent_of_another_business_cannot_sign_in_to_this_widget(client, desk):
    response = password_sign_in(client, desk, desk["stranger"])

    assert (response.status_code, response.json()["code"]) == (403, "not_an_agent")


def test_a_user_who_is_no_agent_cannot_sign_in(client, desk):
    UserFactory(username="sam")

    response = sign_in(client, desk, username="sam", password=PASSWORD)

    assert (response.status_code, response.json()["code"]) == (403, "not_an_agent")


def test_password_guessing_is_stopped(client, desk):
    for _ in range(settings.SIGN_IN_FAILURES_PER_ACCOUNT):
        assert (
            sign_in(client, desk, username=desk["agent"].user.username, password="guess").status_code == 401
        )

    assert password_sign_in(client, desk).status_code == 429


def test_password_guessing_on_the_sign_in_page_locks_the_widget_too(client, desk):
    username = desk["agent"].user.username
    for _ in range(settings.SIGN_IN_FAILURES_PER_ACCOUNT):
        client.post("/login/", {"username": username.upper(), "password": "guess"})

    response = password_sign_in(client, desk)

    assert (response.status_code, response.json()["code"]) == (429, "throttled")


@pytest.mark.parametrize("body", [b"[1]", b"{", b"\xff", b"x" * 5000])
def test_bad_sign_in_bodies_get_a_clear_error(client, body):
    response = client.post("/widget/session/", body, content_type="application/json")

    assert response.status_code in (400, 413)
    assert response.json()["detail"]


def mint(client, desk, agent_id, token=None):
    return client.post(
        "/api/v1/widget/tokens/", {"agent_id": agent_id}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token or desk['token']}",
    )  # fmt: skip


def test_the_crm_mints_a_one_time_sign_in_token(client, desk):
    minted = mint(client, desk, desk["agent"].pk)

    assert minted.status_code == 201, minted.content
    assert minted.json()["expires_in_s"] == widget.SIGN_IN_TOKEN_S
    write = ApiWrite.objects.get()
    assert (write.operation, write.key, write.status_code) == ("widget_tokens.create", desk["key"], 201)
    assert write.target == {"agent": desk["agent"].pk}
    first = sign_in(client, desk, token=minted.json()["token"])
    assert first.status_code == 200
    assert first.json()["agent"]["id"] == desk["agent"].pk
    again = sign_in(client, desk, token=minted.json()["token"])
    assert (again.status_code, again.json()["code"]) == (401, "bad_token")


def test_tokens_only_for_the_keys_agents_and_with_the_calls_scope(client, desk):
    assert mint(client, desk, desk["stranger"].pk).status_code == 404
    _, read_only = api_key_create(
        name="Reader", scopes=[ApiKey.Scope.READ], business_number_ids=[desk["number"].pk], created_by_id=None
    )
    assert mint(client, desk, desk["agent"].pk, token=read_only).status_code == 403
    assert client.post("/api/v1/widget/tokens/", {"agent_id": desk["agent"].pk}).status_code == 401


def test_an_old_or_foreign_token_does_not_sign_in(client, desk, monkeypatch):
    token = widget.widget_sign_in_token_mint(key=desk["key"], agent=desk["agent"])
    other, _ = api_key_create(
        name="Other", scopes=[ApiKey.Scope.CALLS_WRITE], business_number_ids=[desk["number"].pk],
        created_by_id=None, allowed_origins=[CRM],
    )  # fmt: skip
    foreign = sign_in(client, {**desk, "key": other}, token=token)
    monkeypatch.setattr(widget, "SIGN_IN_TOKEN_S", -1)
    expired = sign_in(client, desk, token=token)

    assert (foreign.status_code, foreign.json()["code"]) == (401, "bad_token")
    assert (expired.status_code, expired.json()["code"]) == (401, "bad_token")


@pytest.mark.parametrize("ends", ["key revoked", "origin removed", "password changed", "tampered"])
def test_a_widget_session_ends_with_its_key_origin_or_password(client, desk, ends):
    session = password_sign_in(client, desk).json()["session"]
    if ends == "key revoked":
        api_key_revoke(key_id=desk["key"].pk)
    elif ends == "origin removed":
        ApiKey.objects.filter(pk=desk["key"].pk).update(allowed_origins=["https://other.example.com"])
    elif ends == "password changed":
        user = desk["agent"].user
        user.set_password("another-long-password")
        user.save()
    else:
        session = session[:-2] + ("AA" if not session.endswith("AA") else "BB")

    response = client.get("/widget/softphone/", HTTP_AUTHORIZATION=f"Widget {session}")

    assert response.status_code == 401
    assert widget.widget_session_check(session) is None


def test_a_session_from_another_salt_is_not_a_widget_session(desk):
    user = desk["agent"].user
    claims = {"u": user.pk, "k": desk["key"].pk, "o": CRM, "h": user.get_session_auth_hash()}
    forged = signing.dumps(claims, compress=True)  # every claim right: only the salt differs

    assert widget.widget_session_check(forged) is None
    assert widget.widget_session_check(signing.dumps(claims, salt=widget.SESSION_SALT, compress=True))


async def open_widget_socket(session: str) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    return WebsocketCommunicator(application, f"/ws/widget/?widget={session}", headers=headers)


@pytest.mark.django_db(transaction=True)
async def test_the_frames_socket_signs_in_with_the_widget_session(client, desk):
    response = await sync_to_async(password_sign_in)(client, desk)
    socket = await open_widget_socket(response.json()["session"])

    connected, _ = await socket.connect()
    presence = await socket.receive_json_from(timeout=5)
    await socket.disconnect()

    assert connected
    assert (presence["type"], presence["agent_id"]) == ("agent.status", desk["agent"].pk)


@pytest.mark.django_db(transaction=True)
async def test_a_bad_widget_session_opens_no_socket_even_beside_a_signed_in_cookie(desk):
    # The frame's socket is signed in by its widget session alone: a cookie of a signed-in
    # dashboard in the same browser does not stand in for a bad one.
    cookie = await sync_to_async(_session_cookie)(desk["agent"].user)
    headers = [
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    socket = WebsocketCommunicator(application, "/ws/widget/?widget=not-a-session", headers=headers)

    connected, code = await socket.connect()

    assert (connected, code) == (False, 4401)


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://CRM.example.com/", "https://crm.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://crm.example.com:443", "https://crm.example.com"),
        ("https://crm.example.com/path", None),
        ("ftp://crm.example.com", None),
        ("https://user:pw@crm.example.com", None),
        ("crm.example.com", None),
        ("https://crm.example.com:99999", None),
    ],
)
def test_origins_are_checked_and_written_as_browsers_send_them(text, origin):
    assert origin_normalise(text) == origin


@pytest.mark.django_db(transaction=True)
async def test_a_widget_session_opens_no_dashboard_socket(client, desk):
    # The dashboard's socket acts for every number of the agent; the widget's only for its key's.
    session = (await sync_to_async(password_sign_in)(client, desk)).json()["session"]
    headers = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
    socket = WebsocketCommunicator(application, f"/ws/agent/?widget={session}", headers=headers)

    connected, code = await socket.connect()

    assert (connected, code) == (False, 4401)


@pytest.fixture
def two_lines(desk):
    """The desk's agent, available, also serves another number of a queue the CRM's key does not
    cover: the key's number is "ours", the other "theirs"."""
    theirs = BusinessNumberFactory()
    queue = QueueFactory(name="Other line")
    queue.business_numbers.add(theirs)
    QueueMembership.objects.create(queue=queue, agent=desk["agent"])
    Agent.objects.filter(pk=desk["agent"].pk).update(status=Agent.Status.AVAILABLE)
    return {**desk, "ours": desk["number"], "theirs": theirs}


def queued_call(number) -> Call:
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    return CallFactory(
        queue=number.queues.get(), business_number=number, status=Call.Status.QUEUED,
        contact=ContactFactory(wa_id="5511987654321", name="Lucia Santos"), media_channel="media.test!1",
    )  # fmt: skip


async def open_sockets(client, desk) -> tuple[WebsocketCommunicator, WebsocketCommunicator]:
    """The agent's dashboard socket and widget socket, both connected, past their presence frames."""
    session = (await sync_to_async(password_sign_in)(client, desk)).json()["session"]
    dashboard, widget_socket = await open_socket(desk["agent"].user), await open_widget_socket(session)
    for socket in (dashboard, widget_socket):
        connected, _ = await socket.connect()
        assert connected
        assert (await socket.receive_json_from(timeout=5))["type"] == "agent.status"
    return dashboard, widget_socket


async def received(socket: WebsocketCommunicator, quiet_s: float = 0.5) -> list[dict]:
    """Every frame the socket gets until it has been quiet for `quiet_s`."""
    frames = []
    while not await socket.receive_nothing(timeout=quiet_s):
        frames.append(await socket.receive_json_from())
    return frames


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("line", "widget_hears"), [("ours", ["agent.status", "call.offered"]), ("theirs", ["agent.status"])]
)
async def test_a_widget_socket_is_rung_only_for_its_keys_numbers_the_dashboard_for_all(
    client, two_lines, line, widget_hears
):
    call = await sync_to_async(queued_call)(two_lines[line])
    dashboard, widget_socket = await open_sockets(client, two_lines)

    await sync_to_async(routing.call_waits)(call_id=call.pk)
    on_dashboard, on_widget = await received(dashboard), await received(widget_socket)

    assert [frame["type"] for frame in on_dashboard] == ["agent.status", "call.offered"]
    assert on_dashboard[1]["caller_name"] == "Lucia Santos"
    assert [frame["type"] for frame in on_widget] == widget_hears
    for socket in (dashboard, widget_socket):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_ring_of_another_number_is_taken_in_the_dashboard_not_in_the_widget(client, two_lines):
    call = await sync_to_async(queued_call)(two_lines["theirs"])
    dashboard, widget_socket = await open_sockets(client, two_lines)
    await sync_to_async(routing.call_waits)(call_id=call.pk)
    await received(dashboard)
    await received(widget_socket)  # the agent's status: ringing

    await widget_socket.send_json_to({"type": "call.accept", "call_id": call.pk})
    refused = await widget_socket.receive_json_from(timeout=5)
    await dashboard.send_json_to({"type": "call.accept", "call_id": call.pk})
    taken, heard_in_widget = await received(dashboard), await received(widget_socket)

    assert (refused["type"], refused["code"]) == ("error", "not_your_call")
    assert {"type": "call.accept.result", "call_id": call.pk, "is_won": True} in taken
    assert [frame["type"] for frame in heard_in_widget] == ["agent.status"]  # on a call, not which
    for socket in (dashboard, widget_socket):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_widget_checks_and_places_calls_from_its_keys_numbers_only(client, two_lines):
    dashboard, widget_socket = await open_sockets(client, two_lines)
    ours, theirs = two_lines["ours"].pk, two_lines["theirs"].pk

    asked = [
        ("widget ours", widget_socket, ours),
        ("widget theirs", widget_socket, theirs),
        ("dashboard theirs", dashboard, theirs),
    ]

    answers = {}
    for name, socket, number_id in asked:
        await socket.send_json_to(
            {
                "type": "call.check",
                "check_id": 1,
                "business_number_id": number_id,
                "customer": "+44 7700 900123",
            }
        )
        answers[name] = await socket.receive_json_from(timeout=5)
    await widget_socket.send_json_to(
        {"type": "call.dial", "business_number_id": theirs, "customer": "+44 7700 900123"}
    )
    dialed = await widget_socket.receive_json_from(timeout=5)

    assert (answers["widget ours"]["business_number_id"], "error" in answers["widget ours"]) == (ours, False)
    assert (answers["dashboard theirs"]["business_number_id"], "error" in answers["dashboard theirs"]) == (
        theirs, False,
    )  # fmt: skip
    widget_theirs = answers["widget theirs"]
    assert (widget_theirs["is_allowed"], widget_theirs["error"]["code"]) == (False, "invalid_number")
    assert "business_number_id" not in widget_theirs
    assert (dialed["type"], dialed["is_placed"], dialed["error"]["code"]) == (
        "call.dial.result", False, "invalid_number",
    )  # fmt: skip
    assert await sync_to_async(Call.objects.count)() == 0
    for socket in (dashboard, widget_socket):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_lost_permission_of_another_number_is_not_told_to_the_widget(client, two_lines):
    dashboard, widget_socket = await open_sockets(client, two_lines)
    permission = await sync_to_async(CallPermissionFactory)(
        business_number=two_lines["theirs"],
        owner=two_lines["agent"].user,
        status=CallPermission.Status.REVOKED,
    )

    await sync_to_async(agents_tell_permission_lost)([permission.pk])

    assert [frame["type"] for frame in await received(dashboard)] == ["permission.lost"]
    assert await received(widget_socket) == []
    for socket in (dashboard, widget_socket):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_revoking_the_key_closes_its_widget_sockets_at_once_and_they_do_not_open_again(
    client, two_lines
):
    session = (await sync_to_async(password_sign_in)(client, two_lines)).json()["session"]
    dashboard, widget_socket = await open_sockets(client, two_lines)

    await sync_to_async(api_key_revoke)(key_id=two_lines["key"].pk)
    closed = await widget_socket.receive_output(timeout=5)
    again = await open_widget_socket(session)
    reopened = await again.connect()

    assert closed == {"type": "websocket.close", "code": CLOSE_KEY_REVOKED}
    assert reopened == (False, 4401)
    assert await dashboard.receive_nothing(timeout=0.3)  # the agent's dashboard stays open
    for socket in (dashboard, widget_socket):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_widgets_ring_shows_the_chat_the_caller_came_from(client, two_lines):
    from assistant.models import Lead
    from messaging.tests.factories import ConversationFactory

    def call_after_chat() -> Call:
        call = queued_call(two_lines["ours"])
        chat = ConversationFactory(contact=call.contact, business_number=call.business_number)
        Lead.objects.create(conversation=chat, score=90, summary="Wants 25 seats.", fields={"plan": "team"})
        Call.objects.filter(pk=call.pk).update(conversation=chat)
        return call

    call = await sync_to_async(call_after_chat)()
    dashboard, widget_socket = await open_sockets(client, two_lines)

    await sync_to_async(routing.call_waits)(call_id=call.pk)
    [ring] = [frame for frame in await received(widget_socket) if frame["type"] == "call.offered"]

    chat = ring["chat"]
    assert (chat["summary"], chat["fields"], chat["score"]) == (
        "Wants 25 seats.",
        [{"name": "plan", "label": "Plan", "value": "team"}],
        90,
    )
    for socket in (dashboard, widget_socket):
        await socket.disconnect()
