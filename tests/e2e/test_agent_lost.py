"""An agent's audio goes mid-call (their laptop sleeps, their network drops, with the tab still open):
the customer hears the hold audio, then the next agent is rung and talks to them; the first agent's
tab says what happened and puts them away."""

import pytest
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from calls.models import Call
from tests.e2e.conftest import MediaProcessThread, sandbox_serving, signed_in_available, wait_for
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e

# Each RTCPeerConnection the page makes, kept where the test can reach it.
KEEP_PEER_CONNECTIONS = """
window.peerConnections = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) {
  const connection = new NativePeerConnection(...args);
  window.peerConnections.push(connection);
  return connection;
};
window.RTCPeerConnection.prototype = NativePeerConnection.prototype;
"""


def test_a_call_whose_agent_goes_silent_is_taken_by_the_next_agent(
    live_server_url, browser, settings_for_media, tmp_path
):
    settings_for_media.MEDIA_SILENCE_TIMEOUT_S = 2.0
    settings_for_media.AGENT_LEG_GRACE_S = 2.0
    number = BusinessNumberFactory(phone_number_id="830000000000001", display_phone_number="+44 20 7946 0830")
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    first, second = (
        AgentFactory(status=Agent.Status.OFFLINE, display_name=name) for name in ("Ana Lima", "Ben Okafor")
    )
    for agent in (first, second):
        QueueMembership.objects.create(queue=queue, agent=agent)
    serving = sandbox_serving(number, live_server_url, settings_for_media, tmp_path)
    with serving as (sandbox_thread, sandbox), MediaProcessThread(tmp_path / "spool"):
        customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900830", name="Maya Cohen")
        first_page = signed_in_available(browser, live_server_url, first, init_script=KEEP_PEER_CONNECTIONS)
        placed = sandbox_thread.run(customer.place_call, number.phone_number_id)
        first_page.click("#ring [data-action=accept]", timeout=15_000)
        expect(first_page.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=15_000
        )
        second_page = signed_in_available(browser, live_server_url, second, init_script=KEEP_PEER_CONNECTIONS)

        # The first agent's audio stops, their tab still open: the browser sends nothing more.
        first_page.evaluate("window.peerConnections.at(-1).getSenders()[0].replaceTrack(null)")
        second_page.click("#ring [data-action=accept]", timeout=20_000)
        expect(second_page.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=15_000
        )
        expect(first_page.locator("[data-role=error]").first).to_contain_text("Your audio was lost")
        expect(first_page.locator("#presence")).to_have_attribute("data-status", "away")
        expect(first_page.locator("#in-call")).to_be_hidden()
        call = Call.objects.get(contact__wa_id="447700900830")
        wait_for(lambda: Call.objects.filter(pk=call.pk, status="connected", agent=second).exists())
        sandbox_thread.run(customer.hang_up, placed.call)
        expect(second_page.locator("#in-call [data-role=call-state]")).to_have_text(
            "Call ended: wrap-up", timeout=15_000
        )
        for page in (first_page, second_page):
            page.context.close()

    call.refresh_from_db()
    assert (call.status, call.end_reason, call.agent_id) == ("ended", "completed", second.pk)
    moves = list(call.events.order_by("at", "pk").values_list("to_status", "agent_id", "detail"))
    assert ("queued", first.pk, "the agent's audio was lost") in moves
    assert [status for status, _, _ in moves].count("connected") == 2
