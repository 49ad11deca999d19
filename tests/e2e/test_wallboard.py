"""The supervisors' wallboard in Chromium, live: a sandbox customer calls while no agent is free; the
queue's tile shows the caller waiting, the chart of the day counts the call in its hour, and when
the customer gives up the tile empties and the call is counted as abandoned."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from agents.tests.factories import PASSWORD, QueueFactory, UserFactory
from calls.models import Call
from tests.e2e.conftest import MediaProcessThread, sandbox_serving, sign_in, wait_for
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e


def test_the_wallboard_follows_a_sandbox_call_live(live_server_url, browser, settings_for_media, tmp_path):
    number = BusinessNumberFactory(phone_number_id="820000000000001", display_phone_number="+44 20 7946 0820")
    queue = QueueFactory(name="Care", max_wait_s=600)
    queue.business_numbers.add(number)
    supervisor = UserFactory(is_staff=True)
    page = browser.new_context().new_page()
    sign_in(page, live_server_url, supervisor.username, PASSWORD)
    page.goto(f"{live_server_url}/wallboard/")
    expect(page.locator("#wallboard")).to_have_attribute("data-connected", "true")
    tile = page.locator(f'[data-queue="{queue.pk}"]')
    expect(tile.locator("[data-field=waiting]")).to_have_text("0")
    hour = timezone.localtime().hour
    this_hour = page.locator(f'[data-chart=calls] rect[data-hour="{hour}"]')
    expect(this_hour).to_have_count(0)

    serving = sandbox_serving(number, live_server_url, settings_for_media, tmp_path)
    with serving as (sandbox_thread, sandbox), MediaProcessThread(tmp_path / "spool"):
        customer = sandbox_thread.call(
            sandbox.add_customer, wa_id="447700900555", name="Ada Obi", speech=None
        )
        placed = sandbox_thread.run(customer.place_call, number.phone_number_id)

        expect(tile.locator("[data-field=waiting]")).to_have_text("1", timeout=20_000)
        expect(tile.locator("[data-field=longest_wait]")).not_to_have_text("0 s", timeout=5_000)
        # The charts are drawn again within a few seconds: the call is in this hour's bar.
        expect(this_hour).to_have_count(1, timeout=10_000)
        expect(this_hour).to_have_attribute("data-part", "other")  # still waiting: neither answered nor left
        page.screenshot(path="var/wallboard-waiting.png")

        sandbox_thread.run(customer.hang_up, placed.call)
        expect(tile.locator("[data-field=waiting]")).to_have_text("0", timeout=20_000)
        expect(this_hour).to_have_attribute("data-part", "abandoned", timeout=10_000)
        call = wait_for(lambda: Call.objects.filter(end_reason="abandoned").first())
        page.screenshot(path="var/wallboard-abandoned.png")
        page.context.close()

    assert (call.queue_id, call.status) == (queue.pk, "ended")
