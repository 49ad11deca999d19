"""A call reviewed after it ended, in Chromium: the page follows the transcription live, then shows
the summary, plays the (decrypted) recording with the transcript following, and is closed to
anyone but the call's agent and supervisors."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from playwright.sync_api import expect

from agents.tests.factories import PASSWORD, AgentFactory, UserFactory
from calls.models import Call
from calls.tests.factories import CallFactory, ContactFactory
from core.audio import decode_channels
from recordings.services import call_summarise, recording_store, recording_transcribe
from recordings.tests.test_transcription import AUDIO, stereo_recording
from tests.e2e.conftest import serving_app, sign_in

pytestmark = pytest.mark.e2e


# The recording fetched and decoded as the page's player would, each side's level measured.
HEAR_BOTH_SIDES = """async (url) => {
    const response = await fetch(url);
    const context = new OfflineAudioContext(2, 48000, 48000);
    const audio = await context.decodeAudioData(await response.arrayBuffer());
    const level = (channel, from, to) => {
        const samples = audio.getChannelData(channel).subarray(from * 48000, to * 48000);
        return Math.sqrt(samples.reduce((sum, sample) => sum + sample * sample, 0) / samples.length);
    };
    return {
        channels: audio.numberOfChannels,
        duration: audio.duration,
        customer: level(0, 0, 5),
        agent: level(1, 6, 10),
        agent_before_6_s: level(1, 0, 5.5),
    };
}"""


def work_after_the_call(recording) -> None:
    try:
        recording_transcribe(recording_id=recording.pk)
        call_summarise(call_id=recording.call_id)
    finally:
        connection.close()  # as a worker does after its task: the connection goes back


def test_a_supervisor_reviews_a_call_as_its_transcript_and_summary_arrive(
    transactional_db, browser, recordings_storage, tmp_path
):
    call = CallFactory(
        contact=ContactFactory(name="Lucia Santos"), agent=AgentFactory(display_name="Chen Wei"),
        status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED, talk_seconds=12,
    )  # fmt: skip
    path = stereo_recording(  # Ogg Opus, as the media process records a call
        tmp_path / "call.ogg",
        left=AUDIO / "customer_order.wav",
        right=AUDIO / "customer_goodbye.wav",
        right_starts_s=6,
    )
    rate, samples = decode_channels(path)
    length_s = len(samples) / rate
    recording = recording_store(call_id=call.pk, path=path, duration_s=length_s)
    supervisor = UserFactory(is_staff=True)
    supervisor.user_permissions.add(Permission.objects.get(codename="listen_recording"))
    stranger = AgentFactory().user
    storage = json.dumps({"location": str(recordings_storage)})

    with serving_app(RECORDINGS_STORAGE_OPTIONS=storage) as url:
        page = browser.new_context().new_page()
        sign_in(page, url, supervisor.username, PASSWORD)
        page.goto(f"{url}/calls/{call.pk}/")
        waiting = page.locator("[data-role=summary]")
        expect(waiting).to_contain_text("Queued for transcription: number 1 in line")

        # As the recordings worker would, from its own thread (Playwright's loop runs in this one).
        with ThreadPoolExecutor(1) as worker:
            worker.submit(work_after_the_call, recording).result()

        expect(page.locator("[data-role=summary] .tag").first).to_contain_text("intent:", timeout=15_000)
        # Chromium plays the recording as stereo: the customer left, the agent (from 6 s on) right.
        heard = page.evaluate(HEAR_BOTH_SIDES, f"{url}/calls/{call.pk}/recording/")
        assert heard["channels"] == 2 and heard["duration"] == pytest.approx(length_s, abs=0.05)
        assert heard["customer"] > 0.02 and heard["agent"] > 0.02
        assert heard["agent_before_6_s"] < 0.001
        page.wait_for_function("document.querySelector('audio').readyState >= 1")  # its length, by ranges
        assert page.evaluate("document.querySelector('audio').duration") == pytest.approx(length_s, abs=0.05)
        lines = page.locator("[data-role=transcript] li")
        expect(lines.first).to_have_class("customer")
        expect(lines.first).to_contain_text("order")
        reply = page.locator("[data-role=transcript] li.agent").first
        reply.locator("strong").click()  # anywhere on the line, not only its time: plays from the reply
        expect(page.locator("[data-role=transcript] li.agent.current")).to_have_count(1, timeout=10_000)
        starts_at = float(reply.get_attribute("data-start"))
        assert starts_at > 5  # the agent spoke from 6 s on
        assert page.evaluate("document.querySelector('audio').currentTime") >= starts_at

        # From the keyboard: Enter on the customer's line goes back to it, Space on the reply forward.
        page.evaluate("document.querySelector('audio').pause()")
        lines.first.focus()
        page.keyboard.press("Enter")
        expect(lines.first).to_have_class("customer current", timeout=10_000)
        assert page.evaluate("document.querySelector('audio').currentTime") < starts_at
        reply.focus()
        page.keyboard.press(" ")
        expect(reply).to_have_class("agent current", timeout=10_000)
        assert page.evaluate("!document.querySelector('audio').paused")
        page.context.close()

        other = browser.new_context().new_page()
        sign_in(other, url, stranger.username, PASSWORD)
        refused = other.goto(f"{url}/calls/{call.pk}/recording/")
        assert refused.status == 403
        other.context.close()
