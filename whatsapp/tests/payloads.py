"""Every webhook shape of WHATSAPP_API.md, as Meta sends it (numbers without '+', times as strings)."""

import json
import time

WABA_ID = "102290129340398"
PHONE_NUMBER_ID = "436666719526789"
BUSINESS = "13175551399"
CUSTOMER = "16315553602"
METADATA = {"display_phone_number": BUSINESS, "phone_number_id": PHONE_NUMBER_ID}
SDP_OFFER = (
    "v=0\r\no=- 7669997803033704573 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
)
SDP_ANSWER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


def envelope(field_name: str, value: dict, waba_id: str = WABA_ID) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": field_name, "value": value}]}],
    }


def calls_value(
    *,
    calls: list | None = None,
    statuses: list | None = None,
    errors: list | None = None,
    contacts: bool = True,
) -> dict:
    value: dict = {"messaging_product": "whatsapp", "metadata": METADATA}
    if contacts:
        value["contacts"] = [{"profile": {"name": "Jane"}, "wa_id": CUSTOMER}]
    if calls is not None:
        value["calls"] = calls
    if statuses is not None:
        value["statuses"] = statuses
    if errors is not None:
        value["errors"] = errors
    return value


def user_call_connect(call_id: str = "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh", **extra) -> dict:
    """A customer calling now (a connect timestamped in the past is a late delivery: pass `timestamp`)."""
    call = {
        "id": call_id,
        "to": BUSINESS,
        "from": CUSTOMER,
        "event": "connect",
        "timestamp": str(int(time.time())),
        "direction": "USER_INITIATED",
        "session": {"sdp_type": "offer", "sdp": SDP_OFFER},
        **extra,
    }
    return envelope("calls", calls_value(calls=[call]))


def business_call_connect(
    call_id: str = "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA", *, legacy_connection: bool = False
) -> dict:
    call = {
        "id": call_id,
        "to": CUSTOMER,
        "from": BUSINESS,
        "event": "connect",
        "timestamp": "1749196895",
        "direction": "BUSINESS_INITIATED",
        "biz_opaque_callback_data": "TRx334DUDFTI4Mj",
    }
    if legacy_connection:
        call["connection"] = {"webrtc": {"sdp": SDP_ANSWER}}
    else:
        call["session"] = {"sdp_type": "answer", "sdp": SDP_ANSWER}
    return envelope("calls", calls_value(calls=[call]))


def call_status(status: str, call_id: str = "wacid.HBgLMTIxODU1NTI4MjgVAgARGCAyODRQIAFRoA") -> dict:
    item = {
        "id": call_id,
        "type": "call",
        "status": status,
        "timestamp": "1671644830",
        "recipient_id": CUSTOMER,
        "biz_opaque_callback_data": "random_string",
    }
    return envelope("calls", calls_value(statuses=[item], contacts=False))


def call_terminate(
    call_id: str = "wacid.ABGGFjFVU2AfAgo6V-Hc5eCgK5Gh", *, answered: bool = True, failed: bool = False
) -> dict:
    call = {
        "id": call_id,
        "to": BUSINESS,
        "from": CUSTOMER,
        "event": "terminate",
        "direction": "USER_INITIATED",
        "timestamp": "1671644944",
        "status": "FAILED" if failed else "COMPLETED",
        "cta_payload": "support_v2",
    }
    if answered:
        call |= {"start_time": "1671644824", "end_time": "1671644944", "duration": 120}
    errors = None
    if failed:
        errors = [
            {
                "code": 138007,
                "message": "Connection timeout",
                "href": "https://developers.facebook.com/",
                "error_data": {"details": "SDP answer not applied in time"},
            }
        ]
    return envelope("calls", calls_value(calls=[call], errors=errors))


def sip_call_created(call_id: str = "wacid.SIP1", direction: str = "USER_INITIATED") -> dict:
    """A call on a number that signals over SIP (Meta's Calling API reference, "Call created webhook")."""
    caller, callee = (CUSTOMER, BUSINESS) if direction == "USER_INITIATED" else (BUSINESS, CUSTOMER)
    call = {
        "id": call_id,
        "to": callee,
        "from": caller,
        "event": "call_created",
        "timestamp": "1671644824",
        "direction": direction,
    }
    return envelope("calls", calls_value(calls=[call]))


