"""Nobody is free until the queue's maximum wait: the caller hears the closing message, gets a WhatsApp
message with a call button, and the call ends as `no_agent`, on Meta too, once the message has played.
No conversation took place: the consent record stays, and there is no recording."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from agents.tests.factories import QueueFactory
from calls import routing
from calls.models import Call
from calls.prompts import CLOSING, prompt_for
from calls.tasks import send_call_us_button, terminate_on_meta
from compliance.models import ConsentRecord
from recordings.models import Recording
from tests.e2e.conftest import MediaProcessThread, sandbox_serving, wait_for
from whatsapp.sandbox.audio_metrics import wav_samples
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e


def test_a_caller_nobody_answers_hears_goodbye_and_gets_a_call_button(
    live_server_url, settings_for_media, tmp_path
):

    number = BusinessNumberFactory(phone_number_id="820000000000001", display_phone_number="+44 20 7946 0820")
    queue = QueueFactory(name="Care", language="pt", max_wait_s=60)
    queue.business_numbers.add(number)
    closing = prompt_for(CLOSING, "pt")
    serving = sandbox_serving(number, live_server_url, settings_for_media, tmp_path)
    with serving as (sandbox_thread, sandbox), MediaProcessThread(tmp_path / "spool") as media:
        customer = sandbox_thread.call(
            sandbox.add_customer, wa_id="351912345678", name="Inês Duarte", speech=None
        )
        placed = sandbox_thread.run(customer.place_call, number.phone_number_id)
        call = wait_for(lambda: Call.objects.filter(answered_at__isnull=False).first())

        # The maximum wait passes (the Celery countdown would fire now).
        Call.objects.filter(pk=call.pk).update(queued_at=timezone.now() - timedelta(seconds=queue.max_wait_s))
        ended = routing.call_wait_overdue(call_id=call.pk)
        wait_for(lambda: call.pk not in media.calls.bridges, timeout_s=closing.duration_s + 5)
        # What the worker then does: the countdown to Meta's terminate, and the call button.
        terminate_on_meta(call_id=call.pk)
        message_id = send_call_us_button(call_id=call.pk)
        sandbox_thread.run(placed.ended.wait)
        spooled = tmp_path / "spool" / f"call-{call.pk}.wav"
        wait_for(lambda: not spooled.exists())  # the media process closed the call's recording

    call.refresh_from_db()
    assert ended is not None
    assert (call.status, call.end_reason, call.end_detail) == ("ended", "no_agent", "maximum wait reached")
    assert sandbox.meta.calls[placed.call.call_id].state == "ENDED"
    [button] = [message for message in customer.inbox if message.message_id == message_id]
    assert button.body["interactive"]["type"] == "voice_call"
    # The customer heard the notice (cut short) and then the whole closing message, in Portuguese.
    heard = wav_samples(placed.recording)
    rate = 48_000
    last = heard[-round((closing.duration_s - 1) * rate) :]
    blocks = last[: len(last) // rate * rate].reshape(-1, rate)
    assert np.sqrt(np.mean(np.square(blocks), axis=1)).min() > 0.01  # speech in every second of it
    assert len(heard) / rate > closing.duration_s
    consent = ConsentRecord.objects.get(call=call)
    assert (consent.language, consent.completed_at) == ("pt", None)
    assert not Recording.objects.filter(call=call).exists()  # no conversation: nothing recorded
