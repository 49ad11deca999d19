"""The media process dials: it makes the customer's offer, sends Meta's connect, applies Meta's
answer, and plays the notice once the customer picks up (with the sandbox playing Meta); then the
customer hears the agent at once, and the agent is recorded."""

import asyncio
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from agents.models import Agent
from agents.tests.factories import AgentFactory, QueueFactory
from calls.bridge import BridgeError, CallBridge
from calls.media import CallMedia, MediaProcess
from calls.models import Call
from calls.outbound import call_place_outbound
from calls.tests.test_bridge import AGENT_HZ, heard, heard_by, recording_levels, write_tone
from compliance.models import CallPermission, ConsentRecord
from compliance.tests.factories import CUSTOMER
from messaging.models import Contact
from recordings.models import Recording
from recordings.services import recording_read
from whatsapp.sandbox.customers import Behaviour
from whatsapp.sandbox.media import CustomerMedia
from whatsapp.sandbox.server import SandboxThread
from whatsapp.tests.factories import BusinessNumberFactory

ROOT = Path(__file__).resolve().parents[2]
CUSTOMER_SPEECH = ROOT / "whatsapp" / "sandbox" / "audio" / "customer_order.wav"
AUDIO = ROOT / "static" / "audio"
SPANISH_CUSTOMER = "34612345678"
AGENT = {"agent": AGENT_HZ}
SPEECH_RMS = 0.02


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


async def test_the_bridge_offers_the_customers_leg_and_records_the_customer(tmp_path):
    bridge = CallBridge(call_id="51", recording_path=tmp_path / "call-51.ogg", notice=None, hold=None)
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=None)

    offer = await bridge.offer_customer()
    await bridge.accept_customer_answer(await customer.answer(offer))
    await customer.wait_connected(timeout_s=10)
    bridge.record_from_now()  # the customer picked up: the conversation starts
    await asyncio.sleep(1.5)
    result = await bridge.close()
    await customer.close()

    assert "opus/48000/2" in offer
    assert result.is_conversation is True
    assert recording_levels(result.path)[0] > SPEECH_RMS


async def test_the_bridge_refuses_an_answer_that_is_not_sdp(tmp_path):
    bridge = CallBridge(call_id="52", recording_path=tmp_path / "call-52.wav", notice=None, hold=None)
    await bridge.offer_customer()

    with pytest.raises(BridgeError):
        await bridge.accept_customer_answer("v=0\r\nnot really")

    await bridge.close()


@pytest.mark.django_db(transaction=True)
def test_the_media_process_dials_and_the_customer_hears_the_notice_on_pick_up(
    settings, tmp_path, recordings_storage
):
    number = BusinessNumberFactory(display_phone_number="+44 20 7946 0000")
    contact = Contact.objects.create(wa_id=CUSTOMER)
    CallPermission.objects.create(business_number=number, contact=contact, status="permanent",
                                  granted_at=timezone.now())  # fmt: skip
    thread = SandboxThread(webhook_url=None, app_secret="s", token="t")
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, "t"
        thread.call(sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number)  # fmt: skip
        thread.call(
            sandbox.meta.permissions[(number.phone_number_id, CUSTOMER)].__setattr__, "status", "permanent"
        )
        thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada",
                               behaviour=Behaviour(business_call="answer", answer_after_s=60))  # fmt: skip
        call = call_place_outbound(business_number=number, contact=contact)

        async def dial_answer_pick_up() -> tuple[str, bool]:
            media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
            media.process.channel_name = "media.test!dial"
            await media.dial({"type": "call.dial", "call_id": call.pk})
            dialled = await sync_to_async(Call.objects.get)(pk=call.pk)
            sandbox_call = sandbox.meta.calls[dialled.wa_call_id]
            for _ in range(100):  # the customer's phone answers the offer (Meta's connect webhook)
                if sandbox_call.answer_sdp:
                    break
                await asyncio.sleep(0.05)
            await media.customer_answer({"call_id": call.pk, "sdp": sandbox_call.answer_sdp})
            await media.customer_accepted({"call_id": call.pk})
            notice_playing = media.bridges[call.pk].is_notice_playing
            await media.hang_up({"call_id": call.pk})
            return dialled.wa_call_id, notice_playing

        wa_call_id, notice_playing = asyncio.run(dial_answer_pick_up())

        assert wa_call_id.startswith("wacid.")
        assert sandbox.meta.calls[wa_call_id].state in ("RINGING", "DIALING")
        assert sandbox.meta.calls[wa_call_id].biz_opaque_callback_data == f"switchboard-call:{call.pk}"
        assert notice_playing
        assert ConsentRecord.objects.filter(call_id=call.pk).count() == 1


async def test_a_call_nobody_answered_leaves_no_recording(tmp_path):
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
    media.bridges[53] = CallBridge(
        call_id="53", recording_path=tmp_path / "call-53.wav", notice=None, hold=None
    )
    media.answered[53] = asyncio.Event()
    await media.bridges[53].offer_customer()

    await media.hang_up({"type": "call.hangup", "call_id": 53})

    assert list(tmp_path.iterdir()) == []


