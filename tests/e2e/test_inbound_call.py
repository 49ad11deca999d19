"""A customer calls: Meta's webhook, the media process answers on Meta, plays the notice, the call
queues and rings an agent; the customer hangs up before anyone answers and the call ends, with its
consent record and no recording (only conversations are recorded)."""

import time

import pytest

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from calls.models import Call, CallEvent
from compliance.models import ConsentRecord
from recordings.models import Recording
from tests.e2e.conftest import MediaProcessThread, sandbox_serving, wait_for
from whatsapp.sandbox.audio_metrics import wav_rms
from whatsapp.sandbox.customers import AUDIO_DIR
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.e2e
CUSTOMER_SPEECH = AUDIO_DIR / "customer_order.wav"


def test_customer_call_is_answered_queued_rung_and_ends_when_the_customer_hangs_up(
    live_server_url, settings_for_media, tmp_path
):
    number = BusinessNumberFactory(phone_number_id="800000000000001", display_phone_number="+44 20 7946 0800")
    queue = QueueFactory(name="Care", language="es")
    queue.business_numbers.add(number)
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=queue, agent=agent)
    serving = sandbox_serving(number, live_server_url, settings_for_media, tmp_path)
    with serving as (sandbox_thread, sandbox), MediaProcessThread(tmp_path / "spool"):
        customer = sandbox_thread.call(  # a caller who says something while the notice plays
            sandbox.add_customer, wa_id="447700900777", name="Nadia Rahman", speech=CUSTOMER_SPEECH
        )

        placed = sandbox_thread.run(customer.place_call, number.phone_number_id)
        call = wait_for(lambda: Call.objects.filter(status=Call.Status.OFFERED).first())
        time.sleep(2.5)  # the customer hears the recording notice, and speaks
        sandbox_thread.run(customer.hang_up, placed.call)
        wait_for(lambda: Call.objects.filter(pk=call.pk, status=Call.Status.ENDED).exists())
        spooled = tmp_path / "spool" / f"call-{call.pk}.wav"
        wait_for(lambda: not spooled.exists(), timeout_s=10)  # the media process closed the call

    call.refresh_from_db()
    agent.refresh_from_db()
    assert (call.contact.name, call.offered_to, call.end_reason) == ("Nadia Rahman", None, "abandoned")
    assert list(CallEvent.objects.filter(call=call).values_list("to_status", flat=True)) == [
        "ringing",
        "queued",
        "offered",
        "ended",
    ]
    assert agent.status == Agent.Status.AVAILABLE
    assert sandbox.meta.calls[placed.call.call_id].state == "ENDED"
    assert wav_rms(placed.recording) > 0.02  # the customer heard the notice
    assert not Recording.objects.filter(call=call).exists()  # what they said while queued is not kept
    consent = ConsentRecord.objects.get(call=call)
    assert (consent.language, consent.completed_at) == ("es", None)  # the caller left during the notice
    assert "puede ser grabada" in consent.text
