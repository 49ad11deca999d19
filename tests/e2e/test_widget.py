"""The call widget in a CRM's page, in Chromium: the CRM's page (one origin) embeds the softphone
from Switchboard (another origin and site), the agent signs in inside the frame, and the page calls
a customer of the sandbox through postMessage and hears the call connect and end. A page of an
origin the key does not allow cannot frame it, and a frame of such an origin cannot drive it; revoking
the key closes the widget."""

import contextlib
import http.server
import threading
from collections.abc import Iterator

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Agent
from agents.tests.factories import PASSWORD
from calls.models import Call
from compliance.models import CallPermission
from integrations.models import ApiKey
from integrations.services import api_key_create, api_key_revoke
from messaging.models import Contact
from tests.e2e.conftest import free_port, wait_for
from tests.e2e.test_outbound_compliance import CUSTOMER, outbound_serving
from whatsapp.sandbox.customers import Behaviour

pytestmark = pytest.mark.e2e

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>CRM</title></head>
<body>
<h1>Noor Aziz</h1>
<div id="softphone"></div>
<script>
  window.heard = [];
  window.addEventListener("message", (event) => {{
    if (event.origin === "{switchboard}") window.heard.push(event.data);
  }});
</script>
<script src="{switchboard}/widget.js" data-key="{key}" data-target="#softphone"></script>
{extra}
</body></html>"""

# A frame of another origin inside the CRM's page, trying to drive the widget (its sibling).
ROGUE_PAGE = """<!doctype html><html><body><script>
  const widget = window.parent.frames[0];
  setInterval(() => {{
    widget.postMessage({{type: "switchboard.sign_in", token: "stolen"}}, "*");
    widget.postMessage({{type: "switchboard.call", to: "+{customer}"}}, "*");
  }}, 200);
</script></body></html>"""


@contextlib.contextmanager
def pages_serving(pages: dict[str, str]) -> Iterator[str]:
    """A web server for `pages` (path → HTML) on localhost: another site than 127.0.0.1."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def heard(page, kind: str) -> list[dict]:
    return page.evaluate(f"window.heard.filter((message) => message.type === 'switchboard.{kind}')")


def wait_heard(page, kind: str, timeout_s: float = 20.0) -> dict:
    return wait_for(lambda: (heard(page, kind) or [None])[-1], timeout_s=timeout_s)


def host_page(crm: str, key: ApiKey, live_server_url: str, extra: str = "") -> str:
    return HOST_PAGE.format(switchboard=live_server_url, key=key.prefix, extra=extra)


def test_a_crm_page_places_a_call_through_the_widget_and_hears_it_connect_and_end(
    transactional_db, browser, settings_for_media, tmp_path
):
    # Picked up after 1 s, hung up after 4 s: within the recording notice, which is fine here.
    behaviour = Behaviour(business_call="answer", answer_after_s=1.0, talk_s=4.0)
    pages: dict[str, str] = {}
    with (
        pages_serving(pages) as crm,
        outbound_serving(settings_for_media, tmp_path, behaviour) as (
            sandbox_thread,
            sandbox,
            url,
            number,
            agent,
        ),
    ):
        key, _ = api_key_create(
            name="CRM", scopes=[ApiKey.Scope.CALLS_WRITE], business_number_ids=[number.pk],
            created_by_id=None, allowed_origins=[crm],
        )  # fmt: skip
        permission = sandbox_thread.call(sandbox.meta.permission, number.phone_number_id, CUSTOMER)
        sandbox_thread.call(setattr, permission, "status", "permanent")
        contact, _ = Contact.objects.get_or_create(wa_id=CUSTOMER, defaults={"name": "Noor Aziz"})
        CallPermission.objects.update_or_create(
            business_number=number,
            contact=contact,
            defaults={"status": "permanent", "granted_at": timezone.now()},
        )
        pages["/customer"] = host_page(crm, key, url)
        page = browser.new_context().new_page()
        page.goto(f"{crm}/customer")

        # The agent signs in inside the frame: no cookie of ours reaches a third-party frame.
        assert wait_heard(page, "ready")["signed_in"] is False
        widget = page.frame_locator("#softphone iframe")
        widget.locator("#widget-username").fill(agent.user.username)
        widget.locator("#widget-password").fill(PASSWORD)
        widget.locator("#widget-sign-in button[type=submit]").click()
        assert wait_heard(page, "signed_in")["agent"]["name"] == "Ines Duarte"
        widget.locator("button[data-status-choice=available]").click()
        expect(widget.locator("#presence")).to_have_attribute("data-status", "available", timeout=10_000)

        # The CRM's page asks for the call; the widget dials, and tells the page what happens.
        page.evaluate(
            """(to) => Switchboard.frame.contentWindow.postMessage(
                {type: "switchboard.call", to}, Switchboard.origin)""",
            "+44 7700 900820",
        )
        dialing = wait_heard(page, "dialing")
        connected = wait_heard(page, "connected", timeout_s=30)
        ended = wait_heard(page, "ended", timeout_s=30)
        expect(widget.locator("#in-call [data-role=call-state]")).to_have_text("Call ended: wrap-up")
        page.screenshot(path="var/widget-call-ended.png")
        expect(widget.locator("#in-call [data-action=hangup]")).to_be_hidden()  # nothing left to hang up
        order = [message["type"] for message in page.evaluate("window.heard")]
        page.context.close()

    call = Call.objects.get(direction="outbound")
    steps = ["switchboard.dialing", "switchboard.connected", "switchboard.ended"]
    assert [kind for kind in order if kind in steps] == steps
    assert dialing["call_id"] == connected["call_id"] == ended["call_id"] == call.pk
    assert (dialing["customer_number"], connected["direction"]) == (f"+{CUSTOMER}", "outbound")
    assert (call.status, call.end_reason, call.agent_id) == ("ended", "completed", agent.pk)
    assert Agent.objects.get(pk=agent.pk).status == "wrap_up"