def call_recording_available(call_id: str = "wacid.REC1") -> dict:
    """Meta's recording of a call is ready (Meta's "Call recording" page, "Recording-available webhook")."""
    audio = {
        "id": "1002764438271669",
        "sha256": MEDIA_SHA256,
        "mime_type": "audio/ogg; codecs=opus",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=133",
    }
    call = {
        "id": call_id,
        "from": CUSTOMER,
        "timestamp": "1728932177",
        "event": "call_recording_available",
        "call_recording": {"type": "audio", "audio": audio},
    }
    return envelope("calls", calls_value(calls=[call], contacts=False))


def call_transcription_available(call_id: str = "wacid.REC1") -> dict:
    """Meta's transcript of a call is ready (Meta's "Call transcription" page)."""
    document = {
        "id": "1002764438271670",
        "sha256": MEDIA_SHA256,
        "mime_type": "application/json",
        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=134",
    }
    call = {
        "id": call_id,
        "from": CUSTOMER,
        "timestamp": "1728932178",
        "event": "call_transcription_available",
        "call_transcript": {"document": document},
    }
    return envelope("calls", calls_value(calls=[call], contacts=False))


def unknown_call_event(call_id: str = "wacid.NEW1") -> dict:
    """A `calls` event Switchboard does not know (made up: none is published yet), to be kept whole."""
    call = {
        "id": call_id,
        "from": CUSTOMER,
        "timestamp": "1728932179",
        "event": "call_hologram_ready",
        "hologram": {"id": "42"},
    }
    return envelope("calls", calls_value(calls=[call], contacts=False))


def form_reply(message_id: str = "wamid.form1") -> dict:
    """A customer's answers to a WhatsApp Flow (pywa tests/data/updates/flow_completion.json)."""
    answers = json.dumps(
        {"comment_text": "Comment Text", "delivery_rating": "4", "flow_token": "AQAAAAACS5FpgQ_cAAAAAD0QI3s."}
    )
    message = {
        "context": {"from": BUSINESS, "id": "wamid.flow"},
        "from": CUSTOMER,
        "id": message_id,
        "timestamp": "1702502473",
        "type": "interactive",
        "interactive": {
            "type": "nfm_reply",
            "nfm_reply": {"response_json": answers, "body": "Sent", "name": "flow"},
        },
    }
    return envelope("messages", messages_value([message]))


def messages_value(messages: list) -> dict:
    return {
        "messaging_product": "whatsapp",
        "metadata": METADATA,
        "contacts": [{"profile": {"name": "Test Name"}, "wa_id": CUSTOMER}],
        "messages": messages,
    }


def text_message(message_id: str = "wamid.xyz", body: str = "Body Text", **extra) -> dict:
    message = {
        "from": CUSTOMER,
        "id": message_id,
        "timestamp": "1697043223",
        "type": "text",
        "text": {"body": body},
        **extra,
    }
    return envelope("messages", messages_value([message]))


def button_reply(message_id: str = "wamid.button1") -> dict:
    message = {
        "from": CUSTOMER,
        "id": message_id,
        "timestamp": "1697043300",
        "type": "interactive",
        "context": {"from": BUSINESS, "id": "wamid.question"},
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": "callback_yes", "title": "Yes, call me"},
        },
    }
    return envelope("messages", messages_value([message]))


def permission_reply(
    message_id: str = "wamid.sH0kFlaCGg0x",
    *,
    response: str = "accept",
    context_id: str = "wamid.request1",
    **reply,
) -> dict:
    body = {"response": response, **reply}
    message = {
        "from": CUSTOMER,
        "id": message_id,
        "timestamp": "1752582182",
        "type": "interactive",
        "context": {"from": "1122334455667", "id": context_id},
        "interactive": {"type": "call_permission_reply", "call_permission_reply": body},
    }
    return envelope("messages", messages_value([message]))


def referral_message(message_id: str = "wamid.ad1") -> dict:
    referral = {
        "source_url": "https://fb.me/2ZQ9k",
        "source_id": "120211",
        "source_type": "ad",
        "headline": "Spring sale",
        "body": "Talk to us",
        "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ",
    }
    return text_message(message_id, "Hi, I saw your ad", referral=referral)