async def wait_for_answer_sdp(sandbox_call) -> str:
    for _ in range(100):  # the customer's phone answers the offer (Meta's connect webhook)
        if sandbox_call.answer_sdp:
            return sandbox_call.answer_sdp
        await asyncio.sleep(0.05)
    raise AssertionError("the customer's phone did not answer the offer")


async def media_answer(layer, channel: str) -> dict:
    """The media process's answer to the softphone's offer, past the agent's other events (status)."""
    async with asyncio.timeout(5):
        while (message := await layer.receive(channel))["type"] != "call.media_answer":
            pass
    return message


@pytest.mark.django_db(transaction=True)
def test_a_customer_we_call_hears_that_the_call_is_recorded_in_their_language_then_the_agent(
    settings, tmp_path, recordings_storage
):
    number = BusinessNumberFactory(display_phone_number="+44 20 7946 0000")
    QueueFactory(language="pt").business_numbers.add(number)  # the business's default: not the customer's
    contact = Contact.objects.create(wa_id=SPANISH_CUSTOMER)  # no country kept: read from the number
    CallPermission.objects.create(business_number=number, contact=contact, status="permanent",
                                  granted_at=timezone.now())  # fmt: skip
    agent = AgentFactory(status=Agent.Status.AVAILABLE)
    agent_tone = write_tone(tmp_path / "agent.wav", hz=AGENT_HZ, seconds=0.5)
    spanish_notice_s = 4.8  # static/audio/outbound_notice/es.wav; the greeting of callers takes 11 s
    thread = SandboxThread(webhook_url=None, app_secret="s", token="t", record_dir=tmp_path / "customers")
    with thread as sandbox:
        settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_TOKEN = sandbox.graph_url, "t"
        thread.call(sandbox.add_number, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                    display_phone_number=number.display_phone_number)  # fmt: skip
        thread.call(
            sandbox.meta.permissions[(number.phone_number_id, SPANISH_CUSTOMER)].__setattr__,
            "status",
            "permanent",
        )
        customer = thread.call(sandbox.add_customer, wa_id=SPANISH_CUSTOMER, name="Lucía", speech=None,
                               behaviour=Behaviour(business_call="answer", answer_after_s=60))  # fmt: skip
        call = call_place_outbound(business_number=number, contact=contact, agent_id=agent.pk)

        async def dial_pick_up_and_talk():
            media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
            media.process.channel_name = "media.test!dial"
            layer = media.process.channel_layer
            agent_channel = await layer.new_channel()
            await layer.group_add(f"agent.{agent.pk}", agent_channel)
            await media.dial({"type": "call.dial", "call_id": call.pk})
            dialled = await sync_to_async(Call.objects.get)(pk=call.pk)
            sandbox_call = sandbox.meta.calls[dialled.wa_call_id]
            await media.customer_answer({"call_id": call.pk, "sdp": await wait_for_answer_sdp(sandbox_call)})
            await media.customer_accepted({"call_id": call.pk})
            # The agent's softphone offers its leg as soon as the call connects, as the browser does.
            browser = CustomerMedia(play=agent_tone, record_to=None, loop=True)
            await media.connect_agent(
                {"call_id": call.pk, "agent_id": agent.pk, "sdp": await browser.create_offer()}
            )
            reply = await media_answer(layer, agent_channel)
            await browser.accept_answer(reply["sdp"])
            bridge = media.bridges[call.pk]
            await asyncio.sleep(spanish_notice_s + 2.0)
            await media.hang_up({"type": "call.hangup", "call_id": call.pk})
            await browser.close()
            await layer.group_discard(f"agent.{agent.pk}", agent_channel)
            return dialled.wa_call_id, await bridge.close()  # closed already: its result again

        wa_call_id, _ = asyncio.run(dial_pick_up_and_talk())
        customer_heard = customer.calls[wa_call_id].recording

    consent = ConsentRecord.objects.get(call_id=call.pk)
    spanish = (AUDIO / "outbound_notice" / "es.txt").read_text(encoding="utf-8").strip()
    assert (consent.language, consent.text) == ("es", spanish)
    assert "Gracias por llamar" not in consent.text and "espere" not in consent.text
    assert consent.completed_at is not None
    rate, samples = heard_by(customer_heard)
    notice_starts = np.flatnonzero(np.abs(samples) > 0.01)[0]
    notice_ends = notice_starts + round(spanish_notice_s * rate)
    # The notice to its end, then the agent at once: no greeting, no hold audio, no "please hold".
    assert "agent" not in heard(samples[notice_starts : notice_ends - rate // 4], rate=rate, tones=AGENT)
    assert heard(samples[notice_ends + rate // 2 :], rate=rate, tones=AGENT) == ["agent"]
    with recording_read(Recording.objects.get(call=call)) as audio:
        assert recording_levels(audio)[1] > SPEECH_RMS  # the agent's side is in the recording's agent channel
