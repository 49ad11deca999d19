"""Meta's rules and error codes, asserted through the product's real Graph API client."""

import time
from datetime import timedelta

import httpx
import pytest

from whatsapp import errors
from whatsapp.client import GraphClient
from whatsapp.sandbox.customers import Behaviour
from whatsapp.sandbox.media import CustomerMedia
from whatsapp.sandbox.meta import Rules
from whatsapp.sandbox.server import SandboxThread
from whatsapp.services import webhook_signature_is_valid

TOKEN = "test-token"
SECRET = "test-secret"
NUMBER_ID = "1000001"
WABA_ID = "2000001"
UK_NUMBER = "+44 20 7946 0000"


@pytest.fixture
def sandbox_thread(settings):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    thread = SandboxThread(webhook_url=None, app_secret=SECRET, token=TOKEN, rules=Rules())
    with thread as sandbox:
        sandbox.add_number(phone_number_id=NUMBER_ID, waba_id=WABA_ID, display_phone_number=UK_NUMBER)
        yield thread


@pytest.fixture
def sandbox(sandbox_thread):
    return sandbox_thread.sandbox


@pytest.fixture
def graph(sandbox):
    with GraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def business_offer():
    """A real WebRTC offer, as the business's media process would send with `connect`."""
    import asyncio

    async def make_offer() -> str:
        media = CustomerMedia(play=None, record_to=None)
        offer = await media.create_offer()
        await media.close()
        return offer

    return asyncio.run(make_offer())


def add_customer(sandbox_thread, wa_id: str, *, permission: str | None = "temporary", **options):
    customer = sandbox_thread.call(
        sandbox_thread.sandbox.add_customer, wa_id=wa_id, name=f"Customer {wa_id}", **options
    )
    if permission:
        state = sandbox_thread.sandbox.meta.permission(NUMBER_ID, wa_id)
        state.status = permission
        if permission == "temporary":
            state.expires_at = sandbox_thread.sandbox.meta.now() + timedelta(days=7)
    return customer


def wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def deliveries(sandbox, field_name: str | None = None) -> list[dict]:
    return [delivery.payload for delivery in sandbox.sender.sent if field_name in (None, delivery.field_name)]


def call_statuses(sandbox, call_id: str) -> list[str]:
    found = []
    for payload in deliveries(sandbox, "calls"):
        value = payload["entry"][0]["changes"][0]["value"]
        found += [status["status"] for status in value.get("statuses", []) if status["id"] == call_id]
        found += [
            f"terminate:{call['status']}"
            for call in value.get("calls", [])
            if call["id"] == call_id and call["event"] == "terminate"
        ]
    return found


def test_connect_refused_when_calling_disabled(sandbox_thread, graph, business_offer):
    sandbox_thread.call(
        sandbox_thread.sandbox.add_number,
        phone_number_id="off",
        waba_id=WABA_ID,
        display_phone_number="+44 20 7946 0001",
        calling_enabled=False,
    )
    add_customer(sandbox_thread, "447700900001")

    with pytest.raises(errors.CallingNotEnabled) as raised:
        graph.call_connect(phone_number_id="off", to="447700900001", sdp=business_offer)

    assert raised.value.code == 138000


def test_connect_refused_without_permission(sandbox_thread, graph, business_offer):
    add_customer(sandbox_thread, "447700900002", permission=None)

    with pytest.raises(errors.NoCallPermission) as raised:
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900002", sdp=business_offer)

    assert raised.value.code == 138006


def test_connect_refused_for_uncallable_receiver(sandbox_thread, graph, business_offer):
    with pytest.raises(errors.ReceiverUncallable):
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900999", sdp=business_offer)


def test_connect_refused_for_red_list_country_numbers(sandbox_thread, graph, business_offer):
    sandbox_thread.call(
        sandbox_thread.sandbox.add_number,
        phone_number_id="us",
        waba_id=WABA_ID,
        display_phone_number="+1 415 555 0100",
    )
    add_customer(sandbox_thread, "447700900003")
    sandbox_thread.sandbox.meta.permission("us", "447700900003").status = "permanent"

    with pytest.raises(errors.CallingNotEnabled) as raised:
        graph.call_connect(phone_number_id="us", to="447700900003", sdp=business_offer)

    assert "US" in raised.value.details


