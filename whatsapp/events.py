"""Meta's webhook payloads parsed into typed events (shapes: WHATSAPP_API.md §1, §3.4, §6.4, §6.5,
§10.2, §10.3).

Parsing is all-or-nothing per item: every call or status inside a delivery becomes one complete
event or one `Problem`, never half an event. Unknown fields are kept in `raw` and otherwise
ignored; an unknown `field`, or a `calls` event of an unknown name, becomes an `UnsupportedChange`
so that it is still stored whole.

A customer's message is the exception: nothing a customer sends may be dropped (§10.3), so a
message of any type, known or not, whole or not, becomes a `MessageReceived` with what could be
read and `notes` saying what could not. Only an item that names no business number or no sender
(it could join no thread) is a `Problem`.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar


class MalformedDelivery(ValueError):
    """The body is not a WhatsApp Business Account webhook at all."""


class MalformedItem(ValueError):
    """One item inside a delivery lacks a required part or has one of the wrong type."""


@dataclass(frozen=True)
class Problem:
    where: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class MetaError:
    code: int
    title: str = ""
    message: str = ""
    href: str = ""
    details: str = ""


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = ""

    waba_id: str
    phone_number_id: str
    display_phone_number: str = ""
    occurred_at: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def idempotency_key(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class CallConnect(Event):
    """A call's media offer (user-initiated) or answer (business-initiated) from Meta."""

    kind: ClassVar[str] = "call.connect"
    call_id: str
    from_number: str
    to_number: str
    direction: str
    sdp_type: str
    sdp: str
    contact_name: str = ""
    biz_opaque_callback_data: str = ""
    deeplink_payload: str = ""
    cta_payload: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"call:{self.call_id}:connect"


@dataclass(frozen=True, kw_only=True)
class CallTerminate(Event):
    kind: ClassVar[str] = "call.terminate"
    call_id: str
    from_number: str
    to_number: str
    direction: str
    status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: int | None = None
    biz_opaque_callback_data: str = ""
    deeplink_payload: str = ""
    cta_payload: str = ""
    errors: tuple[MetaError, ...] = ()

    @property
    def was_answered(self) -> bool:
        return self.started_at is not None

    @property
    def idempotency_key(self) -> str:
        return f"call:{self.call_id}:terminate"


@dataclass(frozen=True, kw_only=True)
class CallStatus(Event):
    """RINGING, ACCEPTED or REJECTED for a business-initiated call."""

    kind: ClassVar[str] = "call.status"
    call_id: str
    status: str
    recipient_id: str
    biz_opaque_callback_data: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"call:{self.call_id}:status:{self.status}"


@dataclass(frozen=True, kw_only=True)
class Media:
    """A file a customer sent (image, voice note or other audio, video, document, sticker): Meta's id
    to fetch it by (`GET /<MEDIA_ID>`, WHATSAPP_API.md §10.3) and what Meta says of it."""

    media_id: str
    mime_type: str = ""
    sha256: str = ""
    caption: str = ""
    filename: str = ""
    is_voice: bool = False
    is_animated: bool = False


@dataclass(frozen=True, kw_only=True)
class CallSipCreated(Event):
    """A call attempt on a number that signals over SIP (WHATSAPP_API.md §10.4): Meta sends this
    instead of a connect, with no SDP. Shape: Meta's Calling API reference, "Call created webhook"
    (https://developers.facebook.com/documentation/business-messaging/whatsapp/calling/reference/)."""

    kind: ClassVar[str] = "call.sip_created"
    call_id: str
    from_number: str = ""
    to_number: str = ""
    direction: str = ""

    @property
    def idempotency_key(self) -> str:
        return f"call:{self.call_id}:sip_created"


@dataclass(frozen=True, kw_only=True)
class CallRecordingAvailable(Event):
    """Meta's own recording of a call is ready to download (kept by Meta for 7 days). Shape: Meta's
    "Call recording" page, "Recording-available webhook"
    (https://developers.facebook.com/documentation/business-messaging/whatsapp/calling/call-recording/)."""

    kind: ClassVar[str] = "call.recording_available"
    call_id: str
    from_number: str = ""
    media: Media | None = None

    @property
    def idempotency_key(self) -> str:
        return f"call:{self.call_id}:{self.kind}"


@dataclass(frozen=True, kw_only=True)
class CallTranscriptionAvailable(CallRecordingAvailable):
    """Meta's own transcript of a call (a JSON document) is ready to download. Shape: Meta's "Call
    transcription" page, "Transcription-available webhook"
    (https://developers.facebook.com/documentation/business-messaging/whatsapp/calling/call-transcription/)."""

    kind: ClassVar[str] = "call.transcription_available"


