"""A whole user-initiated call through the sandbox: webhook offer, Graph API accept, real audio."""

import json
import time

import pytest

from whatsapp.client import GraphClient
from whatsapp.events import CallConnect, CallTerminate, parse_delivery
from whatsapp.sandbox.audio_metrics import wav_duration_s, wav_rms
from whatsapp.sandbox.server import SandboxThread
from whatsapp.sandbox.tests.test_media import BUSINESS_SPEECH, CUSTOMER_SPEECH, SPEECH_RMS, Business

TOKEN, SECRET, NUMBER_ID = "flow-token", "flow-secret", "3000001"


def events_of(sandbox, kind):
    found = []
    for delivery in list(sandbox.sender.sent):
        found += [
            event for event in parse_delivery(json.loads(delivery.body)).events if isinstance(event, kind)
        ]
    return found


def wait_for(predicate, timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
    return result


def test_customer_call_audio_reaches_the_business_answerer(settings, tmp_path):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    thread = SandboxThread(
        webhook_url=None, app_secret=SECRET, token=TOKEN, record_dir=tmp_path / "customers"
    )
    with thread as sandbox, GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as graph:
        thread.call(
            sandbox.add_number,
            phone_number_id=NUMBER_ID,
            waba_id="4000001",
            display_phone_number="+44 20 7946 0123",
        )
        customer = thread.call(
            sandbox.add_customer, wa_id="447700900100", name="Priya Shah", speech=CUSTOMER_SPEECH
        )  # speaks at once: what reaches the business is what this test is about, not turns
        business = thread.call(Business, play=BUSINESS_SPEECH, record_to=tmp_path / "business_heard.wav")

        placed = thread.run(customer.place_call, NUMBER_ID, talk_s=2.5)
        [connect] = wait_for(lambda: events_of(sandbox, CallConnect))
        answer = thread.run(business.answer, connect.sdp)
        graph.call_pre_accept(phone_number_id=NUMBER_ID, call_id=connect.call_id, sdp=answer)
        graph.call_accept(phone_number_id=NUMBER_ID, call_id=connect.call_id, sdp=answer)
        [terminate] = wait_for(lambda: events_of(sandbox, CallTerminate), timeout_s=15)
        thread.run(business.close)

    assert (connect.contact_name, connect.from_number, connect.sdp_type) == (
        "Priya Shah",
        "447700900100",
        "offer",
    )
    assert terminate.call_id == connect.call_id
    assert terminate.status == "COMPLETED"
    assert terminate.duration_s == pytest.approx(2.5, abs=1)
    assert wav_rms(tmp_path / "business_heard.wav") > SPEECH_RMS
    assert wav_duration_s(tmp_path / "business_heard.wav") > 1.5
    assert wav_rms(placed.recording) > SPEECH_RMS