def test_connect_refused_for_duplicate_call(sandbox_thread, graph, business_offer):
    add_customer(sandbox_thread, "447700900004", behaviour=Behaviour(business_call="ignore"))
    graph.call_connect(phone_number_id=NUMBER_ID, to="447700900004", sdp=business_offer)

    with pytest.raises(errors.DuplicateCall) as raised:
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900004", sdp=business_offer)

    assert raised.value.code == 138003


def test_connect_refused_beyond_concurrent_cap(sandbox_thread, graph, business_offer):
    sandbox_thread.sandbox.meta.rules.max_concurrent_calls = 2
    for wa_id in ("447700900011", "447700900012", "447700900013"):
        add_customer(sandbox_thread, wa_id, behaviour=Behaviour(business_call="ignore"))
    graph.call_connect(phone_number_id=NUMBER_ID, to="447700900011", sdp=business_offer)
    graph.call_connect(phone_number_id=NUMBER_ID, to="447700900012", sdp=business_offer)

    with pytest.raises(errors.ConcurrentCallLimit) as raised:
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900013", sdp=business_offer)

    assert raised.value.code == 138002


def test_business_call_rings_answers_and_terminates(sandbox_thread, graph, business_offer):
    sandbox = sandbox_thread.sandbox
    add_customer(
        sandbox_thread, "447700900020", behaviour=Behaviour(business_call="answer", answer_after_s=0.1)
    )

    call_id = graph.call_connect(
        phone_number_id=NUMBER_ID, to="447700900020", sdp=business_offer, biz_opaque_callback_data="ticket-1"
    )
    wait_for(lambda: "ACCEPTED" in call_statuses(sandbox, call_id))
    graph.call_terminate(phone_number_id=NUMBER_ID, call_id=call_id)
    wait_for(lambda: "terminate:COMPLETED" in call_statuses(sandbox, call_id))

    connect = next(
        call
        for payload in deliveries(sandbox, "calls")
        for call in payload["entry"][0]["changes"][0]["value"].get("calls", [])
        if call["event"] == "connect"
    )
    assert call_id.startswith("wacid.")
    assert call_statuses(sandbox, call_id) == ["RINGING", "ACCEPTED", "terminate:COMPLETED"]
    assert connect["session"]["sdp_type"] == "answer"
    assert connect["biz_opaque_callback_data"] == "ticket-1"


def test_connected_call_cap_per_24h(sandbox_thread, graph, business_offer):
    sandbox = sandbox_thread.sandbox
    sandbox.meta.rules.connected_calls_per_24h = 1
    add_customer(
        sandbox_thread, "447700900021", behaviour=Behaviour(business_call="answer", answer_after_s=0.05)
    )
    call_id = graph.call_connect(phone_number_id=NUMBER_ID, to="447700900021", sdp=business_offer)
    wait_for(lambda: "ACCEPTED" in call_statuses(sandbox, call_id))
    graph.call_terminate(phone_number_id=NUMBER_ID, call_id=call_id)

    with pytest.raises(errors.ConnectedCallLimit) as raised:
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900021", sdp=business_offer)

    assert raised.value.code == 138012
    assert raised.value.error_data["next_call_allowed_at"] > time.time() + 23 * 3600


def test_four_unanswered_calls_in_a_row_revoke_permission(sandbox_thread, graph, business_offer):
    sandbox = sandbox_thread.sandbox
    add_customer(
        sandbox_thread, "447700900022", behaviour=Behaviour(business_call="decline", answer_after_s=0.01)
    )
    for _ in range(4):
        call_id = graph.call_connect(phone_number_id=NUMBER_ID, to="447700900022", sdp=business_offer)
        wait_for(lambda call_id=call_id: "terminate:FAILED" in call_statuses(sandbox, call_id))

    state = graph.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900022")
    with pytest.raises(errors.NoCallPermission):
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900022", sdp=business_offer)

    assert state.status == "no_permission"
    assert state.can("start_call") is False


