from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from agents.models import Agent
from agents.tests.factories import PASSWORD, AgentFactory
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_presence_toggle_round_trips_across_two_tabs(live_server_url, browser):
    agent = AgentFactory(status=Agent.Status.OFFLINE, display_name="Amira Haddad")
    context = browser.new_context()
    first_tab = context.new_page()
    sign_in(first_tab, live_server_url, agent.user.username, PASSWORD)
    second_tab = context.new_page()
    second_tab.goto(f"{live_server_url}/")
    for tab in (first_tab, second_tab):
        expect(tab.locator("#presence")).to_have_attribute("data-connected", "true")

    first_tab.click("button[data-status-choice=available]")

    expect(second_tab.locator("#presence")).to_have_attribute("data-status", "available")
    expect(second_tab.locator("[data-role=status-label]")).to_have_text("Available")
    expect(first_tab.locator("button[data-status-choice=available]")).to_have_attribute(
        "aria-pressed", "true"
    )
    agent.refresh_from_db()
    assert agent.status == Agent.Status.AVAILABLE

    second_tab.reload()

    expect(second_tab.locator("[data-role=status-label]")).to_have_text("Available")
    second_tab.screenshot(path="var/dashboard.png")
    context.close()


def test_agent_is_rung_in_every_tab_and_accepts_in_one(live_server_url, browser):
    from django.contrib.auth.models import Permission

    from agents.models import QueueMembership
    from agents.tests.factories import QueueFactory
    from calls import routing
    from calls.models import Call, LiveCallCount
    from calls.tests.factories import CallFactory, ContactFactory
    from whatsapp.tests.factories import BusinessNumberFactory

    agent = AgentFactory(status=Agent.Status.AVAILABLE, display_name="Bruno Costa")
    # Chen Wei's notes reach Bruno's ring as he may read colleagues' notes (masked: he may not read raw).
    agent.user.user_permissions.add(Permission.objects.get(codename="read_colleagues_notes"))
    number = BusinessNumberFactory()
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    QueueMembership.objects.create(queue=queue, agent=agent)
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    contact = ContactFactory(wa_id="5511987650000", name="Lucia Santos", country="BR")
    CallFactory(
        contact=contact,
        business_number=number,
        status=Call.Status.ENDED,
        end_reason=Call.EndReason.COMPLETED,
        agent=AgentFactory(display_name="Chen Wei"),
        disposition=Call.Disposition.FOLLOW_UP,
        wrap_up_notes="Wants a refund for order 4521 to card 4111 1111 1111 1111.",
    )
    call = CallFactory(
        queue=queue,
        business_number=number,
        contact=contact,
        status=Call.Status.QUEUED,
        media_channel="media.test!1",
    )
    context = browser.new_context()
    first_tab = context.new_page()
    sign_in(first_tab, live_server_url, agent.user.username, PASSWORD)
    second_tab = context.new_page()
    second_tab.goto(f"{live_server_url}/")
    for tab in (first_tab, second_tab):
        expect(tab.locator("#presence")).to_have_attribute("data-connected", "true")

    # As the media process would, from its own thread (Playwright's loop runs in this one).
    with ThreadPoolExecutor(1) as media_process:
        media_process.submit(routing.call_waits, call_id=call.pk).result()

    for tab in (first_tab, second_tab):
        expect(tab.locator("#ring")).to_be_visible()
        expect(tab.locator("#ring [data-role=caller-name]")).to_have_text("Lucia Santos")
        expect(tab.locator("#ring [data-role=caller-number]")).to_have_text("+5511987650000")
        expect(tab.locator("#ring [data-role=last-call]")).to_contain_text(
            "with Chen Wei: Needs a follow-up · “Wants a refund for order 4521 to card [card].”"
        )
        expect(tab.locator("#presence")).to_have_attribute("data-status", "ringing")
        # While rung the agent can step away (the ring then moves on), not go available.
        expect(tab.locator("button[data-status-choice=away]")).to_be_enabled()
        expect(tab.locator("button[data-status-choice=available]")).to_be_disabled()
    first_tab.screenshot(path="var/dashboard-ringing.png")

    second_tab.click("#ring [data-action=accept]")

    for tab in (first_tab, second_tab):
        expect(tab.locator("#ring")).to_be_hidden()
        expect(tab.locator("#in-call")).to_be_visible()
        expect(tab.locator("#presence")).to_have_attribute("data-status", "on_call")
    call.refresh_from_db()
    assert (call.status, call.agent_id) == ("connected", agent.pk)
    context.close()


