"""A campaign's crowd: simulated customers who get a template and read it, reply, tap its call button or
stop marketing messages at the configured rates, through the sandbox's Graph API and webhooks."""

import json
import time
from collections import Counter

import phonenumbers
import pytest
from django.core.management.base import CommandError

from whatsapp.client import GraphClient, template_message_request
from whatsapp.errors import GraphAPIError
from whatsapp.events import (
    CallConnect,
    CallTerminate,
    MessageReceived,
    MessageStatus,
    UserPreferenceChange,
    parse_delivery,
)
from whatsapp.management.commands.sandbox import Command as SandboxCommand
from whatsapp.sandbox.crowd import CrowdConfig, crowd_numbers, reactions_for, start_crowd
from whatsapp.sandbox.meta import Rules
from whatsapp.sandbox.server import SandboxThread
from whatsapp.sandbox.tests.test_media import Business

TOKEN, SECRET = "crowd-token", "crowd-secret"
NUMBER_ID, WABA_ID = "7000001", "8000001"
TEMPLATE = "spring_offer"
PAYLOAD = "camp-7"
CALL_BUTTON = {
    "type": "button",
    "sub_type": "voice_call",
    "index": 0,
    "parameters": [{"type": "ttl_minutes", "ttl_minutes": 1440}, {"type": "payload", "payload": PAYLOAD}],
}
QUICK = {"read_after_s": 0.05, "reply_after_s": 0.05, "tap_after_s": 0.05, "stop_after_s": 0.05}


def events_of(sandbox, kind) -> list:
    found = []
    for delivery in list(sandbox.sender.sent):
        found += [
            event for event in parse_delivery(json.loads(delivery.body)).events if isinstance(event, kind)
        ]
    return found