def test_three_unanswered_then_answered_keeps_permission(sandbox_thread, graph, business_offer):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(
        sandbox_thread, "447700900023", behaviour=Behaviour(business_call="decline", answer_after_s=0.01)
    )
    for _ in range(3):
        call_id = graph.call_connect(phone_number_id=NUMBER_ID, to="447700900023", sdp=business_offer)
        wait_for(lambda call_id=call_id: "terminate:FAILED" in call_statuses(sandbox, call_id))
    customer.behaviour = Behaviour(business_call="answer", answer_after_s=0.01)
    call_id = graph.call_connect(phone_number_id=NUMBER_ID, to="447700900023", sdp=business_offer)
    wait_for(lambda: "ACCEPTED" in call_statuses(sandbox, call_id))

    assert sandbox.meta.permission(NUMBER_ID, "447700900023").consecutive_unanswered == 0
    assert (
        graph.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900023").status == "temporary"
    )


def test_permission_expires_after_seven_days(sandbox_thread, graph, business_offer):
    add_customer(sandbox_thread, "447700900024")
    sandbox_thread.sandbox.meta.clock_offset = timedelta(days=7, seconds=1)

    with pytest.raises(errors.NoCallPermission):
        graph.call_connect(phone_number_id=NUMBER_ID, to="447700900024", sdp=business_offer)


def test_permission_request_quota(sandbox_thread, graph):
    customer = add_customer(
        sandbox_thread, "447700900030", permission=None, behaviour=Behaviour(permission_reply="ignore")
    )
    sandbox_thread.call(customer.send_text, NUMBER_ID, "Hi, can you call me?")
    graph.message_send_call_permission_request(
        phone_number_id=NUMBER_ID, to="447700900030", body_text="May we call you?"
    )

    with pytest.raises(errors.PermissionRequestLimit) as raised:
        graph.message_send_call_permission_request(phone_number_id=NUMBER_ID, to="447700900030")

    assert raised.value.code == 138009