def test_only_allowed_origins_frame_the_widget_and_drive_it(transactional_db, browser, settings):
    from tests.e2e.conftest import serving_app

    pages: dict[str, str] = {}
    with pages_serving(pages) as crm, pages_serving(pages) as stranger, serving_app() as url:
        from agents.models import QueueMembership
        from agents.tests.factories import AgentFactory, QueueFactory
        from whatsapp.tests.factories import BusinessNumberFactory

        number = BusinessNumberFactory()
        queue = QueueFactory()
        queue.business_numbers.add(number)
        agent = AgentFactory(status=Agent.Status.AVAILABLE)
        QueueMembership.objects.create(queue=queue, agent=agent)
        key, secret = api_key_create(
            name="CRM", scopes=[ApiKey.Scope.CALLS_WRITE], business_number_ids=[number.pk],
            created_by_id=None, allowed_origins=[crm],
        )  # fmt: skip
        rogue = f'<iframe src="{stranger}/rogue"></iframe>'
        pages["/customer"] = host_page(crm, key, url, extra=rogue)
        pages["/rogue"] = ROGUE_PAGE.format(customer=CUSTOMER)
        pages["/elsewhere"] = host_page(stranger, key, url)
        context = browser.new_context()

        # A page of an origin the key does not name: the browser refuses to show the frame.
        elsewhere = context.new_page()
        refused = []
        elsewhere.on(
            "response", lambda response: "/widget/frame/" in response.url and refused.append(response)
        )
        elsewhere.goto(f"{stranger}/elsewhere")
        wait_for(lambda: refused)
        elsewhere.wait_for_timeout(500)
        assert refused[0].headers["content-security-policy"] == f"frame-ancestors {crm}"
        assert elsewhere.evaluate("window.heard.length") == 0  # no widget ever spoke to it
        assert elsewhere.frame_locator("#softphone iframe").locator("#widget-sign-in").count() == 0

        # The CRM's own page: its backend mints a sign-in token, the page hands it to the widget.
        page = context.new_page()
        page.goto(f"{crm}/customer")
        wait_heard(page, "ready")
        page.wait_for_timeout(1000)  # the rogue frame has tried its commands several times by now
        assert heard(page, "signed_in") == [] and heard(page, "error") == []
        minted = httpx.post(
            f"{url}/api/v1/widget/tokens/",
            json={"agent_id": agent.pk},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert minted.status_code == 201, minted.text
        page.evaluate("(token) => Switchboard.signIn(token)", minted.json()["token"])
        wait_heard(page, "signed_in")

        # The widget knows the compliance state: asked to show a customer it may not call, the
        # Call button explains itself and the fallback is offered.
        page.evaluate("(to) => Switchboard.showContact(to)", f"+{CUSTOMER}")
        compliance = wait_heard(page, "compliance")
        widget = page.frame_locator("#softphone iframe")
        expect(widget.locator("#dialer li[data-code=no_permission]")).to_be_visible()
        expect(widget.locator("#dialer [data-action=fallback]")).to_have_text("Ask for permission to call")
        page.screenshot(path="var/widget-compliance.png")

        # Revoking the key closes the widget at once: it says so, and does not try to reconnect.
        api_key_revoke(key_id=key.pk)
        revoked = wait_heard(page, "error")
        expect(widget.locator("#presence [data-role=connection]")).to_have_text("closed")
        context.close()

    assert (compliance["is_allowed"], compliance["fallback"]["kind"]) == (False, "permission_request")
    assert [refusal["code"] for refusal in compliance["refusals"]] == ["no_permission"]
    assert Call.objects.count() == 0  # the rogue frame's calls went nowhere
    assert revoked["code"] == "key_revoked"