def test_wrap_up_keeps_what_the_agent_typed_until_filed(live_server_url, browser):
    from agents.presence import wrap_up_draft
    from calls.models import Call
    from calls.tests.factories import CallFactory
    from tests.e2e.conftest import wait_for

    agent = AgentFactory(status=Agent.Status.WRAP_UP, display_name="Amira Haddad")
    call = CallFactory(status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED, agent=agent)
    page = browser.new_context().new_page()
    sign_in(page, live_server_url, agent.user.username, PASSWORD)
    expect(page.locator("#in-call [data-role=wrap-up]")).to_be_visible()
    page.select_option("#disposition", "follow_up")
    page.fill("#wrap-up-notes", "Wants a refund for order 4521.")
    wait_for(lambda: wrap_up_draft(agent_id=agent.pk, call_id=call.pk))

    page.click("button[data-status-choice=away]")  # the call is not filed: refused, nothing lost

    expect(page.locator("[data-role=error]")).to_contain_text("File the call first")
    expect(page.locator("#wrap-up-notes")).to_have_value("Wants a refund for order 4521.")
    expect(page.locator("#presence")).to_have_attribute("data-status", "wrap_up")
    page.reload()
    expect(page.locator("#disposition")).to_have_value("follow_up")
    expect(page.locator("#wrap-up-notes")).to_have_value("Wants a refund for order 4521.")
    page.click("#in-call form button[value=away]")
    expect(page.locator("#presence")).to_have_attribute("data-status", "away")
    expect(page.locator("#in-call")).to_be_hidden()
    call.refresh_from_db()
    assert (call.disposition, call.wrap_up_notes) == ("follow_up", "Wants a refund for order 4521.")
    page.context.close()


def test_microphone_test_shows_the_level_then_lets_the_microphone_go(live_server_url, browser):
    agent = AgentFactory(status=Agent.Status.OFFLINE)
    page = browser.new_context().new_page()
    sign_in(page, live_server_url, agent.user.username, PASSWORD)

    page.click("[data-action=mic-test]")

    page.wait_for_function("document.querySelector('[data-role=mic-test-level]').value > 0")
    expect(page.locator("[data-role=mic-test-state]")).to_have_text("Your microphone works.", timeout=10_000)
    expect(page.locator("[data-role=mic-test-meter]")).to_be_hidden()
    expect(page.locator("[data-action=mic-test]")).to_be_enabled()
    page.context.close()


def test_the_ring_shows_the_chat_the_caller_came_from_and_the_call_shows_its_thread(live_server_url, browser):
    from django.utils import timezone

    from agents.models import QueueMembership
    from agents.tests.factories import QueueFactory
    from assistant.models import Lead
    from calls import routing
    from calls.models import Call, LiveCallCount
    from calls.tests.factories import CallFactory, ContactFactory
    from messaging.models import Conversation, Message
    from messaging.tests.factories import ConversationFactory
    from whatsapp.tests.factories import BusinessNumberFactory

    agent = AgentFactory(status=Agent.Status.AVAILABLE, display_name="Dana Reyes")
    number = BusinessNumberFactory()
    queue = QueueFactory(name="Sales")
    queue.business_numbers.add(number)
    QueueMembership.objects.create(queue=queue, agent=agent)
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    contact = ContactFactory(wa_id="447700900777", name="Omar Said", country="GB")
    chat = ConversationFactory(contact=contact, business_number=number, state=Conversation.State.ASSISTANT)
    Message.objects.create(
        business_number=number, contact=contact, direction=Message.Direction.INBOUND, message_type="text",
        text="Can I pay with card 4111 1111 1111 1111?", wa_message_id="wamid.HANDOFF1",
        status=Message.Status.RECEIVED, created_at=timezone.now(),
    )  # fmt: skip
    Lead.objects.create(
        conversation=chat, score=82, sentiment=Lead.Sentiment.CALM,
        summary="Omar wants the enterprise plan for 25 people this week; mail omar@example.com.",
        fields={"plan": "enterprise", "team_size": "25", "timeline": "this week"},
    )  # fmt: skip
    call = CallFactory(
        queue=queue, business_number=number, contact=contact, conversation=chat,
        status=Call.Status.QUEUED, media_channel="media.test!1",
    )  # fmt: skip
    tab = browser.new_context().new_page()
    sign_in(tab, live_server_url, agent.user.username, PASSWORD)
    expect(tab.locator("#presence")).to_have_attribute("data-connected", "true")

    with ThreadPoolExecutor(1) as media_process:
        media_process.submit(routing.call_waits, call_id=call.pk).result()

    card = tab.locator("#ring [data-role=chat]")
    expect(card).to_be_visible()
    expect(card.locator("[data-role=chat-summary]")).to_have_text(
        "Omar wants the enterprise plan for 25 people this week; mail [email]."
    )
    expect(card.locator("[data-role=chat-fields]")).to_have_text("PlanenterpriseTeam size25Timelinethis week")
    expect(card.locator("[data-role=chat-score]")).to_have_text("82/100")
    expect(card.locator("[data-role=chat-sentiment]")).to_have_text(" · calm")
    expect(card.locator("[data-role=chat-link]")).to_have_attribute("href", f"/inbox/{chat.pk}/")
    tab.screenshot(path="var/dashboard-ringing-after-chat.png")

    tab.click("#ring [data-action=accept]")

    expect(tab.locator("#in-call")).to_be_visible()
    expect(tab.locator("#call-chat")).to_be_visible()
    expect(tab.locator("#call-chat [data-role=chat-thread]")).to_contain_text("Can I pay with card [card]?")
    tab.context.close()