def message_status(
    status: str,
    message_id: str = "wamid.out1",
    *,
    category: str = "marketing",
    pricing_type: str = "regular",
    errors: list | None = None,
) -> dict:
    item = {
        "id": message_id,
        "status": status,
        "timestamp": "1750263773",
        "recipient_id": CUSTOMER,
        "pricing": {
            "billable": pricing_type == "regular",
            "pricing_model": "PMP",
            "type": pricing_type,
            "category": category,
        },
    }
    if errors:
        item["errors"] = errors
    return envelope("messages", {"messaging_product": "whatsapp", "metadata": METADATA, "statuses": [item]})


def settings_update(
    timestamp: str = "1671644824", status: str = "ENABLED", calling: dict | None = None
) -> dict:
    if calling is None:
        calling = {
            "status": status,
            "call_icon_visibility": "DEFAULT",
            "callback_permission_status": "ENABLED",
        }
    value = {
        "messaging_product": "whatsapp",
        "timestamp": timestamp,
        "type": "phone_number_settings",
        "phone_number_settings": {"phone_number_id": PHONE_NUMBER_ID, "calling": calling},
    }
    return envelope("account_settings_update", value)


def account_violation(timestamp: str = "1754000000") -> dict:
    value = {
        "phone_number": BUSINESS,
        "timestamp": timestamp,
        "event": "ACCOUNT_VIOLATION",
        "violation_info": {"violation_type": "LOW_CALLING_QUALITY"},
    }
    return envelope("account_update", value)


def account_restriction(timestamp: str = "1754000100") -> dict:
    value = {
        "phone_number": BUSINESS,
        "timestamp": timestamp,
        "event": "ACCOUNT_RESTRICTION",
        "restriction_info": [
            {
                "restriction_type": "RESTRICTED_BIZ_INITIATED_AND_USER_INITIATED_CALLING",
                "expiration": 1754604800,
            }
        ],
    }
    return envelope("account_update", value)


def unknown_field() -> dict:
    return envelope(
        "message_template_status_update",
        {"event": "APPROVED", "message_template_id": 123, "message_template_name": "order_update"},
    )


def customer_message(message_type: str, content, message_id: str = "wamid.typed1", **extra) -> dict:
    """A customer's message of any type (WHATSAPP_API.md §6.4, §10.3): `content` under its type's key."""
    message = {"from": CUSTOMER, "id": message_id, "timestamp": "1697043379", "type": message_type}
    if content is not None:
        message[message_type] = content
    return envelope("messages", messages_value([message | extra]))


