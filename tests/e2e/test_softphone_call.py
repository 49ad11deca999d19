"""The whole inbound call, as people live it: a customer calls on WhatsApp, an agent answers in the
browser, they talk (real audio both ways, through the media process), the customer hangs up, and the
recording holds each side on its own channel."""

import time
from datetime import timedelta

import numpy as np
import pytest
from playwright.sync_api import expect

from agents.models import Agent, QueueMembership
from agents.tests.factories import PASSWORD, AgentFactory, QueueFactory
from calls.models import Call
from compliance.models import ConsentRecord
from core.audio import decode_channels
from recordings.models import Recording
from recordings.transcription import AGENT, CUSTOMER, transcribe_recording
from tests.e2e.conftest import MediaProcessThread, recording_file, sandbox_serving, sign_in, wait_for
from whatsapp.sandbox.audio_metrics import wav_rms
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
# After the agent's reload and the second tab: time for the agent's hello (a 6.5 s loop) and the
# customer's answer in the agent's next pause.
TALK_S = 10.0


def channel_rms(path, *, last_s: float) -> tuple[float, float]:
    """RMS of the left (customer) and right (agent) channels over the recording's last seconds."""
    rate, samples = decode_channels(path)
    samples = samples[-round(last_s * rate) :] / 32768.0
    return tuple(float(np.sqrt(np.mean(np.square(samples[:, side])))) for side in (0, 1))


def test_customer_and_agent_talk_through_the_browser(live_server_url, browser, settings_for_media, tmp_path):
    number = BusinessNumberFactory(phone_number_id="810000000000001", display_phone_number="+44 20 7946 0810")
    queue = QueueFactory(name="Care")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.OFFLINE, display_name="Chen Wei")
    QueueMembership.objects.create(queue=queue, agent=agent)
    serving = sandbox_serving(number, live_server_url, settings_for_media, tmp_path)
    with serving as (sandbox_thread, sandbox), MediaProcessThread(tmp_path / "spool"):
        customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900888", name="Omar Haddad")
        page = browser.new_context().new_page()
        sign_in(page, live_server_url, agent.user.username, PASSWORD)
        page.click("button[data-status-choice=available]")
        expect(page.locator("#presence")).to_have_attribute("data-status", "available")

        placed = sandbox_thread.run(customer.place_call, number.phone_number_id)
        expect(page.locator("#ring [data-role=caller-name]")).to_have_text("Omar Haddad", timeout=15_000)
        page.click("#ring [data-action=accept]")
        expect(page.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=15_000
        )
        # The agent accepted during the recording notice: the customer hears it to its end first.
        notice_state = page.locator("#in-call [data-role=notice-state]")
        expect(notice_state).to_contain_text("recording notice")
        expect(notice_state).to_have_text("", timeout=20_000)
        # The agent reloads the page mid-call: the call comes back, with its audio, in the new page.
        page.reload()
        expect(page.locator("#in-call [data-role=call-with]")).to_have_text("Omar Haddad")
        expect(page.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=15_000
        )
        # A second tab opens: it shows the call, and takes the audio when asked; the first lets it go.
        second_tab = page.context.new_page()
        second_tab.goto(f"{live_server_url}/")
        second_tab.click("#in-call [data-role=take-audio]")
        expect(second_tab.locator("#in-call [data-role=media-state]")).to_have_text(
            "audio connected", timeout=15_000
        )
        # The tab with the audio shows both levels: the agent's microphone and the caller's voice.
        for meter in ("microphone-level", "caller-level"):
            second_tab.wait_for_function(
                f"document.querySelector('#in-call [data-role={meter}]').value > 0", timeout=15_000
            )
        expect(page.locator("#in-call [data-role=media-state]")).to_have_text("audio in another tab")
        expect(page.locator("#in-call [data-role=take-audio]")).to_be_visible()
        page.screenshot(path="var/dashboard-on-call.png")
        time.sleep(TALK_S)
        sandbox_thread.run(customer.hang_up, placed.call)
        expect(page.locator("#in-call [data-role=call-state]")).to_have_text(
            "Call ended: wrap-up", timeout=15_000
        )
        page.select_option("#disposition", "follow_up")
        page.fill("#wrap-up-notes", "Wants a refund for order 4521.")
        page.click("#in-call form button[value=available]")
        expect(page.locator("#presence")).to_have_attribute("data-status", "available")
        call = Call.objects.get(contact__wa_id="447700900888")
        stored = wait_for(lambda: Recording.objects.filter(call=call).first())
        page.context.close()

    call.refresh_from_db()
    consent = ConsentRecord.objects.get(call=call)
    assert (consent.language, consent.completed_at is not None) == ("en", True)
    assert "may be recorded" in consent.text
    assert consent.completed_at < call.events.get(to_status="connected").at + timedelta(seconds=15)
    assert (stored.format, stored.channels, stored.sample_rate) == ("ogg_opus", 2, 48_000)
    assert stored.duration_s > TALK_S
    with recording_file(stored) as audio:  # sealed at rest: decrypted as the product reads it
        notice_s = (consent.completed_at - consent.started_at).total_seconds()
        customer_rms, agent_rms = channel_rms(audio, last_s=stored.duration_s - notice_s)  # once bridged
        segments = transcribe_recording(audio)
    assert (call.status, call.end_reason, call.agent_id) == ("ended", "completed", agent.pk)
    assert (call.disposition, call.wrap_up_notes) == ("follow_up", "Wants a refund for order 4521.")
    assert call.talk_seconds >= TALK_S - 1
    assert customer_rms > 0.02  # the customer's side of the conversation, on the left
    assert agent_rms > 0.02  # the agent's microphone, on the right
    # And the right words on each side: the customer's script (its greeting first) left, the agent's
    # microphone right; the customer said nothing while it heard the notice.
    said_by = {
        speaker: " ".join(s.text for s in segments if s.speaker == speaker).lower()
        for speaker in (CUSTOMER, AGENT)
    }
    assert "good morning" in said_by[CUSTOMER]
    assert "customer care" not in said_by[CUSTOMER]
    assert "customer care" in said_by[AGENT] and "order" not in said_by[AGENT]  # agent/hello.wav
    assert min(s.start_s for s in segments if s.speaker == CUSTOMER) > notice_s  # quiet while it played
    assert wav_rms(placed.recording) > 0.02  # the customer heard the notice and the agent
