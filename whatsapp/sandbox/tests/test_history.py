"""The sandbox keeps the newest of what it records, so that a demo or a load test that runs for hours
does not grow it without end; a live call is never dropped."""

import pytest

from whatsapp.client import GraphClient
from whatsapp.sandbox import customers, meta
from whatsapp.sandbox.meta import Rules, keep_newest
from whatsapp.sandbox.server import SandboxThread

TOKEN, SECRET, NUMBER_ID, WABA_ID = "test-token", "test-secret", "1000001", "2000001"


def test_the_oldest_records_go_first_and_live_ones_stay(monkeypatch):
    monkeypatch.setattr(meta, "HISTORY", 8)
    calls = {f"call-{index}": {"is_live": index in (0, 5)} for index in range(11)}  # 11 is over 8 + 8 // 4
    deliveries = list(range(11))

    keep_newest(calls, is_kept=lambda call: call["is_live"])
    keep_newest(deliveries)
    untouched = list(range(10))
    keep_newest(untouched, limit=8 * 2)

    assert list(calls) == ["call-0", "call-4", "call-5", "call-6", "call-7", "call-8", "call-9", "call-10"]
    assert deliveries == [3, 4, 5, 6, 7, 8, 9, 10]
    assert untouched == list(range(10))


def test_a_long_run_of_messages_leaves_the_sandbox_no_bigger_than_its_history(settings, monkeypatch):
    monkeypatch.setattr(meta, "HISTORY", 40)
    monkeypatch.setattr(customers, "CUSTOMER_HISTORY", 5)
    rules = Rules(messages_per_second=1_000)  # a number upgraded to Meta's highest throughput (§10.1)
    thread = SandboxThread(webhook_url=None, app_secret=SECRET, token=TOKEN, rules=rules)
    with thread as sandbox, GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as graph:
        sandbox.add_number(
            phone_number_id=NUMBER_ID, waba_id=WABA_ID, display_phone_number="+44 20 7946 0000"
        )
        customer = thread.call(sandbox.add_customer, wa_id="447700900040", name="Amara Okoye")
        for index in range(60):
            thread.call(customer.send_text, NUMBER_ID, f"Question {index}")
        sent = [
            graph.message_send_text(phone_number_id=NUMBER_ID, to="447700900040", body=f"Answer {index}")
            for index in range(150)
        ]

        kept = {
            "messages": len(sandbox.meta.messages),
            "received": len(sandbox.meta.received),
            "deliveries": len(sandbox.sender.sent),
            "requests": len(sandbox.traffic.requests),
        }
        assert max(kept.values()) <= 40 + 40 // 4, kept
        assert min(kept.values()) >= 40, kept  # the newest are all there
        assert sent[-1] in sandbox.meta.messages and sent[0] not in sandbox.meta.messages
        assert 5 <= len(customer.inbox) <= 6
        assert customer.inbox[-1].message_id == sent[-1]
        assert sandbox.traffic.requests[-1][0] == "POST"


@pytest.fixture(autouse=True)
def loopback_only(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
