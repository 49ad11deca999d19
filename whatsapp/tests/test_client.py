"""The Graph API client against the sandbox: wire format, retries, and errors typed by Meta's code."""

import asyncio

import pytest

from whatsapp import client as client_module
from whatsapp import errors
from whatsapp.client import (
    AsyncGraphClient,
    GraphClient,
    MediaTooLarge,
    call_action_request,
    call_button_message_request,
    call_connect_request,
    error_from_response,
    media_url_request,
    parse_media_location,
    read_receipt_request,
)
from whatsapp.sandbox.server import SandboxThread

TOKEN, NUMBER_ID = "client-token", "7000001"


@pytest.fixture
def sandbox_thread():
    thread = SandboxThread(webhook_url=None, app_secret="secret", token=TOKEN)
    with thread as sandbox:
        sandbox.add_number(
            phone_number_id=NUMBER_ID, waba_id="8000001", display_phone_number="+44 20 7946 0789"
        )
        yield thread


def client_for(sandbox, **options) -> GraphClient:
    return GraphClient(base_url=sandbox.graph_url, token=TOKEN, backoff_s=0.01, **options)


def test_connect_request_matches_meta_wire_format():
    request = call_connect_request(
        phone_number_id="123", to="14085551234", sdp="v=0...", biz_opaque_callback_data="0fS5cePMok"
    )

    assert (request.method, request.path) == ("POST", "123/calls")
    assert request.json == {
        "messaging_product": "whatsapp",
        "to": "14085551234",
        "action": "connect",
        "session": {"sdp_type": "offer", "sdp": "v=0..."},
        "biz_opaque_callback_data": "0fS5cePMok",
    }


def test_call_action_requests_match_meta_wire_format():
    accept = call_action_request(
        phone_number_id="123",
        call_id="wacid.A",
        action="accept",
        sdp="v=0",
        biz_opaque_callback_data="ticket-8812",
    )
    reject = call_action_request(phone_number_id="123", call_id="wacid.A", action="reject")

    assert accept.json == {
        "messaging_product": "whatsapp",
        "call_id": "wacid.A",
        "action": "accept",
        "session": {"sdp_type": "answer", "sdp": "v=0"},
        "biz_opaque_callback_data": "ticket-8812",
    }
    assert reject.json == {"messaging_product": "whatsapp", "call_id": "wacid.A", "action": "reject"}


@pytest.mark.parametrize(
    "arguments",
    [
        {"action": "dance"},
        {"action": "accept"},
        {"action": "reject", "biz_opaque_callback_data": "x"},
        {"action": "accept", "sdp": "v=0", "biz_opaque_callback_data": "x" * 513},
    ],
)
def test_call_action_request_refuses_bad_arguments(arguments):
    with pytest.raises(ValueError):
        call_action_request(phone_number_id="123", call_id="wacid.A", **arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        {"display_text": "x" * 21},
        {"ttl_minutes": 0},
        {"ttl_minutes": 43201},
        {"payload": "p" * 513},
        {"body_text": ""},
    ],
)
def test_call_button_request_refuses_out_of_range_values(arguments):
    with pytest.raises(ValueError):
        call_button_message_request(phone_number_id="123", to="1", **{"body_text": "Call us", **arguments})


def test_error_from_response_types_by_code():
    error = error_from_response(
        http_status=400,
        body={
            "error": {
                "message": "No permission",
                "code": 138006,
                "error_data": {"details": "ask first"},
                "fbtrace_id": "A1",
            }
        },
    )

    assert isinstance(error, errors.NoCallPermission)
    assert (error.code, error.details, error.fbtrace_id, error.http_status) == (
        138006,
        "ask first",
        "A1",
        400,
    )
    assert isinstance(
        error_from_response(http_status=429, body={"error": {"code": 138013}}), errors.RateLimited
    )
    assert (
        type(error_from_response(http_status=400, body={"error": {"code": 999999}})) is errors.GraphAPIError
    )
    assert type(error_from_response(http_status=400, body="<html>")) is errors.GraphAPIError