MEDIA_SHA256 = "m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI="
UNSUPPORTED_ERROR = {
    "code": 131051,
    "title": "Message type unknown",
    "message": "Message type unknown",
    "error_data": {"details": "Message type is currently not supported."},
}
# Every type a customer's message can have (WHATSAPP_API.md §10.3), as Meta sends it: (type, content,
# anything else the message carries).
EVERY_TYPE = {
    "text": ("text", {"body": "Body Text"}, {}),
    "image": (
        "image",
        {"caption": "The broken part", "mime_type": "image/jpeg", "sha256": MEDIA_SHA256, "id": "1029384756"},
        {},
    ),
    "voice note": (
        "audio",
        {"mime_type": "audio/ogg; codecs=opus", "sha256": MEDIA_SHA256, "id": "1029384757", "voice": True},
        {},
    ),
    "audio": (
        "audio",
        {"mime_type": "audio/mpeg", "sha256": MEDIA_SHA256, "id": "1029384758", "voice": False},
        {},
    ),
    "video": (
        "video",
        {"caption": "It rattles", "mime_type": "video/mp4", "sha256": MEDIA_SHA256, "id": "1029384759"},
        {},
    ),
    "document": (
        "document",
        {
            "caption": "My invoice",
            "filename": "invoice-1042.pdf",
            "mime_type": "application/pdf",
            "sha256": MEDIA_SHA256,
            "id": "1029384760",
        },
        {},
    ),
    "sticker": (
        "sticker",
        {"mime_type": "image/webp", "sha256": MEDIA_SHA256, "id": "1029384761", "animated": False},
        {},
    ),
    "location": (
        "location",
        {
            "latitude": 37.4611978,
            "longitude": -122.2164385,
            "name": "Facebook HQ",
            "address": "1 Hacker Way, Menlo Park, CA 94025",
            "url": "https://maps.google.com/?cid=2000000000000000000",
        },
        {},
    ),
    "contacts": (
        "contacts",
        [
            {
                "name": {"first_name": "Chandler", "last_name": "Bing", "formatted_name": "Chandler Bing"},
                "phones": [{"phone": "+1 555-555-5555", "wa_id": "15555555555", "type": "CELL"}],
            },
            {"name": {"first_name": "Monica", "formatted_name": "Monica"}, "phones": []},
        ],
        {},
    ),
    "button reply": (
        "interactive",
        {"type": "button_reply", "button_reply": {"id": "callback_yes", "title": "Yes, call me"}},
        {"context": {"from": BUSINESS, "id": "wamid.question"}},
    ),
    "list reply": (
        "interactive",
        {
            "type": "list_reply",
            "list_reply": {"id": "slot_2", "title": "Tomorrow", "description": "Between 9 and 12"},
        },
        {"context": {"from": BUSINESS, "id": "wamid.question"}},
    ),
    "call permission reply": (
        "interactive",
        {
            "type": "call_permission_reply",
            "call_permission_reply": {
                "response": "accept",
                "is_permanent": True,
                "response_source": "user_action",
            },
        },
        {"context": {"from": BUSINESS, "id": "wamid.request1"}},
    ),
    "template quick reply": (
        "button",
        {"payload": "stop_promotions", "text": "Stop promotions"},
        {"context": {"from": BUSINESS, "id": "wamid.template1"}},
    ),
    "reaction": ("reaction", {"message_id": "wamid.out1", "emoji": "\U0001f44d"}, {}),
    "reaction taken back": ("reaction", {"message_id": "wamid.out1"}, {}),
    "order": (
        "order",
        {
            "catalog_id": "354160437058781",
            "text": "Please deliver after 6",
            "product_items": [
                {"product_retailer_id": "FILTER", "quantity": 3, "item_price": 30, "currency": "EUR"},
                {"product_retailer_id": "HOSE", "quantity": 2, "item_price": 35, "currency": "EUR"},
            ],
        },
        {},
    ),
    "system": (
        "system",
        {
            "body": "User A changed from 16315553602 to 16315553699",
            "wa_id": "16315553699",
            "type": "user_changed_number",
        },
        {},
    ),
    "unsupported": ("unsupported", None, {"errors": [UNSUPPORTED_ERROR]}),
}


def every_type_message(name: str, message_id: str = "wamid.typed1") -> dict:
    message_type, content, extra = EVERY_TYPE[name]
    return customer_message(message_type, content, message_id, **extra)


def user_preference(value: str, timestamp: int, *, wa_id: str = CUSTOMER, **extra) -> dict:
    """A customer stopped or resumed marketing messages (WHATSAPP_API.md §10.2; Meta's reference
    sample: the timestamp an integer, `detail` in Meta's words)."""
    item = {
        "wa_id": wa_id,
        "detail": f"User requested to {value} marketing messages",
        "category": "marketing_messages",
        "value": value,
        "timestamp": timestamp,
        **extra,
    }
    value_ = {
        "messaging_product": "whatsapp",
        "metadata": METADATA,
        "contacts": [{"profile": {"name": "Jane"}, "wa_id": wa_id}],
        "user_preferences": [item],
    }
    return envelope("user_preferences", value_)


def preference_system_message(value: str, timestamp: int, message_id: str = "wamid.system1") -> dict:
    """The same news as a system message of the thread (no contacts array, as Meta's system
    messages come)."""
    system = {
        "body": f"User requested to {value} marketing messages",
        "type": "user_preference_changed",
        "marketing": value,
    }
    message = {"from": CUSTOMER, "id": message_id, "timestamp": str(timestamp), "type": "system",
               "system": system}  # fmt: skip
    value = {"messaging_product": "whatsapp", "metadata": METADATA, "messages": [message]}
    return envelope("messages", value)
