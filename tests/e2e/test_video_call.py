"""A customer makes a video call (their phone's offer carries video too): WhatsApp calls are voice only,
so it is answered for its audio, the video declined with port 0, and it is a voice call like any other."""

import asyncio
import functools

import pytest

from agents.tests.factories import QueueFactory
from calls.models import Call
from tests.e2e.conftest import MediaProcessThread, sandbox_serving, wait_for
from whatsapp.sandbox.audio_metrics import wav_rms
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e


def test_a_video_call_is_answered_and_heard_as_a_voice_call(live_server_url, settings_for_media, tmp_path):
    number = BusinessNumberFactory(phone_number_id="820000000000002", display_phone_number="+44 20 7946 0821")
    queue = QueueFactory(name="Care", language="en", max_wait_s=60)
    queue.business_numbers.add(number)
    serving = sandbox_serving(number, live_server_url, settings_for_media, tmp_path)
    with serving as (sandbox_thread, sandbox), MediaProcessThread(tmp_path / "spool"):
        customer = sandbox_thread.call(
            sandbox.add_customer, wa_id="447700900821", name="Ann Lee", speech=None
        )
        placed = sandbox_thread.run(customer.place_call, number.phone_number_id, with_video=True)
        call = wait_for(lambda: Call.objects.filter(answered_at__isnull=False).first())
        sandbox_thread.run(placed.answered.wait, timeout_s=10)
        sandbox_thread.run(functools.partial(placed.media.wait_connected, timeout_s=10))
        sandbox_thread.run(asyncio.sleep, 1.5)  # the customer hears the notice's beginning
        sandbox_thread.run(customer.hang_up, placed.call)
        wait_for(lambda: Call.objects.filter(pk=call.pk, status=Call.Status.ENDED).exists())

    call.refresh_from_db()
    on_meta = sandbox.meta.calls[placed.call.call_id]
    assert "m=video 9 " in on_meta.offer_sdp
    assert "\r\nm=video 0 UDP/TLS/RTP/SAVPF 96 97\r\n" in on_meta.answer_sdp
    assert (call.status, call.end_reason) == ("ended", "abandoned")  # the customer hung up while queued
    assert wav_rms(placed.recording) > 0.01  # the customer heard the recording notice