@dataclass(frozen=True, kw_only=True)
class MessageReceived(Event):
    """A customer's message of any type (WHATSAPP_API.md §10.3). `text` is what the thread shows:
    the text itself, a caption, a place, a contact card, a reaction, an order, Meta's reason for not
    showing it, or, for a type Switchboard does not know, the message as Meta sent it. `notes` say
    what could not be read. Without an `id` (Meta always sends one) the message is told apart from
    others by its content."""

    kind: ClassVar[str] = "message.received"
    message_id: str
    from_number: str
    message_type: str
    contact_name: str = ""
    text: str = ""
    button_reply_id: str = ""
    button_reply_title: str = ""
    context_message_id: str = ""
    context_from: str = ""
    referral: dict | None = None
    media: Media | None = None
    reacts_to: str = ""
    emoji: str = ""
    errors: tuple[MetaError, ...] = ()
    notes: tuple[str, ...] = ()
    marketing_preference: str = ""  # a system message's news: "stop" or "resume" (§10.2)

    @property
    def idempotency_key(self) -> str:
        if not self.message_id:
            return f"message:unidentified:{_digest(self.raw.get('item'))}"
        return f"message:{self.message_id}"


@dataclass(frozen=True, kw_only=True)
class CallPermissionReply(Event):
    """The customer's answer to a call permission request (or an automatic grant by calling in)."""

    kind: ClassVar[str] = "message.call_permission_reply"
    message_id: str
    from_number: str
    response: str
    contact_name: str = ""
    is_permanent: bool | None = None
    expires_at: datetime | None = None
    response_source: str = ""
    context_id: str = ""

    @property
    def is_accepted(self) -> bool:
        return self.response == "accept"

    @property
    def idempotency_key(self) -> str:
        return f"message:{self.message_id}"


@dataclass(frozen=True, kw_only=True)
class Pricing:
    billable: bool | None
    pricing_model: str
    pricing_type: str
    category: str


@dataclass(frozen=True, kw_only=True)
class MessageStatus(Event):
    kind: ClassVar[str] = "message.status"
    message_id: str
    status: str
    recipient_id: str
    pricing: Pricing | None = None
    errors: tuple[MetaError, ...] = ()

    @property
    def idempotency_key(self) -> str:
        return f"message:{self.message_id}:status:{self.status}"


@dataclass(frozen=True, kw_only=True)
class AccountSettingsUpdate(Event):
    """A change of a number's calling settings; `calling` has the shape of GET /settings."""

    kind: ClassVar[str] = "account.settings_update"
    calling: dict

    @property
    def idempotency_key(self) -> str:
        return f"settings:{self.phone_number_id}:{_timestamp_key(self.occurred_at)}:{_digest(self.calling)}"


@dataclass(frozen=True, kw_only=True)
class Restriction:
    restriction_type: str
    expires_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class AccountUpdate(Event):
    """Calling enforcement on the account: a violation warning or a restriction."""

    kind: ClassVar[str] = "account.update"
    event: str
    display_number: str = ""
    violation_type: str = ""
    restrictions: tuple[Restriction, ...] = ()

    @property
    def idempotency_key(self) -> str:
        return f"account:{self.waba_id}:{self.event}:{_timestamp_key(self.occurred_at)}:{_digest(self.raw)}"


@dataclass(frozen=True, kw_only=True)
class UserPreferenceChange(Event):
    """A customer stopped or resumed the business number's marketing messages ("Offers and
    announcements"): one item of the `user_preferences` field (WHATSAPP_API.md §10.2). `occurred_at`
    is Meta's time of the change, by which reordered deliveries are told apart."""

    kind: ClassVar[str] = "user.preference"
    wa_id: str
    category: str
    value: str
    detail: str = ""
    contact_name: str = ""

    @property
    def is_stop(self) -> bool:
        return self.value == "stop"

    @property
    def idempotency_key(self) -> str:
        moment = _timestamp_key(self.occurred_at)
        return f"preference:{self.phone_number_id}:{self.wa_id}:{self.category}:{self.value}:{moment}"


@dataclass(frozen=True, kw_only=True)
class UnsupportedChange(Event):
    """A change of a field Switchboard does not handle; stored so that it stays visible."""

    kind: ClassVar[str] = "unsupported"
    field_name: str

    @property
    def idempotency_key(self) -> str:
        return f"unsupported:{self.field_name}:{_digest(self.raw)}"


EVENT_KINDS: dict[str, type[Event]] = {
    event_class.kind: event_class
    for event_class in (
        CallConnect,
        CallTerminate,
        CallStatus,
        CallSipCreated,
        CallRecordingAvailable,
        CallTranscriptionAvailable,
        MessageReceived,
        CallPermissionReply,
        MessageStatus,
        AccountSettingsUpdate,
        AccountUpdate,
        UserPreferenceChange,
        UnsupportedChange,
    )
}

CALL_DIRECTIONS = frozenset({"USER_INITIATED", "BUSINESS_INITIATED"})
CALL_STATUSES = frozenset({"RINGING", "ACCEPTED", "REJECTED"})
CALL_EVENTS = frozenset({"connect", "terminate"})
SDP_TYPES = frozenset({"offer", "answer"})
MESSAGE_STATUSES = frozenset({"sent", "delivered", "read", "failed", "played"})
PERMISSION_RESPONSES = frozenset({"accept", "reject"})
PREFERENCE_CATEGORIES = frozenset({"marketing_messages"})
PREFERENCE_VALUES = frozenset({"stop", "resume"})


@dataclass
class ParsedDelivery:
    events: list[Event]
    problems: list[Problem]


# --- Parsing --------------------------------------------------------------------------------