def test_5xx_answers_are_retried_until_success(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    sandbox.inject_faults(2, status=503)

    with client_for(sandbox, max_retries=3) as client:
        settings = client.settings_get(phone_number_id=NUMBER_ID)

    assert settings["calling"]["status"] == "ENABLED"
    assert len(sandbox.traffic.requests) == 3


def test_retries_are_bounded(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    sandbox.inject_faults(5, status=502)

    with client_for(sandbox, max_retries=2) as client, pytest.raises(errors.GraphTransportError) as raised:
        client.settings_get(phone_number_id=NUMBER_ID)

    assert "HTTP 502" in str(raised.value)
    assert len(sandbox.traffic.requests) == 3


def test_timeouts_are_retried(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    sandbox.inject_faults(1, status=None, delay_s=1.0)

    with client_for(sandbox, max_retries=1, timeout_s=0.3) as client:
        client.settings_get(phone_number_id=NUMBER_ID)

    assert len(sandbox.traffic.requests) == 2


def test_4xx_answers_are_never_retried(sandbox_thread):
    sandbox = sandbox_thread.sandbox

    with client_for(sandbox, max_retries=3) as client, pytest.raises(errors.InvalidParameter):
        client.call_terminate(phone_number_id=NUMBER_ID, call_id="wacid.unknown")

    assert len(sandbox.traffic.requests) == 1


def test_async_client_shares_the_operations(sandbox_thread):
    sandbox = sandbox_thread.sandbox

    async def look_up():
        async with AsyncGraphClient(base_url=sandbox.graph_url, token=TOKEN, max_retries=0) as client:
            return await client.call_permissions_get(phone_number_id=NUMBER_ID, user_wa_id="447700900300")

    state = asyncio.run(look_up())

    assert state.status == "no_permission"
    assert state.can("send_call_permission_request") is True


# --- Files customers send (WHATSAPP_API.md §10.3) ----------------------------------------------------


def customer_sends_photo(sandbox_thread) -> str:
    sandbox = sandbox_thread.sandbox
    customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900321", name="Ada")
    sandbox_thread.call(customer.send_photo, NUMBER_ID, caption="The broken part")
    sandbox_thread.run(sandbox.sender.drain)
    [delivery] = sandbox.sender.sent
    return delivery.payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"]


def test_a_file_is_found_by_its_media_id_and_downloaded_with_the_token(sandbox_thread):
    media_id = customer_sends_photo(sandbox_thread)
    sent = sandbox_thread.sandbox.meta.media[media_id]

    with client_for(sandbox_thread.sandbox) as client:
        location = client.media_location(media_id=media_id)
        downloaded = client.media_download(location.url, max_bytes=1_000_000)

    with downloaded.file:
        assert downloaded.file.read() == sent.content
    assert (location.mime_type, location.sha256, location.file_size) == (
        "image/png",
        sent.sha256,
        len(sent.content),
    )
    assert (downloaded.size, downloaded.content_type) == (len(sent.content), "image/png")


def test_a_file_link_without_the_token_is_refused(sandbox_thread):
    media_id = customer_sends_photo(sandbox_thread)
    with client_for(sandbox_thread.sandbox) as client:
        location = client.media_location(media_id=media_id)

    with (
        GraphClient(base_url=sandbox_thread.sandbox.graph_url, token="wrong") as stranger,
        pytest.raises(errors.InvalidAccessToken),
    ):
        stranger.media_download(location.url, max_bytes=1_000_000)


def test_a_file_larger_than_kept_is_not_read_past_the_cap(sandbox_thread):
    media_id = customer_sends_photo(sandbox_thread)

    with client_for(sandbox_thread.sandbox) as client:
        location = client.media_location(media_id=media_id)
        with pytest.raises(MediaTooLarge):
            client.media_download(location.url, max_bytes=location.file_size - 1)


@pytest.mark.parametrize("media_id", ["", "123/messages", "../7000001", "123?fields=x", "a" * 129])
def test_a_media_id_is_never_a_path(media_id):
    with pytest.raises(ValueError):
        media_url_request(media_id=media_id)


@pytest.mark.parametrize(
    ("body", "size"),
    [
        ({"url": "https://lookaside.fbsbx.com/x", "mime_type": "image/jpeg", "file_size": "303833"}, 303833),
        ({"url": "https://lookaside.fbsbx.com/x", "file_size": 303833}, 303833),
        ({"url": "https://lookaside.fbsbx.com/x", "file_size": "big"}, None),
    ],
)
def test_metas_answer_about_a_file_is_read_whichever_way_it_writes_the_size(body, size):
    assert parse_media_location(body).file_size == size


@pytest.mark.parametrize("body", [{}, {"url": "file:///etc/passwd"}, {"url": 7}, [], None])
def test_an_answer_about_a_file_without_a_web_link_is_refused(body):
    with pytest.raises(errors.GraphAPIError):
        parse_media_location(body)


# --- Read receipts and "typing…" (WHATSAPP_API.md §10.3) ---------------------------------------------


def test_read_receipt_and_typing_requests_match_meta_wire_format():
    read = read_receipt_request(phone_number_id="123", message_id="wamid.A")
    typing = read_receipt_request(phone_number_id="123", message_id="wamid.A", is_typing=True)

    assert (read.method, read.path) == ("POST", "123/messages")
    assert read.json == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A"}
    assert typing.json == {
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A",
        "typing_indicator": {"type": "text"},
    }  # fmt: skip


def test_the_customers_phone_shows_their_message_read_and_a_reply_being_typed(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900321", name="Ada")
    message_id = sandbox_thread.call(
        sandbox.meta.customer_send, customer, NUMBER_ID, {"type": "text", "text": {"body": "Hi"}}
    )

    with client_for(sandbox) as client:
        read = client.message_mark_read(phone_number_id=NUMBER_ID, message_id=message_id)
        typing = client.message_mark_read(phone_number_id=NUMBER_ID, message_id=message_id, is_typing=True)

    seen = [(r.message_id, r.phone_number_id, r.wa_id, r.is_typing) for r in sandbox.meta.read_receipts]
    assert (read, typing) == (None, None)  # Meta answered {"success": true}
    assert seen == [
        (message_id, NUMBER_ID, "447700900321", False),
        (message_id, NUMBER_ID, "447700900321", True),
    ]
    assert len(sandbox.meta.messages) == 0  # nothing was sent to the customer as a message


def test_a_read_receipt_for_a_message_the_number_never_received_is_refused(sandbox_thread):
    sandbox = sandbox_thread.sandbox
    sandbox_thread.call(
        sandbox.add_number,
        phone_number_id="7000002",
        waba_id="8000001",
        display_phone_number="+44 20 7946 0790",
    )
    customer = sandbox_thread.call(sandbox.add_customer, wa_id="447700900321", name="Ada")
    to_other = sandbox_thread.call(
        sandbox.meta.customer_send, customer, "7000002", {"type": "text", "text": {"body": "Hi"}}
    )

    with client_for(sandbox) as client:
        with pytest.raises(errors.InvalidParameter):
            client.message_mark_read(phone_number_id=NUMBER_ID, message_id="wamid.never")
        with pytest.raises(errors.InvalidParameter):
            client.message_mark_read(
                phone_number_id=NUMBER_ID, message_id=to_other, is_typing=True
            )  # another number's

    assert sandbox.meta.read_receipts == []


def test_the_onboarding_reads_are_built_for_graph_nodes_only():
    number = client_module.phone_number_request(phone_number_id="106540352242922")
    subscriptions = client_module.app_subscriptions_request(app_id="900000000000001", app_secret="s3")

    assert (number.method, number.path) == ("GET", "106540352242922")
    assert number.params["fields"].split(",")[:3] == ["display_phone_number", "verified_name", "name_status"]
    assert subscriptions.headers == {"Authorization": "Bearer 900000000000001|s3"}
    with pytest.raises(ValueError, match="is not a phone number id"):
        client_module.phone_number_request(phone_number_id="../me")
    with pytest.raises(ValueError, match="is not a WhatsApp Business Account id"):
        client_module.subscribed_apps_request(waba_id="")


def test_app_subscriptions_are_read_per_object_from_active_subscriptions_only():
    body = {
        "data": [
            {"object": "whatsapp_business_account", "active": True,
             "fields": [{"name": "messages", "version": "v23.0"}, "calls"]},
            {"object": "page", "active": False, "fields": [{"name": "feed"}]},
        ]
    }  # fmt: skip

    assert client_module.parse_app_subscriptions(body) == {"whatsapp_business_account": {"messages", "calls"}}
    with pytest.raises(errors.GraphAPIError):
        client_module.parse_app_subscriptions({"error": "no"})