def wait_for(predicate, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return result


def open_sandbox(**options) -> SandboxThread:
    return SandboxThread(webhook_url=None, app_secret=SECRET, token=TOKEN, **options)


def set_up_business(thread: SandboxThread, sandbox) -> None:
    thread.call(
        sandbox.add_number,
        phone_number_id=NUMBER_ID,
        waba_id=WABA_ID,
        display_phone_number="+44 20 7946 0999",
    )
    thread.call(
        sandbox.meta.template_create,
        WABA_ID,
        {
            "name": TEMPLATE,
            "language": "en",
            "category": "MARKETING",
            "components": [
                {"type": "BODY", "text": "Spring prices, this week only."},
                {
                    "type": "BUTTONS",
                    "buttons": [{"type": "VOICE_CALL", "text": "Call us", "ttl_minutes": 1440}],
                },
            ],
        },
    )


def send_campaign(graph: GraphClient, wa_ids: list[str]) -> list[str]:
    return [
        graph.send(
            template_message_request(
                phone_number_id=NUMBER_ID, to=wa_id, name=TEMPLATE, language="en", components=[CALL_BUTTON]
            )
        )["messages"][0]["id"]
        for wa_id in wa_ids
    ]


def test_crowd_config_refuses_impossible_settings():
    with pytest.raises(ValueError) as refused:
        CrowdConfig(read_rate=1.5, tap_after_s=-1, max_concurrent_calls=0, regions=("XX",))

    assert str(refused.value) == (
        "read_rate must be within 0-1; tap_after_s must be 0 or more; max_concurrent_calls must be at "
        "least 1; regions must be country codes such as GB (not XX)"
    )


def test_crowd_numbers_are_distinct_valid_mobiles_of_the_regions():
    wa_ids = crowd_numbers(40, regions=("GB", "IN", "BR", "KE"), seed=3)

    parsed = [phonenumbers.parse("+" + wa_id) for wa_id in wa_ids]
    assert len(set(wa_ids)) == 40
    assert all(phonenumbers.is_valid_number(number) for number in parsed)
    assert {phonenumbers.number_type(number) for number in parsed} == {phonenumbers.PhoneNumberType.MOBILE}
    assert Counter(phonenumbers.region_code_for_number(number) for number in parsed) == {
        "GB": 10, "IN": 10, "BR": 10, "KE": 10,
    }  # fmt: skip
    assert crowd_numbers(40, regions=("GB", "IN", "BR", "KE"), seed=3) == wa_ids


def test_crowd_reacts_to_a_campaign_at_its_rates():
    config = CrowdConfig(
        size=50, read_rate=0.7, reply_rate=0.2, tap_rate=0.1, stop_rate=0.1, call_s=1, seed=7, **QUICK
    )
    thread = open_sandbox(rules=Rules(unanswered_user_call_timeout_s=0.5))
    with thread as sandbox, GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as graph:
        set_up_business(thread, sandbox)
        crowd = thread.call(start_crowd, sandbox, config)
        wa_ids = [member.wa_id for member in crowd.members]
        plans = {wa_id: reactions_for(config, wa_id=wa_id, nth=1) for wa_id in wa_ids}
        planned = Counter(
            kind
            for plan in plans.values()
            for kind, does in (("read", plan.reads), ("reply", plan.reply_at_s is not None),
                               ("tap", plan.tap_at_s is not None), ("stop", plan.stop_at_s is not None))
            if does
        )  # fmt: skip

        message_ids = send_campaign(graph, wa_ids)
        wait_for(lambda: thread.call(crowd.counts) == {**planned, "call": planned["tap"]})
        wait_for(lambda: len(events_of(sandbox, CallTerminate)) == planned["tap"])
        stopped = next(wa_id for wa_id, plan in plans.items() if plan.stop_at_s is not None)
        with pytest.raises(GraphAPIError) as refused:
            send_campaign(graph, [stopped])

    statuses = Counter(status.status for status in events_of(sandbox, MessageStatus))
    readers = {status.recipient_id for status in events_of(sandbox, MessageStatus) if status.status == "read"}
    replies = events_of(sandbox, MessageReceived)
    connects = events_of(sandbox, CallConnect)
    stops = events_of(sandbox, UserPreferenceChange)
    # Seed 7 draws 14 replies (20 % of 50 is 10), 5 taps and 5 stops (10 %); 42 read: the 70 % who
    # read, and those who reacted without that draw (a reaction implies a read).
    assert planned == {"read": 42, "reply": 14, "tap": 5, "stop": 5}
    assert statuses == {"sent": 50, "delivered": 50, "read": 42}
    assert len(set(message_ids)) == 50
    assert readers == {wa_id for wa_id, plan in plans.items() if plan.reads}
    assert sorted(reply.from_number for reply in replies) == sorted(
        wa_id for wa_id, plan in plans.items() if plan.reply_at_s is not None
    )
    assert {reply.text for reply in replies} <= {plan.reply_text for plan in plans.values()}
    assert sorted(connect.from_number for connect in connects) == sorted(
        wa_id for wa_id, plan in plans.items() if plan.tap_at_s is not None
    )
    assert {(c.direction, c.cta_payload, c.sdp_type) for c in connects} == {
        ("USER_INITIATED", PAYLOAD, "offer")
    }
    assert {terminate.cta_payload for terminate in events_of(sandbox, CallTerminate)} == {PAYLOAD}
    assert sorted((stop.wa_id, stop.value) for stop in stops) == sorted(
        (wa_id, "stop") for wa_id, plan in plans.items() if plan.stop_at_s is not None
    )
    assert refused.value.code == 131050


def test_crowd_reacts_the_same_with_the_same_seed():
    config = CrowdConfig(size=30, seed=11)

    first = [
        reactions_for(config, wa_id=wa_id, nth=1) for wa_id in crowd_numbers(30, regions=("GB",), seed=11)
    ]
    again = [
        reactions_for(config, wa_id=wa_id, nth=1) for wa_id in crowd_numbers(30, regions=("GB",), seed=11)
    ]
    other = [
        reactions_for(CrowdConfig(seed=12), wa_id=wa_id, nth=1)
        for wa_id in crowd_numbers(30, regions=("GB",), seed=11)
    ]

    assert first == again
    assert first != other


def test_crowd_calls_wait_for_a_free_line():
    config = CrowdConfig(
        size=5, read_rate=1, reply_rate=0, tap_rate=1, stop_rate=0, max_concurrent_calls=2, **QUICK
    )
    thread = open_sandbox(rules=Rules(unanswered_user_call_timeout_s=0.4))
    with thread as sandbox, GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as graph:
        set_up_business(thread, sandbox)
        crowd = thread.call(start_crowd, sandbox, config)

        send_campaign(graph, [member.wa_id for member in crowd.members])
        wait_for(lambda: len(events_of(sandbox, CallTerminate)) == 5)

    assert crowd.peak_calls == 2
    assert len(events_of(sandbox, CallConnect)) == 5


def test_crowd_taps_only_a_template_with_a_call_button():
    config = CrowdConfig(size=2, read_rate=1, reply_rate=0, tap_rate=1, stop_rate=0, **QUICK)
    thread = open_sandbox(rules=Rules(unanswered_user_call_timeout_s=0.3))
    with thread as sandbox, GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as graph:
        set_up_business(thread, sandbox)
        plain = {"name": "plain_news", "language": "en", "category": "UTILITY",
                 "components": [{"type": "BODY", "text": "News"}]}  # fmt: skip
        thread.call(sandbox.meta.template_create, WABA_ID, plain)
        with_button, without = thread.call(start_crowd, sandbox, config).members

        graph.send(
            template_message_request(
                phone_number_id=NUMBER_ID, to=with_button.wa_id, name=TEMPLATE, language="en"
            )
        )
        graph.send(
            template_message_request(
                phone_number_id=NUMBER_ID, to=without.wa_id, name="plain_news", language="en"
            )
        )
        wait_for(lambda: len(events_of(sandbox, CallTerminate)) == 1)
        time.sleep(0.5)  # the other member's reactions are due by now (means of 0.05 s)

    [connect] = events_of(sandbox, CallConnect)
    reads = {status.recipient_id for status in events_of(sandbox, MessageStatus) if status.status == "read"}
    assert (connect.from_number, connect.cta_payload) == (with_button.wa_id, "")  # no payload was sent
    assert reads == {with_button.wa_id, without.wa_id}


@pytest.mark.e2e
def test_crowd_member_call_reaches_the_business_with_the_campaign_payload(settings, tmp_path):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    config = CrowdConfig(size=1, read_rate=1, reply_rate=0, tap_rate=1, stop_rate=0, call_s=1.5, **QUICK)
    thread = open_sandbox()
    with thread as sandbox, GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as graph:
        set_up_business(thread, sandbox)
        crowd = thread.call(start_crowd, sandbox, config)
        business = thread.call(Business, play=None, record_to=tmp_path / "business_heard.wav")

        send_campaign(graph, [crowd.members[0].wa_id])
        [connect] = wait_for(lambda: events_of(sandbox, CallConnect))
        answer = thread.run(business.answer, connect.sdp)
        graph.call_pre_accept(phone_number_id=NUMBER_ID, call_id=connect.call_id, sdp=answer)
        graph.call_accept(phone_number_id=NUMBER_ID, call_id=connect.call_id, sdp=answer)
        [terminate] = wait_for(lambda: events_of(sandbox, CallTerminate))
        thread.run(business.close)

    assert (connect.from_number, connect.cta_payload) == (crowd.members[0].wa_id, PAYLOAD)
    assert (terminate.call_id, terminate.status, terminate.cta_payload) == (
        connect.call_id,
        "COMPLETED",
        PAYLOAD,
    )
    assert terminate.duration_s == pytest.approx(1.5, abs=1)


def crowd_options(*arguments: str) -> dict:
    return vars(SandboxCommand().create_parser("manage.py", "sandbox").parse_args(list(arguments)))


def test_sandbox_command_reads_the_crowd_from_its_options():
    options = crowd_options(
        "--crowd", "200", "--crowd-tap-rate", "0.05", "--crowd-max-concurrent-calls", "8",
        "--crowd-seed", "4", "--crowd-regions", "gb, in",
    )  # fmt: skip

    config = SandboxCommand()._crowd_config(options)

    assert config == CrowdConfig(
        size=200, tap_rate=0.05, max_concurrent_calls=8, seed=4, regions=("GB", "IN")
    )
    assert SandboxCommand()._crowd_config(crowd_options()) is None


def test_sandbox_command_refuses_a_crowd_at_impossible_rates():
    with pytest.raises(CommandError) as refused:
        SandboxCommand()._crowd_config(crowd_options("--crowd", "5", "--crowd-stop-rate", "2"))

    assert str(refused.value) == "Campaign crowd: stop_rate must be within 0-1"
