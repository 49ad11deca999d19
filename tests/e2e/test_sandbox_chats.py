"""The sandbox's scripted chats against the product's assistant (the web process, a real worker and
the sandbox playing Meta): each script takes the assistant down the path it is written for."""

import pytest
from django.conf import settings

from tests.e2e.test_text_first import text_first_desk
from whatsapp.sandbox import chats
from whatsapp.sandbox.load import add_crowd

pytestmark = pytest.mark.e2e


def test_sandbox_chats_take_the_assistant_down_each_path(tmp_path, transactional_db):
    with text_first_desk(tmp_path) as (thread, sandbox, _, number, _):
        held = {}
        for index, script in enumerate(chats.SCRIPTS.values()):
            if script is chats.RED_LIST:
                red_list = sorted(settings.OUTBOUND_BLOCKED_COUNTRIES)
                [customer] = thread.call(add_crowd, sandbox, count=1, regions=red_list)
            else:
                customer = thread.call(sandbox.add_customer, wa_id=f"4477009004{index:02d}", name="Sam Reid")
            held[script.name] = thread.run(
                customer.chat, number.phone_number_id, script, reply_timeout_s=15, timeout_s=60
            )

    def customer_said(name: str) -> list[str]:
        return [entry.text for entry in held[name].transcript if entry.sender == "customer"]

    def business_said(name: str) -> list[tuple[str, str]]:
        return [(entry.kind, entry.text) for entry in held[name].replies]

    assert {name: chat.outcome for name, chat in held.items()} == {
        "faq": chats.FINISHED,
        "qualification": chats.FINISHED,
        "asks_for_person": chats.FINISHED,
        "angry": chats.FINISHED,
        "hot_lead": chats.CALLED,
        "red_list": chats.CALLED,
    }
    [(kind, answer)] = business_said("faq")
    assert (kind, answer.endswith("Price: €49 per month.")) == ("text", True)
    assert customer_said("qualification") == [
        "Hi, I am looking at your product",
        "The Pro plan",
        "We are 25 people",
        "Next month",
    ]
    for name in ("asks_for_person", "angry"):
        [(kind, answer)] = business_said(name)
        assert (kind, answer.endswith("I am passing you to a colleague now.")) == ("text", True)
    for name in ("hot_lead", "red_list"):
        assert [kind for kind, _ in business_said(name)] == ["call_button"]
        assert held[name].call.call.cta_payload == held[name].transcript[-1].text != ""