def parse_delivery(payload: Any) -> ParsedDelivery:
    """Split a decoded webhook body into events and problems.

    Raises MalformedDelivery when the envelope itself is wrong (not an object, not a WhatsApp
    Business Account delivery, no entry list).
    """
    if not isinstance(payload, dict):
        raise MalformedDelivery("the body is not a JSON object")
    if payload.get("object") != "whatsapp_business_account":
        raise MalformedDelivery("'object' is not 'whatsapp_business_account'")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise MalformedDelivery("'entry' is not a list")
    parsed = ParsedDelivery(events=[], problems=[])
    for entry_index, entry in enumerate(entries):
        where = f"entry[{entry_index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            parsed.problems.append(Problem(where, "an entry must be an object with a 'changes' list"))
            continue
        waba_id = entry.get("id")
        if not isinstance(waba_id, str) or not waba_id:
            parsed.problems.append(Problem(where, "'id' (the WhatsApp Business Account id) is missing"))
            continue
        for change_index, change in enumerate(entry["changes"]):
            _parse_change(parsed, f"{where}.changes[{change_index}]", waba_id, change)
    return parsed


def event_from_context(context: dict) -> Event:
    """Rebuild a stored event from its `raw` context (for replaying a failed event)."""
    item_kind, item = context["item_kind"], context["item"]
    if item_kind in ("calls", "statuses", "messages", "user_preferences"):
        value = {key: context.get(key) for key in ("metadata", "contacts", "errors")}
    else:
        value = item
    parser = _ITEM_PARSERS.get((context["field"], item_kind), _parse_unsupported)
    return parser(context["field"], context["waba_id"], value, item)


def _parse_change(parsed: ParsedDelivery, where: str, waba_id: str, change: Any) -> None:
    if not isinstance(change, dict):
        parsed.problems.append(Problem(where, "a change must be an object"))
        return
    field_name, value = change.get("field"), change.get("value")
    if not isinstance(field_name, str) or not isinstance(value, dict):
        parsed.problems.append(Problem(where, "a change needs a string 'field' and an object 'value'"))
        return
    if field_name in ("calls", "messages"):
        item_lists = [("calls", "calls"), ("statuses", "statuses"), ("messages", "messages")]
        found = False
        for list_name, item_kind in item_lists:
            items = value.get(list_name)
            if items is None:
                continue
            found = True
            if not isinstance(items, list):
                parsed.problems.append(Problem(f"{where}.value.{list_name}", "must be a list"))
                continue
            for item_index, item in enumerate(items):
                _parse_one(
                    parsed,
                    f"{where}.value.{list_name}[{item_index}]",
                    field_name,
                    waba_id,
                    value,
                    item_kind,
                    item,
                )
        if not found:
            _parse_one(parsed, where, field_name, waba_id, value, "unsupported", value)
    elif field_name in ("account_settings_update", "account_update"):
        _parse_one(parsed, where, field_name, waba_id, value, field_name, value)
    elif field_name == "user_preferences":
        items = value.get("user_preferences")
        if not isinstance(items, list):
            parsed.problems.append(Problem(f"{where}.value.user_preferences", "must be a list"))
            return
        for item_index, item in enumerate(items):
            where_item = f"{where}.value.user_preferences[{item_index}]"
            _parse_one(parsed, where_item, field_name, waba_id, value, "user_preferences", item)
    else:
        _parse_one(parsed, where, field_name, waba_id, value, "unsupported", value)


def _parse_one(
    parsed: ParsedDelivery, where: str, field_name: str, waba_id: str, value: dict, item_kind: str, item: Any
) -> None:
    try:
        if not isinstance(item, dict):
            raise MalformedItem("must be an object")
        parser = _ITEM_PARSERS.get((field_name, item_kind), _parse_unsupported)
        event = parser(field_name, waba_id, value, item)
    except MalformedItem as problem:
        parsed.problems.append(Problem(where, str(problem)))
        return
    parsed.events.append(event)


def _context(field_name: str, waba_id: str, value: dict, item_kind: str, item: dict) -> dict:
    """The raw item with just enough of its envelope to parse it again on its own."""
    return {
        "field": field_name,
        "waba_id": waba_id,
        "item_kind": item_kind,
        "metadata": value.get("metadata"),
        "contacts": value.get("contacts"),
        "errors": value.get("errors"),
        "item": item,
    }


def _metadata(value: dict) -> tuple[str, str]:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        raise MalformedItem("'metadata' is missing")
    return _required_str(metadata, "phone_number_id"), _optional_str(metadata, "display_phone_number")


def _contact_name(value: dict, wa_id: str) -> str:
    contacts = value.get("contacts")
    if not isinstance(contacts, list):
        return ""
    for contact in contacts:
        if isinstance(contact, dict) and contact.get("wa_id") == wa_id:
            profile = contact.get("profile")
            if isinstance(profile, dict) and isinstance(profile.get("name"), str):
                return profile["name"]
    return ""


