"""Number onboarding, end to end: an administrator opens the onboarding page of a sandbox number with
two problems, sets its call hours, and sees Meta's (the sandbox's) answer."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from agents.tests.factories import PASSWORD, UserFactory
from tests.e2e.conftest import serving_app, sign_in
from whatsapp.models import CallingSettingsChange
from whatsapp.sandbox.meta import SANDBOX_APP_ID
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
TOKEN = "e2e-onboarding-token"


def test_an_administrator_fixes_the_call_hours_of_a_number_with_two_problems(browser, transactional_db):
    number = BusinessNumberFactory(phone_number_id="840000000000001", display_phone_number="+44 20 7946 0840")
    administrator = UserFactory(is_staff=True, is_superuser=True)
    sandbox_thread = SandboxThread(webhook_url=None, app_secret=settings.WHATSAPP_APP_SECRET, token=TOKEN)
    with sandbox_thread as sandbox:
        # Meta's side of the number: a messaging limit too low for calling, and no call hours.
        sandbox_thread.call(
            sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
            display_phone_number=number.display_phone_number,
        )  # fmt: skip
        sandbox_thread.call(
            sandbox.meta.number_profile_set, number.phone_number_id, messaging_limit_tier="TIER_1K"
        )
        environment = {
            "WHATSAPP_GRAPH_URL": sandbox.graph_url, "WHATSAPP_TOKEN": TOKEN,
            "WHATSAPP_APP_ID": SANDBOX_APP_ID, "WHATSAPP_APP_SECRET": settings.WHATSAPP_APP_SECRET,
        }  # fmt: skip
        with serving_app(**environment) as live_server_url:
            page = browser.new_context().new_page()
            sign_in(page, live_server_url, administrator.username, PASSWORD)

            page.goto(f"{live_server_url}/numbers/{number.pk}/onboarding/")
            expect(page.locator('[data-check="messaging_limit"]')).to_have_attribute("data-state", "problem")
            expect(page.locator('[data-check="call_hours"]')).to_have_attribute("data-state", "problem")
            expect(page.get_by_text("2 problems stand in the way")).to_be_visible()
            page.select_option("#id_call_hours_status", "ENABLED")
            page.fill("#id_timezone_id", "Europe/London")
            for day in ("monday", "tuesday", "wednesday", "thursday", "friday"):
                page.fill(f"#id_{day}_open_1", "0900")
                page.fill(f"#id_{day}_close_1", "1800")
            page.click('#calling-settings button[type="submit"]')

            expect(page.locator("#meta-answer")).to_have_attribute("data-accepted", "true")
            expect(page.locator("#meta-answer")).to_contain_text('{"success": true}')
            expect(page.locator('[data-check="call_hours"]')).to_have_attribute("data-state", "ok")
            expect(page.locator('[data-check="messaging_limit"]')).to_have_attribute("data-state", "problem")
    change = CallingSettingsChange.objects.get()
    assert (change.is_accepted, change.changed_by_id) == (True, administrator.pk)
    assert change.sent["call_hours"]["timezone_id"] == "Europe/London"
