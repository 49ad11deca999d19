"""Only the conversation is recorded: a call that ends before an agent's leg connects (the caller
hung up while queued, or nobody was free) leaves no recording, so nothing of it is transcribed."""

import asyncio
from pathlib import Path

import pytest

from calls.bridge import CallBridge
from calls.media import CallMedia, MediaProcess
from calls.models import Call
from calls.tests.factories import CallFactory
from calls.tests.test_bridge import recording_levels
from recordings.models import Recording
from recordings.services import recording_read
from whatsapp.sandbox.media import CustomerMedia

pytestmark = pytest.mark.django_db(transaction=True)  # the finished recording is offered to storage

CUSTOMER_SPEECH = (
    Path(__file__).resolve().parents[2] / "whatsapp" / "sandbox" / "audio" / "customer_order.wav"
)


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ICE_SERVERS = []


async def talk_then_hang_up(call: Call, spool: Path, *, with_agent: bool) -> None:
    """The customer's leg answered and talking for a second, an agent's leg too or not; then the end."""
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=spool)
    bridge = CallBridge(
        call_id=str(call.pk), recording_path=spool / f"call-{call.pk}.ogg", notice=None, hold=None
    )
    media.bridges[call.pk], media.answered[call.pk] = bridge, asyncio.Event()
    customer = CustomerMedia(play=CUSTOMER_SPEECH, record_to=None)
    agent = CustomerMedia(play=None, record_to=None) if with_agent else None
    try:
        await customer.accept_answer(await bridge.answer_customer(await customer.create_offer()))
        media.answered[call.pk].set()  # what answer() does once Meta has accepted
        await customer.wait_connected(timeout_s=5)
        if agent is not None:
            await agent.accept_answer(await bridge.connect_agent(await agent.create_offer()))
            await agent.wait_connected(timeout_s=5)
        await asyncio.sleep(1.0)
    finally:
        await customer.close()
        if agent is not None:
            await agent.close()
        await media.hang_up({"type": "call.hangup", "call_id": call.pk})


def test_a_call_that_ends_before_an_agent_connects_leaves_no_recording_and_one_with_an_agent_does(
    recordings_storage, tmp_path
):
    abandoned = CallFactory(status=Call.Status.ENDED, end_reason=Call.EndReason.ABANDONED)
    answered = CallFactory(status=Call.Status.ENDED, end_reason=Call.EndReason.COMPLETED)

    asyncio.run(talk_then_hang_up(abandoned, tmp_path, with_agent=False))
    asyncio.run(talk_then_hang_up(answered, tmp_path, with_agent=True))

    recording = Recording.objects.get()
    assert recording.call_id == answered.pk
    assert 0.8 < recording.duration_s < 2.0 and recording.format == Recording.Format.OGG_OPUS
    with recording_read(recording) as audio:
        assert recording_levels(audio)[0] > 0.02
    assert list(tmp_path.glob("call-*")) == []  # the spool keeps nothing of either