def _parse_call(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    phone_number_id, display = _metadata(value)
    call_event = item.get("event")
    if isinstance(call_event, str) and call_event and call_event not in CALL_EVENTS:
        return _parse_other_call_event(waba_id, value, item, phone_number_id, display)
    base = {
        "waba_id": waba_id,
        "phone_number_id": phone_number_id,
        "display_phone_number": display,
        "raw": _context("calls", waba_id, value, "calls", item),
        "occurred_at": _optional_time(item, "timestamp"),
        "call_id": _required_str(item, "id"),
        "from_number": _required_str(item, "from"),
        "to_number": _required_str(item, "to"),
        "direction": _required_choice(item, "direction", CALL_DIRECTIONS),
        "biz_opaque_callback_data": _optional_str(item, "biz_opaque_callback_data"),
        "deeplink_payload": _optional_str(item, "deeplink_payload"),
        "cta_payload": _optional_str(item, "cta_payload"),
    }
    call_event = _required_choice(item, "event", CALL_EVENTS)
    if call_event == "connect":
        session = item.get("session")
        if not isinstance(session, dict):
            # One Meta sample carries the SDP in connection.webrtc instead (WHATSAPP_API.md §1.6).
            connection = item.get("connection")
            webrtc = connection.get("webrtc") if isinstance(connection, dict) else None
            if not isinstance(webrtc, dict):
                raise MalformedItem("a connect event needs a 'session' with the SDP")
            expected = "offer" if base["direction"] == "USER_INITIATED" else "answer"
            session = {"sdp_type": webrtc.get("sdp_type", expected), "sdp": webrtc.get("sdp")}
        customer = base["from_number"] if base["direction"] == "USER_INITIATED" else base["to_number"]
        return CallConnect(
            **base,
            sdp_type=_required_choice(session, "sdp_type", SDP_TYPES),
            sdp=_required_str(session, "sdp"),
            contact_name=_contact_name(value, customer),
        )
    return CallTerminate(
        **base,
        status=_required_str(item, "status").upper(),
        started_at=_optional_time(item, "start_time"),
        ended_at=_optional_time(item, "end_time"),
        duration_s=_optional_int(item, "duration"),
        errors=_errors(value.get("errors")) + _errors(item.get("errors")),
    )


def _parse_other_call_event(
    waba_id: str, value: dict, item: dict, phone_number_id: str, display: str
) -> Event:
    """A `calls` item that is neither connect nor terminate: a SIP-side call event or Meta's recording
    or transcript of a call (WHATSAPP_API.md §10.4), or an event Switchboard does not know, kept whole."""
    base = {
        "waba_id": waba_id,
        "phone_number_id": phone_number_id,
        "display_phone_number": display,
        "raw": _context("calls", waba_id, value, "calls", item),
        "occurred_at": _optional_time(item, "timestamp"),
    }
    call_event = item["event"]
    if call_event == "call_created":
        return CallSipCreated(
            **base,
            call_id=_required_str(item, "id"),
            from_number=_optional_str(item, "from"),
            to_number=_optional_str(item, "to"),
            direction=_optional_str(item, "direction"),
        )
    # Meta's shapes: {"call_recording": {"type": "audio", "audio": {id, sha256, mime_type, url}}} and
    # {"call_transcript": {"document": {id, sha256, mime_type, url}}}.
    media_at = {
        "call_recording_available": (CallRecordingAvailable, "call_recording", "audio"),
        "call_transcription_available": (CallTranscriptionAvailable, "call_transcript", "document"),
    }
    if call_event in media_at:
        event_class, container_key, media_key = media_at[call_event]
        container = item.get(container_key)
        if not isinstance(container, dict) or not isinstance(container.get(media_key), dict):
            raise MalformedItem(f"'{container_key}.{media_key}' must be an object")
        media = container[media_key]
        return event_class(
            **base,
            call_id=_required_str(item, "id"),
            from_number=_optional_str(item, "from"),
            media=Media(
                media_id=_required_str(media, "id"),
                mime_type=_optional_str(media, "mime_type"),
                sha256=_optional_str(media, "sha256"),
            ),
        )
    return UnsupportedChange(
        waba_id=waba_id, phone_number_id=phone_number_id, raw=base["raw"], field_name="calls"
    )


def _parse_call_status(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    phone_number_id, display = _metadata(value)
    return CallStatus(
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        raw=_context("calls", waba_id, value, "statuses", item),
        occurred_at=_optional_time(item, "timestamp"),
        call_id=_required_str(item, "id"),
        status=_required_choice(item, "status", CALL_STATUSES),
        recipient_id=_optional_str(item, "recipient_id"),
        biz_opaque_callback_data=_optional_str(item, "biz_opaque_callback_data"),
    )


def _parse_message(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    phone_number_id, display = _metadata(value)
    notes = _Notes()
    from_number = notes.text(item, "from") or _only_contact(value)
    if not from_number:
        raise MalformedItem("a message needs 'from' (or one contact) to join a thread")
    message_type = notes.text(item, "type")
    if not message_type:
        notes.append("'type' is missing")
    context = item.get("context") if isinstance(item.get("context"), dict) else {}
    base = {
        "waba_id": waba_id,
        "phone_number_id": phone_number_id,
        "display_phone_number": display,
        "raw": _context("messages", waba_id, value, "messages", item),
        "occurred_at": notes.time(item, "timestamp"),
        "message_id": notes.text(item, "id"),
        "from_number": from_number,
        "contact_name": _contact_name(value, from_number),
    }
    interactive = item.get("interactive")
    if (
        message_type == "interactive"
        and isinstance(interactive, dict)
        and interactive.get("type") == "call_permission_reply"
        and base["message_id"]
    ):
        try:
            return _permission_reply(base, interactive, context)
        except MalformedItem as problem:  # kept as a message of the thread, with what was wrong
            notes.append(f"call permission reply: {problem}")
    parse_content = _MESSAGE_CONTENT.get(message_type, _unknown_content)
    content = parse_content(item, message_type, notes)
    if content.is_unread:
        content.text = _as_json(item)
    referral = item.get("referral")
    if referral is not None and not isinstance(referral, dict):
        notes.append("'referral' is not an object")
        referral = None
    return MessageReceived(
        **base,
        message_type=message_type or "unknown",
        text=content.text,
        button_reply_id=content.reply_id,
        button_reply_title=content.reply_title,
        context_message_id=notes.text(context, "id"),
        context_from=notes.text(context, "from"),
        referral=referral,
        media=content.media,
        reacts_to=content.reacts_to,
        emoji=content.emoji,
        errors=notes.errors(value.get("errors"), "errors") + notes.errors(item.get("errors"), "errors"),
        marketing_preference=_marketing_news(item, notes) if message_type == "system" else "",
        notes=tuple(notes),
    )


def _permission_reply(base: dict, interactive: dict, context: dict) -> CallPermissionReply:
    reply = interactive.get("call_permission_reply")
    if not isinstance(reply, dict):
        raise MalformedItem("'call_permission_reply' must be an object")
    return CallPermissionReply(
        **base,
        response=_required_choice(reply, "response", PERMISSION_RESPONSES),
        is_permanent=_optional_bool(reply, "is_permanent"),
        expires_at=_optional_time(reply, "expiration_timestamp"),
        response_source=_optional_str(reply, "response_source"),
        context_id=_optional_str(context, "id"),
    )


def _only_contact(value: dict) -> str:
    """The sender when `from` is missing: the one contact of the delivery, if there is one."""
    contacts = value.get("contacts")
    if isinstance(contacts, list) and len(contacts) == 1 and isinstance(contacts[0], dict):
        wa_id = contacts[0].get("wa_id")
        if isinstance(wa_id, str):
            return wa_id
    return ""


# --- A customer's message, type by type (WHATSAPP_API.md §6.4, §10.3) ------------------------


class _Notes(list):
    """What could not be read of a message, while reading what can be: each reader returns an empty
    value and notes why, instead of refusing the message."""

    def text(self, data: dict, key: str, where: str = "") -> str:
        value = data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.append(f"'{where}{key}' is not text")
            return ""
        return value

    def number(self, data: dict, key: str, where: str = "") -> int | float | None:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            if value is not None:
                self.append(f"'{where}{key}' is not a number")
            return None
        return value

    def flag(self, data: dict, key: str, where: str = "") -> bool:
        value = data.get(key)
        if value is not None and not isinstance(value, bool):
            self.append(f"'{where}{key}' is not true or false")
        return value is True

    def time(self, data: dict, key: str) -> datetime | None:
        try:
            return _optional_time(data, key)
        except MalformedItem as problem:
            self.append(str(problem))
            return None

    def errors(self, value: Any, where: str) -> tuple[MetaError, ...]:
        try:
            return _errors(value)
        except MalformedItem as problem:
            self.append(f"'{where}': {problem}")
            return ()

    def content(self, item: dict, message_type: str) -> dict | None:
        """The object named by the message's type (`"image": {...}`), or None, noted."""
        content = item.get(message_type)
        if isinstance(content, dict):
            return content
        self.append(
            f"'{message_type}' is missing" if content is None else f"'{message_type}' is not an object"
        )
        return None


@dataclass
class _Content:
    text: str = ""
    media: Media | None = None
    reacts_to: str = ""
    emoji: str = ""
    reply_id: str = ""
    reply_title: str = ""
    is_unread: bool = False  # nothing of it could be read: the thread shows it as Meta sent it


MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})
MAX_RAW_TEXT = 2000  # characters of a message shown as Meta sent it


def _text_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    text = notes.content(item, "text")
    if text is None:
        return _Content(is_unread=True)
    if "body" not in text:
        notes.append("'text.body' is missing")
    return _Content(text=notes.text(text, "body", "text."))


def _media_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    content = notes.content(item, message_type)
    if content is None:
        return _Content(is_unread=True)
    where = f"{message_type}."
    media_id = notes.text(content, "id", where)
    caption, filename = notes.text(content, "caption", where), notes.text(content, "filename", where)
    is_voice, is_animated = notes.flag(content, "voice", where), notes.flag(content, "animated", where)
    media = None
    if media_id:
        media = Media(
            media_id=media_id,
            mime_type=notes.text(content, "mime_type", where),
            sha256=notes.text(content, "sha256", where),
            caption=caption,
            filename=filename,
            is_voice=is_voice,
            is_animated=is_animated,
        )
    else:
        notes.append(f"'{where}id' is missing: the file cannot be fetched")
    if message_type == "document":
        text = " — ".join(part for part in (filename, caption) if part) or "Document"
    elif message_type == "audio":
        text = "Voice note" if is_voice else "Audio"
    elif message_type == "sticker":
        text = "Animated sticker" if is_animated else "Sticker"
    else:
        text = caption or {"image": "Photo", "video": "Video"}[message_type]
    return _Content(text=text, media=media)


def _location_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    location = notes.content(item, "location")
    if location is None:
        return _Content(is_unread=True)
    latitude = notes.number(location, "latitude", "location.")
    longitude = notes.number(location, "longitude", "location.")
    name, address = notes.text(location, "name", "location."), notes.text(location, "address", "location.")
    place = ", ".join(part for part in (name, address) if part)
    where = f"({latitude}, {longitude})" if latitude is not None and longitude is not None else ""
    if not (place or where):
        return _Content(is_unread=True)
    return _Content(text=" ".join(part for part in ("Location:", place, where) if part))


def _contacts_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    cards = item.get("contacts")
    if not isinstance(cards, list):
        notes.append("'contacts' is not a list")
        return _Content(is_unread=True)
    people = []
    for index, card in enumerate(cards):
        if not isinstance(card, dict):
            notes.append(f"'contacts[{index}]' is not an object")
            continue
        name = card.get("name") if isinstance(card.get("name"), dict) else {}
        full_name = notes.text(name, "formatted_name", f"contacts[{index}].name.") or " ".join(
            part
            for part in (notes.text(name, "first_name", "name."), notes.text(name, "last_name", "name."))
            if part
        )
        phones = card.get("phones") if isinstance(card.get("phones"), list) else []
        numbers = [
            notes.text(phone, "phone", "phones.") or notes.text(phone, "wa_id", "phones.")
            for phone in phones
            if isinstance(phone, dict)
        ]
        people.append(
            " ".join(part for part in (full_name, ", ".join(number for number in numbers if number)) if part)
        )
    people = [person for person in people if person]
    if not people:
        return _Content(is_unread=True)
    return _Content(text=f"Contact card{'s' if len(people) > 1 else ''}: {'; '.join(people)}")


def _reaction_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    reaction = notes.content(item, "reaction")
    if reaction is None:
        return _Content(is_unread=True)
    target, emoji = (
        notes.text(reaction, "message_id", "reaction."),
        notes.text(reaction, "emoji", "reaction."),
    )
    if not target:
        notes.append("'reaction.message_id' is missing: the message it reacts to is not known")
    on = f" to message {target}" if target else ""
    return _Content(
        text=f"Reacted {emoji}{on}" if emoji else f"Took back a reaction{on}", reacts_to=target, emoji=emoji
    )


def _interactive_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    interactive = notes.content(item, "interactive")
    if interactive is None:
        return _Content(is_unread=True)
    reply_type = notes.text(interactive, "type", "interactive.")
    if reply_type == "call_permission_reply":
        reply = interactive.get(reply_type) if isinstance(interactive.get(reply_type), dict) else {}
        response = reply.get("response")
        answer = {"accept": "Allowed calls", "reject": "Declined calls"}.get(
            response if isinstance(response, str) else "", "Answered"
        )
        return _Content(text=f"{answer} (call permission request)")
    if reply_type == "nfm_reply":
        return _form_reply_content(interactive, notes)
    if reply_type not in ("button_reply", "list_reply"):
        notes.append(f"Switchboard does not know interactive replies of type '{reply_type}'")
        return _Content(is_unread=True)
    reply = interactive.get(reply_type)
    if not isinstance(reply, dict):
        notes.append(f"'interactive.{reply_type}' is not an object")
        return _Content(is_unread=True)
    where = f"interactive.{reply_type}."
    reply_id, title = notes.text(reply, "id", where), notes.text(reply, "title", where)
    description = notes.text(reply, "description", where)
    text = " — ".join(part for part in (title, description) if part) or reply_id
    return _Content(text=text, reply_id=reply_id, reply_title=title)


def _form_reply_content(interactive: dict, notes: _Notes) -> _Content:
    """A customer's answers to a form (a WhatsApp Flow, or an address request): `nfm_reply` with the
    answers as a JSON string, e.g. {"name": "flow", "body": "Sent", "response_json": "{...}"} (pywa
    tests/data/updates/flow_completion.json at 0bcf2f19). The flow's token is ours, not theirs."""
    reply = notes.content(interactive, "nfm_reply")
    if reply is None:
        return _Content(is_unread=True)
    name = notes.text(reply, "name", "interactive.nfm_reply.")
    answers_text = notes.text(reply, "response_json", "interactive.nfm_reply.")
    try:
        answers = json.loads(answers_text) if answers_text else {}
    except ValueError:
        answers = None
    if isinstance(answers, dict):
        answers_text = "; ".join(f"{key}: {value}" for key, value in answers.items() if key != "flow_token")
    label = {"flow": "Form", "address_message": "Address"}.get(name, name or "Form")
    return _Content(text=f"{label} sent{f': {answers_text}' if answers_text else ''}")


def _button_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    button = notes.content(item, "button")
    if button is None:
        return _Content(is_unread=True)
    payload, text = notes.text(button, "payload", "button."), notes.text(button, "text", "button.")
    return _Content(text=text or payload, reply_id=payload, reply_title=text)


def _order_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    order = notes.content(item, "order")
    if order is None:
        return _Content(is_unread=True)
    catalog, text = notes.text(order, "catalog_id", "order."), notes.text(order, "text", "order.")
    products = order.get("product_items")
    if not isinstance(products, list):
        notes.append("'order.product_items' is not a list")
        products = []
    quantities = [notes.number(product, "quantity", "order.product_items.") for product in products
                  if isinstance(product, dict)]  # fmt: skip
    items = sum(int(quantity) for quantity in quantities if quantity is not None)
    summary = f"Order: {_count(len(products), 'product')}, {_count(items, 'item')}"
    if catalog:
        summary += f", catalog {catalog}"
    return _Content(text=f"{summary} — {text}" if text else summary)


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _system_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    system = notes.content(item, "system")
    if system is None:
        return _Content(is_unread=True)
    body, kind = notes.text(system, "body", "system."), notes.text(system, "type", "system.")
    if not (body or kind):
        return _Content(is_unread=True)
    return _Content(text=body or f"WhatsApp: {kind}")


def _marketing_news(item: dict, notes: _Notes) -> str:
    """A system message saying the customer stopped or resumed marketing messages: `system.type`
    `user_preference_changed` with `system.marketing` "stop" or "resume" (WHATSAPP_API.md §10.2).
    Sources: the system message's shape from pywa's fixture `tests/data/updates/system.json` and
    Meta's system messages reference; `marketing` holding "stop"/"resume" as a public PHP WhatsApp
    webhook integration reads it (`$message['system']['marketing']`): Meta's pages found do not show
    this type, so anything else is kept as a note, never guessed at."""
    system = item.get("system")
    if not isinstance(system, dict) or system.get("type") != "user_preference_changed":
        return ""
    value = system.get("marketing")
    if value in PREFERENCE_VALUES:
        return value
    notes.append("'system.marketing' is not 'stop' or 'resume': the preference is not applied")
    return ""


def _unsupported_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    errors = notes.errors(item.get("errors"), "errors")
    reasons = "; ".join(
        f"{error.title or error.message}{f' ({error.details})' if error.details else ''}" for error in errors
    )
    # Newer deliveries name the type Meta could not show: "unsupported": {"type": "pool"} (pywa
    # tests/data/updates/message.json "unsupported_with_type" at 0bcf2f19).
    unsupported = item.get("unsupported") if isinstance(item.get("unsupported"), dict) else {}
    shown_type = notes.text(unsupported, "type", "unsupported.")
    what = f"this message (of type '{shown_type}')" if shown_type else "this message"
    return _Content(text=f"WhatsApp could not show {what}{f': {reasons}' if reasons else ''}")


def _unknown_content(item: dict, message_type: str, notes: _Notes) -> _Content:
    if message_type:
        notes.append(f"Switchboard does not know messages of type '{message_type}': kept as Meta sent it")
    return _Content(is_unread=True)


_MESSAGE_CONTENT = {
    "text": _text_content,
    **dict.fromkeys(MEDIA_TYPES, _media_content),
    "location": _location_content,
    "contacts": _contacts_content,
    "reaction": _reaction_content,
    "interactive": _interactive_content,
    "button": _button_content,
    "order": _order_content,
    "system": _system_content,
    "unsupported": _unsupported_content,
}


def _as_json(item: dict) -> str:
    """A message as Meta sent it, less what every message carries, cut to a readable length."""
    shown = {key: value for key, value in item.items() if key not in ("from", "id", "timestamp")}
    text = json.dumps(shown, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= MAX_RAW_TEXT else text[: MAX_RAW_TEXT - 1] + "…"


def _parse_message_status(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    phone_number_id, display = _metadata(value)
    pricing = item.get("pricing")
    if pricing is not None:
        if not isinstance(pricing, dict):
            raise MalformedItem("'pricing' must be an object")
        pricing = Pricing(
            billable=_optional_bool(pricing, "billable"),
            pricing_model=_optional_str(pricing, "pricing_model"),
            pricing_type=_optional_str(pricing, "type"),
            category=_optional_str(pricing, "category"),
        )
    return MessageStatus(
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        raw=_context("messages", waba_id, value, "statuses", item),
        occurred_at=_optional_time(item, "timestamp"),
        message_id=_required_str(item, "id"),
        status=_required_choice(item, "status", MESSAGE_STATUSES),
        recipient_id=_optional_str(item, "recipient_id"),
        pricing=pricing,
        errors=_errors(item.get("errors")),
    )


def _parse_settings_update(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    settings = value.get("phone_number_settings")
    if not isinstance(settings, dict):
        raise MalformedItem("'phone_number_settings' is missing")
    calling = settings.get("calling")
    if not isinstance(calling, dict):
        raise MalformedItem("'phone_number_settings.calling' must be an object")
    return AccountSettingsUpdate(
        waba_id=waba_id,
        phone_number_id=_required_str(settings, "phone_number_id"),
        raw=_context("account_settings_update", waba_id, value, "account_settings_update", value),
        occurred_at=_optional_time(value, "timestamp"),
        calling=calling,
    )


def _parse_account_update(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    violation = value.get("violation_info")
    restrictions = value.get("restriction_info")
    if violation is not None and not isinstance(violation, dict):
        raise MalformedItem("'violation_info' must be an object")
    if restrictions is not None and not isinstance(restrictions, list):
        raise MalformedItem("'restriction_info' must be a list")
    parsed_restrictions = []
    for restriction in restrictions or []:
        if not isinstance(restriction, dict):
            raise MalformedItem("each 'restriction_info' entry must be an object")
        parsed_restrictions.append(
            Restriction(
                restriction_type=_required_str(restriction, "restriction_type"),
                expires_at=_optional_time(restriction, "expiration"),
            )
        )
    return AccountUpdate(
        waba_id=waba_id,
        phone_number_id=_optional_str(value, "phone_number_id"),
        raw=_context("account_update", waba_id, value, "account_update", value),
        occurred_at=_optional_time(value, "timestamp"),
        event=_required_str(value, "event"),
        display_number=_optional_str(value, "phone_number"),
        violation_type=_optional_str(violation or {}, "violation_type"),
        restrictions=tuple(parsed_restrictions),
    )


def _parse_user_preference(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    phone_number_id, display = _metadata(value)
    wa_id = _required_str(item, "wa_id")
    occurred_at = _optional_time(item, "timestamp")
    if occurred_at is None:
        raise MalformedItem("'timestamp' is missing: the change cannot be put in order")
    return UserPreferenceChange(
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display,
        raw=_context("user_preferences", waba_id, value, "user_preferences", item),
        occurred_at=occurred_at,
        wa_id=wa_id,
        category=_required_choice(item, "category", PREFERENCE_CATEGORIES),
        value=_required_choice(item, "value", PREFERENCE_VALUES),
        detail=_optional_str(item, "detail"),
        contact_name=_contact_name(value, wa_id),
    )


def _parse_unsupported(field_name: str, waba_id: str, value: dict, item: dict) -> Event:
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    return UnsupportedChange(
        waba_id=waba_id,
        phone_number_id=_optional_str(metadata, "phone_number_id"),
        raw=_context(field_name, waba_id, value, "unsupported", item),
        field_name=field_name,
    )


_ITEM_PARSERS = {
    ("calls", "calls"): _parse_call,
    ("calls", "statuses"): _parse_call_status,
    ("messages", "messages"): _parse_message,
    ("messages", "statuses"): _parse_message_status,
    ("account_settings_update", "account_settings_update"): _parse_settings_update,
    ("account_update", "account_update"): _parse_account_update,
    ("user_preferences", "user_preferences"): _parse_user_preference,
}


# --- Field helpers --------------------------------------------------------------------------


def _required_str(data: dict, key: str, *, allow_empty: bool = False) -> str:
    value = data.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise MalformedItem(f"'{key}' must be a non-empty string")
    return value


def _optional_str(data: dict, key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedItem(f"'{key}' must be a string")
    return value


def _required_choice(data: dict, key: str, choices: frozenset[str]) -> str:
    value = _required_str(data, key)
    if value not in choices:
        raise MalformedItem(f"'{key}' must be one of {', '.join(sorted(choices))}")
    return value


def _optional_bool(data: dict, key: str) -> bool | None:
    value = data.get(key)
    if value is not None and not isinstance(value, bool):
        raise MalformedItem(f"'{key}' must be true or false")
    return value


def _optional_int(data: dict, key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedItem(f"'{key}' must be a whole number")
    try:
        number = int(value)
    except ValueError:
        raise MalformedItem(f"'{key}' must be a whole number") from None
    if number < 0:
        raise MalformedItem(f"'{key}' must not be negative")
    return number


# Meta's times are UNIX seconds, sent as strings (or integers in some fields).
_EARLIEST = 0
_LATEST = 4102444800  # 2100-01-01: anything later is not a real event time


def _optional_time(data: dict, key: str) -> datetime | None:
    seconds = _optional_int(data, key)
    if seconds is None:
        return None
    if not _EARLIEST <= seconds <= _LATEST:
        raise MalformedItem(f"'{key}' is not a plausible UNIX time")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _errors(value: Any) -> tuple[MetaError, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedItem("'errors' must be a list")
    errors = []
    for error in value:
        if not isinstance(error, dict):
            raise MalformedItem("each error must be an object")
        code = _optional_int(error, "code")
        if code is None:
            raise MalformedItem("an error needs a 'code'")
        error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        errors.append(
            MetaError(
                code=code,
                title=_optional_str(error, "title"),
                message=_optional_str(error, "message"),
                href=_optional_str(error, "href"),
                details=_optional_str(error_data, "details"),
            )
        )
    return tuple(errors)


def _digest(data: Any) -> str:
    """A stable fingerprint of JSON data, the same after a round trip through the database."""
    canonical = json.dumps(_canonical_numbers(data), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _canonical_numbers(node: Any) -> Any:
    # PostgreSQL's jsonb writes numbers back in its own decimal spelling (1e16 comes back as
    # 10000000000000000, -0.0 as 0.0): compare numbers by their normalised decimal value.
    if isinstance(node, int | float) and not isinstance(node, bool):
        if node == 0:
            return "0"
        return str(Decimal(repr(node) if isinstance(node, float) else node).normalize())
    if isinstance(node, dict):
        return {key: _canonical_numbers(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_canonical_numbers(item) for item in node]
    return node


def _timestamp_key(moment: datetime | None) -> str:
    return str(int(moment.timestamp())) if moment else "-"