def test_permission_request_accepted_grants_temporary_permission(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900031", permission=None)
    sandbox_thread.call(customer.send_text, NUMBER_ID, "Please call me back")

    request_id = graph.message_send_call_permission_request(phone_number_id=NUMBER_ID, to="447700900031")
    wait_for(lambda: sandbox.meta.permission(NUMBER_ID, "447700900031").status == "temporary")

    reply = next(
        message
        for payload in deliveries(sandbox, "messages")
        for message in payload["entry"][0]["changes"][0]["value"].get("messages", [])
        if message["type"] == "interactive"
    )
    assert reply["context"]["id"] == request_id
    assert reply["interactive"]["call_permission_reply"]["response"] == "accept"
    assert reply["interactive"]["call_permission_reply"]["is_permanent"] is False
    assert (
        graph.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900031").status == "temporary"
    )


def test_free_form_message_outside_window_refused(sandbox_thread, graph):
    add_customer(sandbox_thread, "447700900032")

    with pytest.raises(errors.ReEngagementRequired):
        graph.message_send_text(phone_number_id=NUMBER_ID, to="447700900032", body="Hello")


def test_call_button_to_old_app_undeliverable(sandbox_thread, graph):
    customer = add_customer(sandbox_thread, "447700900033", supports_call_buttons=False)
    sandbox_thread.call(customer.send_text, NUMBER_ID, "hi")

    with pytest.raises(errors.MessageUndeliverable) as raised:
        graph.message_send_call_button(phone_number_id=NUMBER_ID, to="447700900033", body_text="Call us now")

    assert raised.value.code == 131026


def test_template_statuses_carry_pricing(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    add_customer(sandbox_thread, "447700900034")
    sandbox_thread.call(
        sandbox.meta.template_create,
        WABA_ID,
        {
            "name": "order_update",
            "category": "UTILITY",
            "language": "en",
            "components": [{"type": "BODY", "text": "Hi"}],
        },
    )

    message_id = graph.message_send_template(
        phone_number_id=NUMBER_ID, to="447700900034", name="order_update", language="en"
    )
    wait_for(lambda: len(deliveries(sandbox, "messages")) >= 2)

    statuses = [
        status
        for payload in deliveries(sandbox, "messages")
        for status in payload["entry"][0]["changes"][0]["value"].get("statuses", [])
        if status["id"] == message_id
    ]
    assert [status["status"] for status in statuses][:2] == ["sent", "delivered"]
    assert statuses[0]["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "utility",
    }


def pricing_types_sent(sandbox, message_id: str) -> list[str]:
    return [
        status["pricing"]["type"]
        for payload in deliveries(sandbox, "messages")
        for status in payload["entry"][0]["changes"][0]["value"].get("statuses", [])
        if status["id"] == message_id and status["status"] == "sent"
    ]


@pytest.mark.parametrize(("answered_after_h", "is_free"), [(1, True), (25, False)])
def test_an_answer_to_an_ad_within_a_day_opens_72_free_hours(
    sandbox_thread, graph, answered_after_h, is_free
):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900035")
    sandbox_thread.call(sandbox.meta.template_create, WABA_ID, {
        "name": "offer", "category": "MARKETING", "language": "en",
        "components": [{"type": "BODY", "text": "Hi"}],
    })  # fmt: skip
    sandbox_thread.call(customer.arrive_from_ad, NUMBER_ID, text="Is it still on sale?", ad_id="ad1")
    sent = []

    for offset_h in (answered_after_h, answered_after_h + 71, answered_after_h + 73):
        sandbox.meta.clock_offset = timedelta(hours=offset_h)
        sent.append(
            graph.message_send_template(
                phone_number_id=NUMBER_ID, to="447700900035", name="offer", language="en"
            )
        )
    wait_for(lambda: all(pricing_types_sent(sandbox, message_id) for message_id in sent))

    types = [pricing_types_sent(sandbox, message_id)[0] for message_id in sent]
    if is_free:
        assert types == ["free_entry_point", "free_entry_point", "regular"]
    else:
        assert types == ["regular", "regular", "regular"]


def test_a_refused_answer_to_an_ad_opens_no_free_entry_point(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900036")
    sandbox_thread.call(sandbox.meta.template_create, WABA_ID, {
        "name": "offer", "category": "MARKETING", "language": "en",
        "components": [{"type": "BODY", "text": "Hi"}],
    })  # fmt: skip
    sandbox_thread.call(customer.arrive_from_ad, NUMBER_ID, text="Is it still on sale?", ad_id="ad2")

    sandbox.meta.clock_offset = timedelta(hours=1)
    with pytest.raises(errors.GraphAPIError, match="132001"):
        graph.message_send_template(phone_number_id=NUMBER_ID, to="447700900036", name="nope", language="en")
    sent = []
    for offset_h in (20, 80):  # the window runs from the first answer Meta took: 20 h to 92 h
        sandbox.meta.clock_offset = timedelta(hours=offset_h)
        sent.append(
            graph.message_send_template(
                phone_number_id=NUMBER_ID, to="447700900036", name="offer", language="en"
            )
        )
    wait_for(lambda: all(pricing_types_sent(sandbox, message_id) for message_id in sent))

    assert [pricing_types_sent(sandbox, message_id)[0] for message_id in sent] == ["free_entry_point"] * 2


def test_inbound_calls_beyond_cap_are_dropped_without_webhook(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    sandbox.meta.rules.max_concurrent_calls = 1
    first = add_customer(sandbox_thread, "447700900040", permission=None)
    second = add_customer(sandbox_thread, "447700900041", permission=None)

    placed = sandbox_thread.run(first.place_call, NUMBER_ID)
    dropped = sandbox_thread.run(second.place_call, NUMBER_ID)
    sandbox_thread.run(sandbox.sender.drain)

    assert placed is not None
    assert dropped is None
    assert len(deliveries(sandbox, "calls")) == 1


def test_pre_accept_and_accept_must_carry_the_same_sdp(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900042", permission=None)
    placed = sandbox_thread.run(customer.place_call, NUMBER_ID)
    call_id = placed.call.call_id
    answer = sandbox_thread.run(_answer_for, placed.call.offer_sdp)
    other_answer = sandbox_thread.run(_answer_for, placed.call.offer_sdp)

    graph.call_pre_accept(phone_number_id=NUMBER_ID, call_id=call_id, sdp=answer)
    with pytest.raises(errors.InvalidParameter) as raised:
        graph.call_accept(phone_number_id=NUMBER_ID, call_id=call_id, sdp=other_answer)
    graph.call_accept(phone_number_id=NUMBER_ID, call_id=call_id, sdp=answer)

    assert "must equal" in raised.value.details
    assert sandbox.meta.calls[call_id].state == "ACCEPTED"


def test_accept_or_reject_after_the_call_ended_refused(sandbox_thread, graph):
    customer = add_customer(sandbox_thread, "447700900043", permission=None)
    placed = sandbox_thread.run(customer.place_call, NUMBER_ID)
    answer = sandbox_thread.run(_answer_for, placed.call.offer_sdp)
    sandbox_thread.run(customer.hang_up, placed.call)

    with pytest.raises(errors.InvalidParameter):
        graph.call_accept(phone_number_id=NUMBER_ID, call_id=placed.call.call_id, sdp=answer)
    with pytest.raises(errors.InvalidParameter):
        graph.call_reject(phone_number_id=NUMBER_ID, call_id=placed.call.call_id)


def test_unanswered_user_call_times_out_with_terminate(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    sandbox.meta.rules.unanswered_user_call_timeout_s = 0.2
    customer = add_customer(sandbox_thread, "447700900044", permission=None)

    placed = sandbox_thread.run(customer.place_call, NUMBER_ID)
    wait_for(lambda: "terminate:FAILED" in call_statuses(sandbox, placed.call.call_id))

    terminate = next(
        call
        for payload in deliveries(sandbox, "calls")
        for call in payload["entry"][0]["changes"][0]["value"]["calls"]
        if call["event"] == "terminate"
    )
    assert "start_time" not in terminate
    assert "duration" not in terminate


def test_callback_permission_granted_automatically_by_calling_in(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    graph.settings_update(phone_number_id=NUMBER_ID, calling={"callback_permission_status": "ENABLED"})
    customer = add_customer(sandbox_thread, "447700900045", permission=None)

    placed = sandbox_thread.run(customer.place_call, NUMBER_ID)
    sandbox_thread.run(customer.hang_up, placed.call)
    sandbox_thread.run(sandbox.sender.drain)

    replies = [
        message["interactive"]["call_permission_reply"] | {"context": message["context"]["id"]}
        for payload in deliveries(sandbox, "messages")
        for message in payload["entry"][0]["changes"][0]["value"].get("messages", [])
    ]
    assert replies[0]["response_source"] == "automatic"
    assert replies[0]["context"] == placed.call.call_id
    assert (
        graph.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900045").status == "temporary"
    )


def test_settings_update_validates_and_emits_webhook(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    hours = {
        "status": "ENABLED",
        "timezone_id": "Europe/London",
        "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0900", "close_time": "1700"}],
    }

    with pytest.raises(errors.InvalidParameter):
        graph.settings_update(
            phone_number_id=NUMBER_ID, calling={"call_hours": {**hours, "timezone_id": "Mars/Olympus"}}
        )
    with pytest.raises(errors.InvalidParameter):
        graph.settings_update(
            phone_number_id=NUMBER_ID,
            calling={
                "call_hours": {
                    **hours,
                    "weekly_operating_hours": [
                        {"day_of_week": "MONDAY", "open_time": "1700", "close_time": "0900"}
                    ],
                }
            },
        )
    graph.settings_update(phone_number_id=NUMBER_ID, calling={"call_hours": hours})
    sandbox_thread.run(sandbox.sender.drain)

    [update] = deliveries(sandbox, "account_settings_update")
    calling = update["entry"][0]["changes"][0]["value"]["phone_number_settings"]["calling"]
    assert calling["call_hours"]["timezone_id"] == "Europe/London"
    assert graph.settings_get(phone_number_id=NUMBER_ID)["calling"]["call_hours"]["status"] == "ENABLED"


REPLAYED_CALLING = {
    "status": "ENABLED",
    "call_hours": {
        "status": "ENABLED",
        "timezone_id": "[REDACTED]",
        "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0900", "close_time": "1700"}],
    },
    "sip": {"status": "ENABLED", "servers": [{"hostname": "example.com", "port": 5061}]},
}


def test_settings_update_invalid_refused_with_every_field_named_and_nothing_changed(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    before = graph.settings_get(phone_number_id=NUMBER_ID)

    with pytest.raises(errors.InvalidParameter) as raised:
        graph.settings_update(phone_number_id=NUMBER_ID, calling=REPLAYED_CALLING)
    sandbox_thread.run(sandbox.sender.drain)

    assert (raised.value.code, raised.value.http_status) == (100, 400)
    assert raised.value.message == "(#100) Invalid parameter"
    assert raised.value.details == (
        "calling.call_hours.timezone_id: '[REDACTED]' is not an IANA time zone such as 'America/Manaus'; "
        "calling.sip.servers[0].hostname: 'example.com' is reserved for documentation and examples (RFC 2606)"
    )
    assert graph.settings_get(phone_number_id=NUMBER_ID) == before
    assert deliveries(sandbox, "account_settings_update") == []


def test_settings_update_answers_in_graph_shapes(sandbox):
    url = f"{sandbox.graph_url.rstrip('/')}/{NUMBER_ID}/settings"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    refused = httpx.post(url, headers=headers, json={"calling": {"restrictions": {"restrictions_list": []}}})
    accepted = httpx.post(url, headers=headers, json={"calling": {"call_icon_visibility": "DISABLE_ALL"}})

    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["message"], error["type"]) == (
        100,
        "(#100) Invalid parameter",
        "OAuthException",
    )
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "calling.restrictions: is set by Meta and cannot be changed",
    }
    assert (accepted.status_code, accepted.json()) == (200, {"success": True})


@pytest.mark.parametrize(
    ("calling", "field"),
    [
        ({"srtp_key_exchange_protocol": "SDES"}, "calling.srtp_key_exchange_protocol"),
        ({"sip": {"status": "ENABLED"}}, "calling.sip.servers"),
        (
            {"call_icons": {"restrict_to_user_countries": ["UK"]}},
            "calling.call_icons.restrict_to_user_countries[0]",
        ),
        ({"status": "ON"}, "calling.status"),
        ({"video": {"status": "ENABLED"}}, "calling.video"),
    ],
)
def test_settings_update_refuses_each_broken_rule(sandbox_thread, graph, calling, field):
    with pytest.raises(errors.InvalidParameter) as raised:
        graph.settings_update(phone_number_id=NUMBER_ID, calling=calling)

    assert raised.value.details.startswith(f"{field}: ")


def test_settings_update_refuses_a_holiday_already_past(sandbox_thread, graph):
    today = sandbox_thread.sandbox.meta.now().date()
    hours = {
        "status": "ENABLED",
        "timezone_id": "Etc/UTC",
        "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0900", "close_time": "1700"}],
        "holiday_schedule": [
            {"date": (today - timedelta(days=1)).isoformat(), "start_time": "0000", "end_time": "2359"}
        ],
    }

    with pytest.raises(errors.InvalidParameter) as raised:
        graph.settings_update(phone_number_id=NUMBER_ID, calling={"call_hours": hours})

    assert raised.value.details == (
        f"calling.call_hours.holiday_schedule[0].date: {today - timedelta(days=1)} is in the past "
        f"(today is {today})"
    )


def test_settings_update_valid_stored_call_hours_replaced_wholesale(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    holiday_date = (sandbox.meta.now().date() + timedelta(days=30)).isoformat()
    hours = {
        "status": "ENABLED",
        "timezone_id": "America/Manaus",
        "weekly_operating_hours": [{"day_of_week": "MONDAY", "open_time": "0400", "close_time": "1020"}],
        "holiday_schedule": [{"date": holiday_date, "start_time": "0000", "end_time": "2359"}],
    }
    sip = {"status": "ENABLED", "servers": [{"hostname": "sip.switchboard.io", "port": 5061}]}
    weekdays = [{"day_of_week": "TUESDAY", "open_time": "0800", "close_time": "1800"}]

    graph.settings_update(phone_number_id=NUMBER_ID, calling={"call_hours": hours, "sip": sip})
    graph.settings_update(
        phone_number_id=NUMBER_ID,
        calling={
            "call_hours": {
                "status": "ENABLED",
                "timezone_id": "Europe/London",
                "weekly_operating_hours": weekdays,
            },
            "srtp_key_exchange_protocol": "SDES",
        },
    )
    sandbox_thread.run(sandbox.sender.drain)

    calling = graph.settings_get(phone_number_id=NUMBER_ID)["calling"]
    assert calling["call_hours"] == {
        "status": "ENABLED",
        "timezone_id": "Europe/London",
        "weekly_operating_hours": weekdays,
        "holiday_schedule": [],
    }
    assert (calling["sip"], calling["srtp_key_exchange_protocol"]) == (sip, "SDES")
    first, second = deliveries(sandbox, "account_settings_update")
    assert first["entry"][0]["changes"][0]["value"]["phone_number_settings"]["calling"]["call_hours"] == hours
    assert second["entry"][0]["changes"][0]["value"]["phone_number_settings"]["calling"] == {
        key: value for key, value in calling.items() if key != "restrictions"
    }


def test_call_permission_lookups_rate_limited(sandbox_thread, graph):
    add_customer(sandbox_thread, "447700900046")
    for _ in range(5):
        graph.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900046")

    with pytest.raises(errors.RateLimited) as raised:
        graph.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900046")

    assert raised.value.http_status == 429


def test_wrong_token_refused(sandbox):
    with (
        GraphClient(base_url=sandbox.graph_url, token="wrong", max_retries=0) as client,
        pytest.raises(errors.InvalidAccessToken),
    ):
        client.settings_get(phone_number_id=NUMBER_ID)


def test_webhooks_are_signed_over_the_exact_body(sandbox_thread):
    customer = add_customer(sandbox_thread, "447700900047", permission=None)

    sandbox_thread.call(customer.send_text, NUMBER_ID, "hello")
    sandbox_thread.run(sandbox_thread.sandbox.sender.drain)

    [delivery] = sandbox_thread.sandbox.sender.sent
    from whatsapp.sandbox.webhooks import sign

    assert webhook_signature_is_valid(
        body=delivery.body, signature=sign(body=delivery.body, app_secret=SECRET), app_secret=SECRET
    )


async def _answer_for(offer: str) -> str:
    media = CustomerMedia(play=None, record_to=None)
    answer = await media.answer(offer)
    await media.close()
    return answer


def messages_of(sandbox) -> list[dict]:
    return [
        message
        for payload in deliveries(sandbox, "messages")
        for message in payload["entry"][0]["changes"][0]["value"].get("messages", [])
    ]


def test_customer_taps_a_call_button_and_the_call_carries_its_payload(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900050", permission=None)
    sandbox_thread.call(customer.send_text, NUMBER_ID, "Can I talk to someone?")
    graph.message_send_call_button(
        phone_number_id=NUMBER_ID,
        to="447700900050",
        body_text="Call us now",
        display_text="Call",
        payload="case-77",
    )
    wait_for(lambda: customer.inbox)

    placed = sandbox_thread.run(customer.tap_call_button, customer.inbox[0])
    sandbox_thread.run(sandbox.sender.drain)

    connect = next(
        call
        for payload in deliveries(sandbox, "calls")
        for call in payload["entry"][0]["changes"][0]["value"]["calls"]
        if call["id"] == placed.call.call_id
    )
    assert connect["cta_payload"] == "case-77"


def test_customer_from_an_ad_opens_the_free_entry_point(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900051", permission=None)
    sandbox_thread.call(
        sandbox.meta.template_create,
        WABA_ID,
        {
            "name": "spring_offer",
            "category": "MARKETING",
            "language": "en",
            "components": [{"type": "BODY", "text": "Hi"}],
        },
    )

    sandbox_thread.call(customer.arrive_from_ad, NUMBER_ID, text="Hi, I saw your ad", ad_id="120211")
    message_id = graph.message_send_template(
        phone_number_id=NUMBER_ID, to="447700900051", name="spring_offer", language="en"
    )
    sandbox_thread.run(sandbox.sender.drain)

    [inbound] = messages_of(sandbox)
    status = next(
        status
        for payload in deliveries(sandbox, "messages")
        for status in payload["entry"][0]["changes"][0]["value"].get("statuses", [])
        if status["id"] == message_id
    )
    assert inbound["referral"]["source_id"] == "120211"
    assert status["pricing"]["type"] == "free_entry_point"


def test_customer_replies_with_a_button(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900052", permission=None)

    sandbox_thread.call(
        customer.reply_button, NUMBER_ID, button_id="yes", title="Yes please", context_id="wamid.q1"
    )
    sandbox_thread.run(sandbox.sender.drain)

    [reply] = messages_of(sandbox)
    assert reply["interactive"]["button_reply"] == {"id": "yes", "title": "Yes please"}
    assert reply["context"]["id"] == "wamid.q1"


def test_customers_send_files_as_media_ids_that_meta_serves_for_minutes(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900053", permission=None)
    sandbox_thread.call(customer.send_voice_note, NUMBER_ID)
    sandbox_thread.call(customer.send_document, NUMBER_ID, caption="My invoice")
    sandbox_thread.run(sandbox.sender.drain)
    voice_note, document = messages_of(sandbox)
    location = graph.media_location(media_id=document["document"]["id"])
    sandbox.meta.clock_offset = sandbox.meta.rules.media_url_lifetime + timedelta(seconds=1)

    with pytest.raises(errors.GraphAPIError) as expired:
        graph.media_download(location.url, max_bytes=1_000_000)

    assert voice_note["audio"]["voice"] is True
    assert voice_note["audio"]["mime_type"] == "audio/ogg; codecs=opus"
    assert sandbox.meta.media[voice_note["audio"]["id"]].content[:4] == b"OggS"
    assert (document["document"]["filename"], document["document"]["caption"]) == (
        "invoice-1042.pdf",
        "My invoice",
    )
    assert sandbox.meta.media[document["document"]["id"]].content.startswith(b"%PDF-1.4")
    assert expired.value.http_status == 404
    fresh = graph.media_location(media_id=document["document"]["id"])  # a new link works again
    assert graph.media_download(fresh.url, max_bytes=1_000_000).size == int(fresh.file_size)


def test_a_file_link_cannot_be_forged_and_an_unknown_media_id_is_refused(sandbox_thread, graph):
    sandbox = sandbox_thread.sandbox
    customer = add_customer(sandbox_thread, "447700900054", permission=None)
    sandbox_thread.call(customer.send_photo, NUMBER_ID)
    sandbox_thread.run(sandbox.sender.drain)
    [photo] = messages_of(sandbox)
    location = graph.media_location(media_id=photo["image"]["id"])

    with pytest.raises(errors.GraphAPIError) as forged:
        graph.media_download(location.url.replace("hash=", "hash=0"), max_bytes=1_000_000)
    with pytest.raises(errors.InvalidParameter) as unknown:
        graph.media_location(media_id="1234567890")

    assert forged.value.http_status == 404
    assert (unknown.value.http_status, unknown.value.error_data["error_subcode"]) == (400, 33)


def test_sends_over_the_numbers_throughput_get_130429_until_it_is_back_under(sandbox_thread, graph):
    sandbox_thread.sandbox.meta.rules.messages_per_second = 2
    sandbox_thread.call(sandbox_thread.sandbox.meta.template_create, WABA_ID, {
        "name": "news", "category": "UTILITY", "components": [{"type": "BODY", "text": "News"}],
    })  # fmt: skip
    add_customer(sandbox_thread, "447700900034")

    def send() -> str:
        return graph.message_send_template(
            phone_number_id=NUMBER_ID, to="447700900034", name="news", language="en"
        )

    first, second = send(), send()
    with pytest.raises(errors.GraphAPIError) as refused:
        send()
    time.sleep(1.05)
    later = send()

    assert first != second != later
    assert (refused.value.code, refused.value.http_status) == (130429, 400)
