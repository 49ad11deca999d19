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
