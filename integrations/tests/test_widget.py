"""The call widget's server side: who may frame it, signing in inside it, its socket."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core import signing
from django.core.cache import caches

from agents.models import QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory, UserFactory
from agents.tests.test_consumers import _session_cookie
from config.asgi import application
from integrations import widget
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
    assert f'data-socket-path="/ws/agent/?widget={session}"' in html
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
    return WebsocketCommunicator(application, f"/ws/agent/?widget={session}", headers=headers)


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
    socket = WebsocketCommunicator(application, "/ws/agent/?widget=not-a-session", headers=headers)

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
