import pytest
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory
from messaging.models import CannedReply, Conversation, Message
from messaging.tests.conftest import customer_writes
from tests.e2e.conftest import sign_in
from whatsapp.tests import payloads
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e


def test_a_waiting_customer_shows_up_live_and_the_agent_takes_and_answers(live_server_url, browser):
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.AWAY, display_name="Amira Haddad")  # away: nothing is routed
    QueueMembership.objects.create(queue=queue, agent=agent)
    page = browser.new_context().new_page()
    sign_in(page, live_server_url, agent.user.username, PASSWORD)
    page.goto(f"{live_server_url}/inbox/?tab=waiting")
    expect(page.locator("#inbox")).to_have_attribute("data-live", "true")

    customer_writes("447700900333", "wamid.inbox.1", text="Is my order on its way?")

    conversation = Conversation.objects.get()
    expect(page.locator(f'[data-conversation="{conversation.pk}"]')).to_be_visible()
    Agent.objects.filter(pk=agent.pk).update(status=Agent.Status.AVAILABLE)  # back, without routing
    page.click(f'[data-conversation="{conversation.pk}"] a')
    expect(page.locator('[data-role="thread"]')).to_contain_text("Is my order on its way?")
    page.keyboard.press("Alt+a")
    expect(page.locator(".notices")).to_contain_text("It is yours.")
    expect(page.locator("#inbox")).to_have_attribute("data-live", "true")  # its keys are listened to
    page.fill('[data-role="reply-text"]', "Yes, it arrives tomorrow.")
    page.keyboard.press("Control+Enter")
    expect(page.locator('[data-role="thread"]')).to_contain_text("Yes, it arrives tomorrow.")

    reply = Message.objects.get(direction=Message.Direction.OUTBOUND)
    conversation.refresh_from_db()
    assert (conversation.state, conversation.agent_id) == (Conversation.State.ASSIGNED, agent.pk)
    assert (reply.text, reply.sent_by_id, reply.contact_id) == (
        "Yes, it arrives tomorrow.", agent.user_id, conversation.contact_id,
    )  # fmt: skip


def test_a_canned_reply_is_typed_by_its_shortcut_and_a_note_shows_live_in_the_agents_tabs(
    live_server_url, browser
):
    number = BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.AVAILABLE, display_name="Amira Haddad")
    QueueMembership.objects.create(queue=queue, agent=agent)
    CannedReply.objects.create(shortcut="thanks", title="Thanks", text="Thank you for your patience!")
    customer_writes("447700900333", "wamid.inbox.2", text="Where is my parcel?")  # routed to the agent
    conversation = Conversation.objects.get(agent=agent)
    context = browser.new_context()
    writing, other = context.new_page(), context.new_page()
    sign_in(writing, live_server_url, agent.user.username, PASSWORD)
    for page in (writing, other):
        page.goto(f"{live_server_url}/inbox/{conversation.pk}/")
        expect(page.locator("#inbox")).to_have_attribute("data-live", "true")

    writing.click('[data-role="reply-text"]')
    writing.keyboard.type("Hello! /thanks")
    writing.keyboard.press("Tab")
    writing.fill('[data-role="note-text"]', "Wants a call after 5")
    writing.click('[data-action="note"]')

    expect(other.locator('[data-role="thread"] .note')).to_contain_text("Wants a call after 5")
    expect(writing.locator('[data-role="thread"] .note')).to_contain_text("Wants a call after 5")
    expect(writing.locator('[data-role="reply-text"]')).to_have_value("Hello! Thank you for your patience!")
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()
