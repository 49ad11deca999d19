from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory
from calls import routing
from calls.models import Call, LiveCallCount
from calls.tests.factories import CallFactory, ContactFactory
from messaging.models import Conversation, Message
from messaging.tests.factories import ConversationFactory
from tests.e2e.conftest import sign_in
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e


def customer_chat(number, agent, *, wa_id: str, name: str, text: str) -> Conversation:
    contact = ContactFactory(wa_id=wa_id, name=name)
    Message.objects.create(
        business_number=number, contact=contact, direction=Message.Direction.INBOUND, message_type="text",
        text=text, wa_message_id=f"wamid.{wa_id}", status=Message.Status.RECEIVED, created_at=timezone.now(),
    )  # fmt: skip
    return ConversationFactory(
        contact=contact, business_number=number, state=Conversation.State.ASSIGNED, agent=agent,
        assigned_at=timezone.now(),
    )  # fmt: skip


def test_an_agent_in_the_inbox_is_rung_and_moves_between_chats_on_one_socket(live_server_url, browser):
    agent = AgentFactory(status=Agent.Status.AVAILABLE, display_name="Amira Haddad")
    number = BusinessNumberFactory()
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    QueueMembership.objects.create(queue=queue, agent=agent)
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    parcel = customer_chat(number, agent, wa_id="447700900101", name="Priya Nair", text="Where is my parcel?")
    refund = customer_chat(number, agent, wa_id="447700900102", name="Tom Hale", text="I want a refund.")
    call = CallFactory(
        queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1",
        contact=ContactFactory(wa_id="447700900103", name="Lucia Santos"),
    )  # fmt: skip
    context = browser.new_context()
    signing_in = context.new_page()
    sign_in(signing_in, live_server_url, agent.user.username, PASSWORD)
    signing_in.close()  # the dashboard it lands on has its own socket
    page = context.new_page()
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"{live_server_url}/inbox/{parcel.pk}/")
    expect(page.locator("#inbox")).to_have_attribute("data-live", "true")
    expect(page.locator("#softphone-dock #presence")).to_have_attribute("data-connected", "true")
    expect(page.locator("#softphone-dock #my-day")).to_contain_text("0 calls taken")

    with ThreadPoolExecutor(1) as media_process:  # as the media process would, from its own thread
        media_process.submit(routing.call_waits, call_id=call.pk).result()

    expect(page.locator("#softphone-dock #ring")).to_be_visible()
    expect(page.locator("#ring [data-role=caller-name]")).to_have_text("Lucia Santos")
    expect(page.locator(".inbox-open [data-role=thread]")).to_contain_text("Where is my parcel?")
    page.screenshot(path="var/inbox-dock-ringing.png")
    page.click("#ring [data-action=accept]")
    expect(page.locator("#in-call")).to_be_visible()
    page.evaluate("window.stillThisPage = true")

    page.click(f'[data-conversation="{refund.pk}"] a')

    expect(page.locator(".inbox-open [data-role=thread]")).to_contain_text("I want a refund.")
    expect(page).to_have_url(f"{live_server_url}/inbox/{refund.pk}/?tab=mine")
    expect(page.locator("#in-call")).to_be_visible()
    expect(page.locator("#presence")).to_have_attribute("data-status", "on_call")
    assert page.evaluate("window.stillThisPage") is True  # the call's page was never left
    page.go_back()
    expect(page.locator(".inbox-open [data-role=thread]")).to_contain_text("Where is my parcel?")
    assert page.evaluate("window.stillThisPage") is True
    page.click(".inbox-open .call-link")  # "Call…" fills the docked dialer instead of leaving
    expect(page.locator("#dial-customer")).to_have_value("+447700900101")
    assert page.evaluate("window.stillThisPage") is True
    page.screenshot(path="var/inbox-dock-on-call.png")
    assert sockets == [f"{live_server_url.replace('http', 'ws')}/ws/agent/"]
    call.refresh_from_db()
    assert (call.status, call.agent_id) == (Call.Status.CONNECTED, agent.pk)
    context.close()
