"""Meta's side of the Cloud API, in memory: numbers, customers, calls, permissions and their rules.

This module holds state and rules only; it performs no I/O. The HTTP server (`server.py`)
turns Graph API requests into calls of `SandboxMeta`'s methods, the simulated customers
(`customers.py`) act through it, and every webhook it decides to send goes to `emit`.
Rules and codes follow WHATSAPP_API.md (production values unless a setting says otherwise).
Everything runs on one asyncio loop, so no locks are needed.
"""

import base64
import hashlib
import hmac
import itertools
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import phonenumbers

from whatsapp.calling_settings import DAYS, calling_settings_problems, problems_text, time_zone_names

# Business numbers of these countries cannot place business-initiated calls (WHATSAPP_API.md §5.1).
BIC_UNAVAILABLE_COUNTRIES = frozenset({"US", "CA", "TR", "EG", "VN", "NG"})
# A number as the sandbox starts it: calling on, the call icon shown, no callback permission.
ENABLED_CALLING_SETTINGS = {
    "status": "ENABLED",
    "call_icon_visibility": "DEFAULT",
    "callback_permission_status": "DISABLED",
}
# The app the sandbox's webhooks come from, and the fields it subscribes to (Meta's app dashboard,
# "Webhooks": `GET /<APP_ID>/subscriptions`). A number's side of it is `SandboxNumber.profile`.
SANDBOX_APP_ID = "900000000000001"
APP_WEBHOOK_FIELDS = ("messages", "calls", "account_settings_update", "account_update", "user_preferences")
# A number as Meta shows it to `GET /<PHONE_NUMBER_ID>?fields=…` (client.PHONE_NUMBER_FIELDS): an
# approved name on the Cloud API, enough messaging limit for calling (WHATSAPP_API.md §5.1).
NUMBER_PROFILE = {
    "verified_name": "Sandbox Business",
    "name_status": "APPROVED",
    "quality_rating": "GREEN",
    "messaging_limit_tier": "TIER_2K",
    "is_official_business_account": False,
    "platform_type": "CLOUD_API",
    "is_on_biz_app": False,
    "code_verification_status": "VERIFIED",
    "throughput": {"level": "STANDARD"},
}


class SandboxError(Exception):
    """An error answer in the Graph API shape."""

    def __init__(
        self, code: int, message: str, *, http_status: int = 400, details: str = "", data: dict | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.details = details
        self.data = data or {}

    def body(self) -> dict:
        error_data = {"messaging_product": "whatsapp", "details": self.details or self.message, **self.data}
        return {
            "error": {
                "message": self.message,
                "type": "OAuthException",
                "code": self.code,
                "error_data": error_data,
                "fbtrace_id": secrets.token_urlsafe(12),
            }
        }


def invalid(details: str) -> SandboxError:
    return SandboxError(100, "(#100) Invalid parameter", details=details)


@dataclass
class Rules:
    """Meta's limits. Production values by default (WHATSAPP_API.md §3.6, §5.1)."""

    max_concurrent_calls: int = 1000
    connected_calls_per_24h: int = 100
    permission_requests: tuple[tuple[timedelta, int], ...] = (
        (timedelta(hours=24), 1),
        (timedelta(days=7), 2),
    )
    consecutive_unanswered_to_revoke: int = 4
    temporary_permission: timedelta = timedelta(days=7)
    unanswered_user_call_timeout_s: float = 45.0
    business_call_ring_timeout_s: float = 30.0
    customer_service_window: timedelta = timedelta(hours=24)
    free_entry_point_window: timedelta = timedelta(hours=72)
    free_entry_point_answer_within: timedelta = timedelta(hours=24)  # of the customer's message from an ad
    call_permission_lookups_per_second: int = 5
    media_url_lifetime: timedelta = timedelta(minutes=5)  # "a short-lived URL" (WHATSAPP_API.md §10.3)
    messages_per_second: int = 80  # a number's messaging throughput, by default (§10.1): then 130429


@dataclass
class SandboxNumber:
    phone_number_id: str
    waba_id: str
    digits: str
    calling: dict = field(default_factory=lambda: {"status": "DISABLED", "call_icon_visibility": "DEFAULT"})
    restrictions: list = field(default_factory=list)
    profile: dict = field(default_factory=lambda: dict(NUMBER_PROFILE))

    @property
    def country(self) -> str:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + self.digits))

    @property
    def is_calling_enabled(self) -> bool:
        return self.calling.get("status") == "ENABLED"


class Customer(Protocol):
    """What the rules need from a simulated customer (see customers.py)."""

    wa_id: str
    name: str
    is_on_whatsapp: bool
    supports_call_buttons: bool
    supports_permission_requests: bool

    def on_business_call(self, call: "SandboxCall") -> None: ...
    def on_call_answered(self, call: "SandboxCall") -> None: ...
    def on_call_ended(self, call: "SandboxCall") -> None: ...
    def on_message(self, message: "SentMessage") -> None: ...


@dataclass
class SandboxCall:
    call_id: str
    phone_number_id: str
    wa_id: str
    direction: str  # USER_INITIATED | BUSINESS_INITIATED
    state: str  # RINGING_IN, PRE_ACCEPTED, DIALING, RINGING, ACCEPTED, ENDED
    created_at: datetime
    offer_sdp: str = ""
    pre_accept_sdp: str = ""
    answer_sdp: str = ""
    accepted_at: datetime | None = None
    ended_at: datetime | None = None
    end_status: str = ""
    biz_opaque_callback_data: str = ""
    cta_payload: str = ""
    deeplink_payload: str = ""

    @property
    def is_live(self) -> bool:
        return self.state != "ENDED"


@dataclass
class Permission:
    status: str = "no_permission"  # no_permission | temporary | permanent
    expires_at: datetime | None = None
    consecutive_unanswered: int = 0
    requests: deque = field(default_factory=deque)  # times of permission requests sent
    connected_calls: deque = field(default_factory=deque)  # times of connected business calls


@dataclass
class SentMessage:
    message_id: str
    phone_number_id: str
    wa_id: str
    message_type: str
    body: dict
    category: str
    pricing_type: str
    sent_at: datetime


@dataclass
class ReadReceipt:
    """What the customer's phone showed of the business reading their message: blue ticks on it,
    and with `is_typing` "typing…" as well."""

    message_id: str
    phone_number_id: str
    wa_id: str
    is_typing: bool
    at: datetime


@dataclass
class SandboxMedia:
    """A file a customer sent, kept by Meta under its media id."""

    media_id: str
    content: bytes
    mime_type: str

    @property
    def sha256(self) -> str:
        return base64.b64encode(hashlib.sha256(self.content).digest()).decode()


class MediaUnavailable(LookupError):
    """A media download URL that is unknown, forged or expired: answered 404."""


MEDIA_DOWNLOAD_PATH = "/whatsapp_business/attachments/"
MEDIA_CAPTIONED = frozenset({"image", "video", "document"})


Emit = Callable[[str, str, dict], None]  # (waba_id, field, value)

# The sandbox keeps the newest of each kind of record it makes (calls, messages sent, customers' message
# ids, read receipts; the webhooks it delivered and the requests it answered): a demo or a load test runs
# for hours, and the sandbox's memory must not grow with it. A live call is never dropped. Files that
# customers sent are kept fewer, being larger.
HISTORY = 10_000
MEDIA_HISTORY = 500


def keep_newest(
    records: dict | list, *, limit: int | None = None, is_kept: Callable[[Any], bool] | None = None
):
    """Drop the oldest of ``records`` (a dict, oldest added first, or a list) beyond ``limit`` (HISTORY),
    once they are a quarter over it, so that each record added costs little; a dict's value that
    ``is_kept`` says to keep stays whatever its age."""
    limit = HISTORY if limit is None else limit
    if len(records) <= limit + limit // 4:
        return
    excess = len(records) - limit
    if isinstance(records, list):
        del records[:excess]
        return
    dropped = (key for key, value in records.items() if is_kept is None or not is_kept(value))
    for key in list(itertools.islice(dropped, excess)):
        del records[key]


class SandboxMeta:
    def __init__(self, *, rules: Rules | None = None, emit: Emit | None = None) -> None:
        self.rules = rules or Rules()
        self.emit: Emit = emit or (lambda waba_id, field_name, value: None)
        self.numbers: dict[str, SandboxNumber] = {}
        self.customers: dict[str, Customer] = {}
        self.calls: dict[str, SandboxCall] = {}
        self.permissions: dict[tuple[str, str], Permission] = defaultdict(Permission)
        self.messages: dict[str, SentMessage] = {}
        self.templates: dict[str, dict] = {}  # name → {"category", "permission_request", and as listed}
        self.windows: dict[tuple[str, str], datetime] = {}  # customer-service window opened at
        self.referrals: dict[tuple[str, str], datetime] = {}  # the customer last wrote from an ad at
        self.entry_points: dict[tuple[str, str], datetime] = {}  # free entry point window opened at
        self.permission_lookups: dict[str, deque] = defaultdict(deque)
        self.media: dict[str, SandboxMedia] = {}
        self.received: dict[str, tuple[str, str]] = {}  # customers' message id → (phone number id, wa_id)
        self.read_receipts: list[ReadReceipt] = []
        # (phone number id, wa_id) of customers who stopped the number's marketing messages (§10.2)
        self.marketing_stopped: set[tuple[str, str]] = set()
        self._media_url_key = secrets.token_bytes(16)
        self.clock_offset = timedelta()
        self._ids = itertools.count(1)
        self.app_id = SANDBOX_APP_ID
        self.app_fields: set[str] = set(APP_WEBHOOK_FIELDS)  # of the whatsapp_business_account object
        self.unsubscribed_wabas: set[str] = set()  # accounts the app is not subscribed to
        self.sends: dict[str, deque] = defaultdict(deque)  # a number's sends of the last second (§10.1)

    # --- Clock and ids ----------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def new_id(self, prefix: str) -> str:
        return f"{prefix}.SBX{next(self._ids):06d}{secrets.token_hex(6).upper()}"

    # --- Setup ------------------------------------------------------------------------------

    def add_number(
        self, *, phone_number_id: str, waba_id: str, display_phone_number: str, calling_enabled: bool = True
    ) -> SandboxNumber:
        digits = "".join(character for character in display_phone_number if character.isdigit())
        number = SandboxNumber(phone_number_id=phone_number_id, waba_id=waba_id, digits=digits)
        if calling_enabled:
            number.calling = dict(ENABLED_CALLING_SETTINGS)
        self.numbers[phone_number_id] = number
        return number

    def add_customer(self, customer: Customer) -> None:
        self.customers[customer.wa_id] = customer

    def number(self, phone_number_id: str) -> SandboxNumber:
        number = self.numbers.get(phone_number_id)
        if number is None:
            raise SandboxError(
                100, "(#100) Invalid parameter", details=f"Unknown phone number id {phone_number_id}"
            )
        return number

    # --- The number's account, as the onboarding page reads it -----------------------------

    def number_profile_set(self, phone_number_id: str, **changes: Any) -> None:
        """Sandbox control: change what Meta says of a number (NUMBER_PROFILE's keys), e.g.
        `messaging_limit_tier="TIER_1K"` or `is_on_biz_app=True`."""
        number = self.number(phone_number_id)
        unknown = set(changes) - set(NUMBER_PROFILE)
        if unknown:
            raise ValueError(f"not a phone number field: {', '.join(sorted(unknown))}")
        number.profile.update(changes)

    def app_webhook_fields_set(self, fields: Any) -> None:
        """Sandbox control: the fields the app subscribes to (leave out "calls" to stop calls)."""
        self.app_fields = set(fields)

    def phone_number_get(self, phone_number_id: str, fields: str | None) -> dict:
        number = self.number(phone_number_id)
        known = {"display_phone_number": "+" + number.digits, **number.profile}
        asked = [name for name in (fields or "").split(",") if name] or [
            "display_phone_number",
            "verified_name",
        ]
        for name in asked:
            if name not in known:
                raise invalid(
                    f"Tried accessing nonexisting field ({name}) on node type (WhatsAppBusinessPhoneNumber)"
                )
        return {**{name: known[name] for name in asked}, "id": phone_number_id}

    def subscribed_apps_get(self, waba_id: str) -> dict:
        if not any(number.waba_id == waba_id for number in self.numbers.values()):
            raise invalid(f"Unknown WhatsApp Business Account id {waba_id}")
        apps = []
        if waba_id not in self.unsubscribed_wabas:
            apps.append(
                {"whatsapp_business_api_data": {"id": self.app_id, "link": "", "name": "Switchboard"}}
            )
        return {"data": apps}

    def app_subscriptions_get(self, app_id: str) -> dict:
        if app_id != self.app_id:
            raise invalid(f"Unknown app id {app_id}")
        fields = [{"name": name, "version": "v23.0"} for name in sorted(self.app_fields)]
        return {
            "data": [
                {"object": "whatsapp_business_account", "callback_url": "", "active": True, "fields": fields}
            ]
        }

    def permission(self, phone_number_id: str, wa_id: str) -> Permission:
        permission = self.permissions[(phone_number_id, wa_id)]
        if permission.status == "temporary" and permission.expires_at and permission.expires_at <= self.now():
            permission.status, permission.expires_at = "no_permission", None
        return permission

    # --- Webhook payloads -------------------------------------------------------------------

    def _value(self, number: SandboxNumber, *, contact: Customer | None = None, **lists: Any) -> dict:
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": number.digits, "phone_number_id": number.phone_number_id},
        }
        if contact is not None:
            value["contacts"] = [{"profile": {"name": contact.name}, "wa_id": contact.wa_id}]
        value.update(lists)
        return value

    def _call_item(self, call: SandboxCall, event: str) -> dict:
        number = self.numbers[call.phone_number_id]
        business, customer = number.digits, call.wa_id
        inbound = call.direction == "USER_INITIATED"
        item: dict[str, Any] = {
            "id": call.call_id,
            "to": business if inbound else customer,
            "from": customer if inbound else business,
            "event": event,
            "timestamp": str(int(self.now().timestamp())),
            "direction": call.direction,
        }
        for key in ("biz_opaque_callback_data", "cta_payload", "deeplink_payload"):
            if getattr(call, key):
                item[key] = getattr(call, key)
        return item

    def _emit_call(
        self, call: SandboxCall, item: dict, errors: list | None = None, with_contact: bool = False
    ) -> None:
        number = self.numbers[call.phone_number_id]
        contact = self.customers.get(call.wa_id) if with_contact else None
        extra = {"errors": errors} if errors else {}
        self.emit(number.waba_id, "calls", self._value(number, contact=contact, calls=[item], **extra))

    def _emit_call_status(self, call: SandboxCall, status: str) -> None:
        number = self.numbers[call.phone_number_id]
        item = {
            "id": call.call_id,
            "type": "call",
            "status": status,
            "timestamp": str(int(self.now().timestamp())),
            "recipient_id": call.wa_id,
        }
        if call.biz_opaque_callback_data:
            item["biz_opaque_callback_data"] = call.biz_opaque_callback_data
        self.emit(number.waba_id, "calls", self._value(number, statuses=[item]))

    def _emit_message(self, number: SandboxNumber, customer: Customer, message: dict) -> None:
        self.received[message["id"]] = (number.phone_number_id, customer.wa_id)
        keep_newest(self.received)
        self.emit(number.waba_id, "messages", self._value(number, contact=customer, messages=[message]))

    def _emit_terminate(self, call: SandboxCall, *, errors: list | None = None) -> None:
        item = self._call_item(call, "terminate")
        item["status"] = call.end_status
        if call.accepted_at and call.ended_at:
            item["start_time"] = str(int(call.accepted_at.timestamp()))
            item["end_time"] = str(int(call.ended_at.timestamp()))
            item["duration"] = max(0, round((call.ended_at - call.accepted_at).total_seconds()))
        self._emit_call(call, item, errors=errors)

    # --- Calls: the business's Graph API actions ----------------------------------------------

    def calls_action(self, phone_number_id: str, body: Any) -> dict:
        number = self.number(phone_number_id)
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise invalid("messaging_product must be 'whatsapp'")
        action = body.get("action")
        if action == "connect":
            return self._connect(number, body)
        if action not in ("pre_accept", "accept", "reject", "terminate"):
            raise invalid("action must be one of connect, pre_accept, accept, reject, terminate")
        call = self.calls.get(body.get("call_id")) if isinstance(body.get("call_id"), str) else None
        if call is None or call.phone_number_id != phone_number_id:
            raise invalid("Invalid call id")
        if action == "terminate":
            self._terminate_by_business(call)
        elif call.direction != "USER_INITIATED":
            raise invalid(f"{action} applies to user-initiated calls only")
        elif action == "reject":
            self._reject(call)
        else:
            self._accept(call, action, body)
        return {"messaging_product": "whatsapp", "success": True}

    def _connect(self, number: SandboxNumber, body: dict) -> dict:
        if not number.is_calling_enabled:
            raise SandboxError(138000, "Calling is not enabled for this phone number")
        if number.country in BIC_UNAVAILABLE_COUNTRIES:
            raise SandboxError(
                138000,
                "Business-initiated calling is not available",
                details=f"Business numbers of country {number.country} cannot start calls",
            )
        if any(
            restriction.get("type", "").startswith("RESTRICTED_BIZ") for restriction in number.restrictions
        ):
            raise SandboxError(138000, "Calling is restricted for this phone number")
        wa_id = body.get("to") or body.get("recipient")
        if not isinstance(wa_id, str) or not wa_id:
            raise invalid("'to' is required")
        session = body.get("session")
        if not isinstance(session, dict) or session.get("sdp_type") != "offer":
            raise invalid("session.sdp_type must be 'offer' for connect")
        sdp = validated_sdp(session.get("sdp"))
        opaque = body.get("biz_opaque_callback_data", "")
        if not isinstance(opaque, str) or len(opaque) > 512:
            raise invalid("biz_opaque_callback_data must be a string of at most 512 characters")
        customer = self.customers.get(wa_id)
        if customer is None or not customer.is_on_whatsapp:
            raise SandboxError(138001, "Receiver is uncallable")
        permission = self.permission(number.phone_number_id, wa_id)
        if permission.status == "no_permission":
            raise SandboxError(138006, "No approved call permission from the recipient")
        if any(
            call.is_live and call.wa_id == wa_id and call.phone_number_id == number.phone_number_id
            for call in self.calls.values()
        ):
            raise SandboxError(138003, "Duplicate call: a call with this user is already ongoing")
        if self.live_calls(number.phone_number_id, "BUSINESS_INITIATED") >= self.rules.max_concurrent_calls:
            raise SandboxError(138002, "Concurrent calls limit reached")
        recent = _within(permission.connected_calls, self.now() - timedelta(hours=24))
        if len(recent) >= self.rules.connected_calls_per_24h:
            next_allowed = recent[0] + timedelta(hours=24)
            raise SandboxError(
                138012,
                "Business-initiated call limit reached",
                details=f"Next call allowed at {int(next_allowed.timestamp())}",
                data={"next_call_allowed_at": int(next_allowed.timestamp())},
            )
        call = SandboxCall(
            call_id=self.new_id("wacid"),
            phone_number_id=number.phone_number_id,
            wa_id=wa_id,
            direction="BUSINESS_INITIATED",
            state="DIALING",
            created_at=self.now(),
            offer_sdp=sdp,
            biz_opaque_callback_data=opaque,
        )
        self.calls[call.call_id] = call
        keep_newest(self.calls, is_kept=lambda kept: kept.is_live)
        customer.on_business_call(call)
        return {"messaging_product": "whatsapp", "calls": [{"id": call.call_id}]}

    def _accept(self, call: SandboxCall, action: str, body: dict) -> None:
        if call.state not in ("RINGING_IN", "PRE_ACCEPTED"):
            raise invalid(
                f"Cannot {action}: the call is {'over' if call.state == 'ENDED' else 'already in progress'}"
            )
        session = body.get("session")
        if not isinstance(session, dict) or session.get("sdp_type") != "answer":
            raise invalid("session.sdp_type must be 'answer'")
        sdp = validated_sdp(session.get("sdp"))
        if action == "pre_accept":
            if call.state == "PRE_ACCEPTED":
                raise invalid("The call is already pre-accepted")
            call.pre_accept_sdp, call.state = sdp, "PRE_ACCEPTED"
            return
        if call.state == "PRE_ACCEPTED" and sdp != call.pre_accept_sdp:
            raise invalid("The accept SDP answer must equal the pre_accept SDP answer")
        opaque = body.get("biz_opaque_callback_data", "")
        if not isinstance(opaque, str) or len(opaque) > 512:
            raise invalid("biz_opaque_callback_data must be a string of at most 512 characters")
        call.answer_sdp, call.state, call.accepted_at = sdp, "ACCEPTED", self.now()
        call.biz_opaque_callback_data = opaque or call.biz_opaque_callback_data
        self._connected(call)
        customer = self.customers.get(call.wa_id)
        if customer is not None:
            customer.on_call_answered(call)

    def _reject(self, call: SandboxCall) -> None:
        if call.state not in ("RINGING_IN", "PRE_ACCEPTED"):
            raise invalid("Cannot reject: the call is over or already in progress")
        self._end(call, "FAILED")

    def _terminate_by_business(self, call: SandboxCall) -> None:
        if not call.is_live:
            raise invalid("The call has already ended")
        if call.direction == "BUSINESS_INITIATED" and call.state in ("DIALING", "RINGING"):
            self._strike(call)
        self._end(call, "COMPLETED" if call.accepted_at else "FAILED")

    def _end(
        self, call: SandboxCall, status: str, *, errors: list | None = None, notify_customer: bool = True
    ) -> None:
        call.state, call.end_status, call.ended_at = "ENDED", status, self.now()
        self._emit_terminate(call, errors=errors)
        customer = self.customers.get(call.wa_id)
        if notify_customer and customer is not None:
            customer.on_call_ended(call)

    def _connected(self, call: SandboxCall) -> None:
        """A connected call between the pair resets the permission-request limits (§3.6)."""
        permission = self.permission(call.phone_number_id, call.wa_id)
        permission.requests.clear()
        self.windows[(call.phone_number_id, call.wa_id)] = self.now()
        if call.direction == "BUSINESS_INITIATED":
            permission.connected_calls.append(self.now())
            permission.consecutive_unanswered = 0

    def _strike(self, call: SandboxCall) -> None:
        """An unanswered or rejected business call; the 4th in a row revokes the permission."""
        permission = self.permission(call.phone_number_id, call.wa_id)
        permission.consecutive_unanswered += 1
        if permission.consecutive_unanswered >= self.rules.consecutive_unanswered_to_revoke:
            permission.status, permission.expires_at = "no_permission", None

    def live_calls(self, phone_number_id: str, direction: str) -> int:
        return sum(
            1
            for call in self.calls.values()
            if call.is_live and call.phone_number_id == phone_number_id and call.direction == direction
        )

    # --- Calls: what customers do -----------------------------------------------------------

    def customer_call_business(
        self,
        customer: Customer,
        phone_number_id: str,
        *,
        sdp: str,
        cta_payload: str = "",
        deeplink_payload: str = "",
    ) -> SandboxCall | None:
        """A customer taps Call. Returns None when WhatsApp would not place the call (no webhook)."""
        number = self.number(phone_number_id)
        if not number.is_calling_enabled or not self.within_call_hours(number):
            return None
        if self.live_calls(phone_number_id, "USER_INITIATED") >= self.rules.max_concurrent_calls:
            return None  # Meta shows the caller a generic error and sends no webhook (§5.1)
        call = SandboxCall(
            call_id=self.new_id("wacid"),
            phone_number_id=phone_number_id,
            wa_id=customer.wa_id,
            direction="USER_INITIATED",
            state="RINGING_IN",
            created_at=self.now(),
            offer_sdp=validated_sdp(sdp),
            cta_payload=cta_payload,
            deeplink_payload=deeplink_payload,
        )
        self.calls[call.call_id] = call
        keep_newest(self.calls, is_kept=lambda kept: kept.is_live)
        self.windows[(phone_number_id, customer.wa_id)] = self.now()
        item = self._call_item(call, "connect")
        item["session"] = {"sdp_type": "offer", "sdp": call.offer_sdp}
        self._emit_call(call, item, with_contact=True)
        return call

    def customer_hang_up(self, call: SandboxCall) -> None:
        if not call.is_live:
            return
        if call.direction == "BUSINESS_INITIATED" and not call.accepted_at:
            self._strike(call)
        self._end(call, "COMPLETED" if call.accepted_at else "FAILED", notify_customer=False)
        if call.direction == "USER_INITIATED":
            self._grant_callback_permission(call)

    def user_call_unanswered(self, call: SandboxCall) -> None:
        """Meta's 30-60 s to accept a user's call ran out: the user sees 'Not answered'."""
        if (
            call.is_live
            and call.direction == "USER_INITIATED"
            and call.state in ("RINGING_IN", "PRE_ACCEPTED")
        ):
            self._end(call, "FAILED")
            self._grant_callback_permission(call)

    def _grant_callback_permission(self, call: SandboxCall) -> None:
        """With callback permission enabled, calling in grants a temporary permission (§3.1)."""
        number = self.numbers[call.phone_number_id]
        customer = self.customers.get(call.wa_id)
        if number.calling.get("callback_permission_status") != "ENABLED" or customer is None:
            return
        permission = self.permission(call.phone_number_id, call.wa_id)
        if permission.status == "permanent":
            return
        expires_at = self.now() + self.rules.temporary_permission
        permission.status, permission.expires_at, permission.consecutive_unanswered = (
            "temporary",
            expires_at,
            0,
        )
        self._emit_message(
            number,
            customer,
            {
                "from": customer.wa_id,
                "id": self.new_id("wamid"),
                "timestamp": str(int(self.now().timestamp())),
                "type": "interactive",
                "context": {"from": number.digits, "id": call.call_id},
                "interactive": {
                    "type": "call_permission_reply",
                    "call_permission_reply": {
                        "response": "accept",
                        "is_permanent": False,
                        "expiration_timestamp": int(expires_at.timestamp()),
                        "response_source": "automatic",
                    },
                },
            },
        )

    def customer_media_connected(self, call: SandboxCall) -> None:
        """The customer's phone answered the business's offer: connect webhook, then RINGING."""
        if call.state != "DIALING":
            return
        call.state = "RINGING"
        item = self._call_item(call, "connect")
        item["session"] = {"sdp_type": "answer", "sdp": call.answer_sdp}
        self._emit_call(call, item, with_contact=True)
        self._emit_call_status(call, "RINGING")

    def customer_answer(self, call: SandboxCall) -> None:
        if call.state != "RINGING":
            return
        call.state, call.accepted_at = "ACCEPTED", self.now()
        self._connected(call)
        self._emit_call_status(call, "ACCEPTED")

    def customer_decline(self, call: SandboxCall) -> None:
        if call.state not in ("DIALING", "RINGING"):
            return
        self._emit_call_status(call, "REJECTED")
        self._strike(call)
        self._end(call, "FAILED", notify_customer=False)

    def business_call_unanswered(self, call: SandboxCall) -> None:
        if call.state in ("DIALING", "RINGING"):
            self._strike(call)
            self._end(call, "FAILED")

    # --- Messages ---------------------------------------------------------------------------

    def messages_send(self, phone_number_id: str, body: Any) -> dict:
        number = self.number(phone_number_id)
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise invalid("messaging_product must be 'whatsapp'")
        if "status" in body:
            return self._mark_read(number, body)
        self._check_throughput(number)
        wa_id = body.get("to") or body.get("recipient")
        message_type = body.get("type")
        if not isinstance(wa_id, str) or not wa_id:
            raise invalid("'to' is required")
        if message_type not in ("text", "template", "interactive"):
            raise invalid("type must be text, template or interactive")
        content = body.get(message_type)
        if not isinstance(content, dict):
            raise invalid(f"'{message_type}' must be an object")
        customer = self.customers.get(wa_id)
        if customer is None or not customer.is_on_whatsapp:
            raise SandboxError(131026, "Message undeliverable")
        in_window = self.in_service_window(phone_number_id, wa_id)
        opens_entry_point = self._answers_an_ad(phone_number_id, wa_id)
        free_entry = opens_entry_point or self.in_free_entry_point(phone_number_id, wa_id)
        category, pricing_type = self._validate_message(
            number, customer, message_type, content, in_window=in_window, free_entry=free_entry
        )
        if opens_entry_point:  # the answer itself is the window's first free message
            self.entry_points[(phone_number_id, wa_id)] = self.now()
        message = SentMessage(
            message_id=self.new_id("wamid"),
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            message_type=message_type,
            body=body,
            category=category,
            pricing_type=pricing_type,
            sent_at=self.now(),
        )
        self.messages[message.message_id] = message
        keep_newest(self.messages)
        if self.is_permission_request(message):
            self.permission(phone_number_id, wa_id).requests.append(self.now())
        self.message_status(message, "sent")
        self.message_status(message, "delivered")
        customer.on_message(message)
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": body.get("to") or wa_id, "wa_id": wa_id}],
            "messages": [{"id": message.message_id}],
        }

    def _check_throughput(self, number: SandboxNumber) -> None:
        """Meta's messaging throughput (WHATSAPP_API.md §10.1): over `messages_per_second` sends in the
        last second, a send is refused with 130429 until the number is back under it."""
        now, sends = self.now(), self.sends[number.phone_number_id]
        while sends and sends[0] <= now - timedelta(seconds=1):
            sends.popleft()
        if len(sends) >= self.rules.messages_per_second:
            raise SandboxError(
                130429, "Rate limit hit", http_status=400,
                details=f"Cloud API message throughput of {self.rules.messages_per_second} mps reached",
            )  # fmt: skip
        sends.append(now)

    def _mark_read(self, number: SandboxNumber, body: dict) -> dict:
        """`{"status": "read", "message_id": …}`, maybe with `"typing_indicator": {"type": "text"}`:
        the customer's message to this number shows as read, and "typing…" shows (§10.3)."""
        if body["status"] != "read":
            raise invalid("status must be 'read'")
        message_id = body.get("message_id")
        received = self.received.get(message_id) if isinstance(message_id, str) else None
        if received is None or received[0] != number.phone_number_id:
            raise invalid(f"Unknown message id {str(message_id)[:80]} for this phone number")
        typing = body.get("typing_indicator")
        if typing is not None and typing != {"type": "text"}:
            raise invalid("typing_indicator.type must be 'text'")
        self.read_receipts.append(
            ReadReceipt(message_id=message_id, phone_number_id=number.phone_number_id, wa_id=received[1],
                        is_typing=typing is not None, at=self.now())
        )  # fmt: skip
        keep_newest(self.read_receipts)
        return {"success": True}

    def _validate_message(
        self, number: SandboxNumber, customer: Customer, message_type: str, content: dict, *,
        in_window: bool, free_entry: bool,
    ) -> tuple[str, str]:  # fmt: skip
        """Meta's checks for one send; returns (pricing category, pricing type)."""
        if message_type == "template":
            name = content.get("name")
            language = content.get("language")
            if not isinstance(name, str) or not isinstance(language, dict) or not language.get("code"):
                raise invalid("a template needs a name and language.code")
            template = self.templates.get(name)
            if template is None:
                raise SandboxError(132001, "Template name does not exist in the translation", details=name)
            category = template["category"]
            if category == "marketing" and (number.phone_number_id, customer.wa_id) in self.marketing_stopped:
                raise SandboxError(
                    131050,
                    "Unable to deliver message",
                    details="The customer has stopped marketing messages from this business",
                )
            if template["permission_request"]:
                self._check_permission_request(number, customer)
            if free_entry:
                return category, "free_entry_point"
            if category == "utility" and in_window:
                return category, "free_customer_service"
            return category, "regular"
        if not in_window:
            raise SandboxError(
                131047,
                "Re-engagement message",
                details="More than 24 hours have passed since the customer last replied",
            )
        if message_type == "text":
            if not isinstance(content.get("body"), str) or not content["body"]:
                raise invalid("text.body is required")
        else:
            kind = content.get("type")
            if kind == "call_permission_request":
                if not customer.supports_permission_requests:
                    raise SandboxError(
                        131026, "Message undeliverable", details="The customer's app cannot show it"
                    )
                self._check_permission_request(number, customer)
            elif kind == "voice_call":
                if not customer.supports_call_buttons:
                    raise SandboxError(
                        131026, "Message undeliverable", details="The customer's app is too old"
                    )
                _validate_voice_call(content)
            elif kind not in ("button", "list", "cta_url"):
                raise SandboxError(131009, f"Interactive message type {kind!r} not supported")
        return "service", "free_entry_point" if free_entry else "free_customer_service"

    def _check_permission_request(self, number: SandboxNumber, customer: Customer) -> None:
        if not number.is_calling_enabled:
            raise SandboxError(138000, "Calling is not enabled for this phone number")
        if number.country in BIC_UNAVAILABLE_COUNTRIES:
            raise SandboxError(138000, "Call permission requests are not available for this phone number")
        permission = self.permission(number.phone_number_id, customer.wa_id)
        for period, allowed in self.rules.permission_requests:
            if len(_within(permission.requests, self.now() - period)) >= allowed:
                raise SandboxError(
                    138009, "Call permission request limit reached", details=f"{allowed} per {period}"
                )

    def is_permission_request(self, message: SentMessage) -> bool:
        content = message.body.get(message.message_type) or {}
        if message.message_type == "interactive":
            return content.get("type") == "call_permission_request"
        if message.message_type == "template":
            return bool(self.templates.get(content.get("name"), {}).get("permission_request"))
        return False

    def message_status(self, message: SentMessage, status: str) -> None:
        number = self.numbers[message.phone_number_id]
        item = {
            "id": message.message_id,
            "status": status,
            "timestamp": str(int(self.now().timestamp())),
            "recipient_id": message.wa_id,
            "pricing": {
                "billable": message.pricing_type == "regular",
                "pricing_model": "PMP",
                "type": message.pricing_type,
                "category": message.category,
            },
        }
        self.emit(number.waba_id, "messages", self._value(number, statuses=[item]))

    def customer_reply_permission(self, message: SentMessage, accept: bool, permanent: bool = False) -> None:
        number = self.numbers[message.phone_number_id]
        customer = self.customers[message.wa_id]
        permission = self.permission(message.phone_number_id, message.wa_id)
        reply: dict[str, Any] = {
            "response": "accept" if accept else "reject",
            "response_source": "user_action",
        }
        if accept:
            reply["is_permanent"] = permanent
            permission.consecutive_unanswered = 0
            if permanent:
                permission.status, permission.expires_at = "permanent", None
            else:
                permission.expires_at = self.now() + self.rules.temporary_permission
                permission.status = "temporary"
                reply["expiration_timestamp"] = int(permission.expires_at.timestamp())
        else:
            permission.status, permission.expires_at = "no_permission", None
        self.windows[(message.phone_number_id, message.wa_id)] = self.now()
        self._emit_message(
            number,
            customer,
            {
                "from": customer.wa_id,
                "id": self.new_id("wamid"),
                "timestamp": str(int(self.now().timestamp())),
                "type": "interactive",
                "context": {"from": number.digits, "id": message.message_id},
                "interactive": {"type": "call_permission_reply", "call_permission_reply": reply},
            },
        )

    def customer_marketing_choice(
        self, customer: Customer, phone_number_id: str, *, stop: bool, as_system_message: bool = False
    ) -> None:
        """The customer stops or resumes the number's marketing messages ("Offers and announcements"):
        the `user_preferences` webhook tells the business (WHATSAPP_API.md §10.2), or with
        `as_system_message` a `messages` item of type `system` (`user_preference_changed`)."""
        number = self.number(phone_number_id)
        key = (phone_number_id, customer.wa_id)
        if stop:
            self.marketing_stopped.add(key)
        else:
            self.marketing_stopped.discard(key)
        value = "stop" if stop else "resume"
        detail = f"User requested to {value} marketing messages"
        timestamp = int(self.now().timestamp())
        if as_system_message:
            system = {"body": detail, "type": "user_preference_changed", "marketing": value}
            message = {"from": customer.wa_id, "id": self.new_id("wamid"), "timestamp": str(timestamp),
                       "type": "system", "system": system}  # fmt: skip
            self.emit(number.waba_id, "messages", self._value(number, messages=[message]))
            return
        preference = {"wa_id": customer.wa_id, "detail": detail, "category": "marketing_messages",
                      "value": value, "timestamp": timestamp}  # fmt: skip
        self.emit(
            number.waba_id,
            "user_preferences",
            self._value(number, contact=customer, user_preferences=[preference]),
        )

    def customer_send(self, customer: Customer, phone_number_id: str, message: dict) -> str:
        """A customer's inbound message (text, button reply, ad referral…); opens the window."""
        number = self.number(phone_number_id)
        message_id = self.new_id("wamid")
        self.windows[(phone_number_id, customer.wa_id)] = self.now()
        if "referral" in message:
            self.referrals[(phone_number_id, customer.wa_id)] = self.now()
        full = {
            "from": customer.wa_id,
            "id": message_id,
            "timestamp": str(int(self.now().timestamp())),
            **message,
        }
        self._emit_message(number, customer, full)
        return message_id

    def customer_send_media(
        self, customer: Customer, phone_number_id: str, *, kind: str, content: bytes, mime_type: str,
        caption: str = "", filename: str = "", voice: bool = False,
    ) -> str:  # fmt: skip
        """A customer sends a file (image, audio, video, document or sticker): Meta keeps it under a
        media id, and the webhook carries the id, not the file (WHATSAPP_API.md §10.3)."""
        media = SandboxMedia(
            media_id=str(secrets.randbelow(10**15) + 10**15), content=content, mime_type=mime_type
        )
        self.media[media.media_id] = media
        keep_newest(self.media, limit=MEDIA_HISTORY)
        body: dict[str, Any] = {"mime_type": mime_type, "sha256": media.sha256, "id": media.media_id}
        if caption and kind in MEDIA_CAPTIONED:
            body["caption"] = caption
        if kind == "document" and filename:
            body["filename"] = filename
        if kind == "audio":
            body["voice"] = voice
        if kind == "sticker":
            body["animated"] = False
        return self.customer_send(customer, phone_number_id, {"type": kind, kind: body})

    def media_get(self, media_id: str, *, base_url: str) -> dict:
        """`GET /<MEDIA_ID>`: a URL on `base_url` that serves the file for a few minutes, to a
        request with the access token (WHATSAPP_API.md §10.3)."""
        media = self.media.get(media_id)
        if media is None:
            raise SandboxError(
                100,
                f"Unsupported get request. Object with ID '{media_id}' does not exist, cannot be loaded due "
                "to missing permissions, or does not support this operation.",
                data={"error_subcode": 33},
            )
        expires = str(int((self.now() + self.rules.media_url_lifetime).timestamp()))
        query = f"mid={media_id}&ext={expires}&hash={self._media_url_hash(media_id, expires)}"
        return {
            "messaging_product": "whatsapp",
            "url": f"{base_url}{MEDIA_DOWNLOAD_PATH}?{query}",
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": len(media.content),
            "id": media_id,
        }

    def media_download(self, *, media_id: Any, expires: Any, url_hash: Any) -> SandboxMedia:
        """The file behind a URL `media_get` gave, while the URL lives."""
        media = self.media.get(media_id) if isinstance(media_id, str) else None
        if (
            media is None
            or not isinstance(expires, str)
            or not expires.isdigit()
            or not isinstance(url_hash, str)
        ):
            raise MediaUnavailable(media_id)
        if not hmac.compare_digest(self._media_url_hash(media_id, expires), url_hash):
            raise MediaUnavailable(media_id)
        if int(expires) < self.now().timestamp():
            raise MediaUnavailable(media_id)
        return media

    def _media_url_hash(self, media_id: str, expires: str) -> str:
        return hmac.new(self._media_url_key, f"{media_id}:{expires}".encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    def customer_read(self, message: SentMessage) -> None:
        self.message_status(message, "read")

    def in_service_window(self, phone_number_id: str, wa_id: str) -> bool:
        opened = self.windows.get((phone_number_id, wa_id))
        return opened is not None and self.now() - opened < self.rules.customer_service_window

    def _answers_an_ad(self, phone_number_id: str, wa_id: str) -> bool:
        """A send now is the business's first answer, within 24 h, to the customer's message from a
        click-to-WhatsApp ad: it opens a 72-hour free entry point window (WHATSAPP_API.md §5.4)."""
        key = (phone_number_id, wa_id)
        referral, opened = self.referrals.get(key), self.entry_points.get(key)
        if referral is None or self.now() - referral > self.rules.free_entry_point_answer_within:
            return False
        return opened is None or opened < referral

    def in_free_entry_point(self, phone_number_id: str, wa_id: str) -> bool:
        opened = self.entry_points.get((phone_number_id, wa_id))
        return opened is not None and self.now() - opened < self.rules.free_entry_point_window

    def template_create(self, waba_id: str, body: Any) -> dict:
        """POST /<WABA_ID>/message_templates: registered at once (Meta reviews; the sandbox approves)."""
        if not isinstance(body, dict):
            raise invalid("the body must be an object")
        name, category = body.get("name"), body.get("category")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,512}", name):
            raise invalid("name is lowercase letters, digits and underscores")
        if category not in ("MARKETING", "UTILITY", "AUTHENTICATION"):
            raise invalid("category must be MARKETING, UTILITY or AUTHENTICATION")
        components = body.get("components")
        if not isinstance(components, list) or not any(
            isinstance(component, dict) and component.get("type") == "BODY" for component in components
        ):
            raise invalid("components need a BODY")
        is_request = any(
            isinstance(component, dict) and component.get("type", "").lower() == "call_permission_request"
            for component in components
        )
        if is_request and category == "AUTHENTICATION":
            raise invalid("call permission request templates are MARKETING or UTILITY")
        template_id = self.new_id("template")
        self.templates[name] = {
            "category": category.lower(),
            "permission_request": is_request,
            "listed": {
                "id": template_id, "name": name, "language": body.get("language") or "en_US",
                "status": "APPROVED", "category": category, "components": components, "waba_id": waba_id,
            },
        }  # fmt: skip
        return {"id": template_id, "status": "APPROVED", "category": category}

    def templates_list(self, waba_id: str, *, limit: object = None, after: object = None) -> dict:
        """GET /<WABA_ID>/message_templates: the account's templates, a page at a time (cursor paging)."""
        try:
            size = min(max(int(limit or 25), 1), 100)
            start = int(after or 0)
        except (TypeError, ValueError):
            raise invalid("limit and after must be whole numbers") from None
        listed = [
            {key: value for key, value in template["listed"].items() if key != "waba_id"}
            for template in self.templates.values()
            if template["listed"]["waba_id"] == waba_id
        ]
        page = listed[start : start + size]
        paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
        if start + size < len(listed):
            paging["next"] = f"?limit={size}&after={start + size}"
        return {"data": page, "paging": paging}

    # --- Settings and permissions look-ups ----------------------------------------------------

    def settings_get(self, phone_number_id: str) -> dict:
        number = self.number(phone_number_id)
        calling = dict(number.calling)
        calling["restrictions"] = {"restrictions_list": list(number.restrictions)}
        return {"calling": calling}

    def settings_update(self, phone_number_id: str, body: Any) -> dict:
        """POST /<PNID>/settings (WHATSAPP_API.md §4.1): an update breaking any rule is refused with
        error 100 naming every field at fault, and changes nothing; a valid one is stored
        (`call_hours` and `call_icons` replaced wholesale, no `holiday_schedule` deletes the
        holidays, `sip` merged) and announced by an `account_settings_update` webhook."""
        number = self.number(phone_number_id)
        if not isinstance(body, dict) or not isinstance(body.get("calling"), dict):
            raise invalid("calling: must be an object")
        changes = body["calling"]
        problems = calling_settings_problems(
            changes, for_update=True, today=self._holiday_today(changes), current=number.calling
        )
        if problems:
            raise invalid(problems_text(problems))
        calling = {**number.calling, **changes}
        if "call_hours" in changes:
            calling["call_hours"] = {"holiday_schedule": [], **changes["call_hours"]}
        if "sip" in changes and isinstance(number.calling.get("sip"), dict):
            calling["sip"] = {**number.calling["sip"], **changes["sip"]}
        number.calling = calling
        self.emit(
            number.waba_id,
            "account_settings_update",
            {
                "messaging_product": "whatsapp",
                "timestamp": str(int(self.now().timestamp())),
                "type": "phone_number_settings",
                "phone_number_settings": {"phone_number_id": phone_number_id, "calling": calling},
            },
        )
        return {"success": True}

    def _holiday_today(self, changes: dict) -> date:
        """Today where the business is (the call hours' time zone), against which a holiday is past."""
        hours = changes.get("call_hours")
        zone = hours.get("timezone_id") if isinstance(hours, dict) else None
        if isinstance(zone, str) and zone in time_zone_names():
            return self.now().astimezone(ZoneInfo(zone)).date()
        return self.now().astimezone(UTC).date()

    def call_permissions_get(self, phone_number_id: str, wa_id: Any) -> dict:
        number = self.number(phone_number_id)
        lookups = self.permission_lookups[phone_number_id]
        now = self.now()
        while lookups and now - lookups[0] >= timedelta(seconds=1):
            lookups.popleft()
        if len(lookups) >= self.rules.call_permission_lookups_per_second:
            raise SandboxError(613, "Calls to this API have exceeded the rate limit", http_status=429)
        lookups.append(now)
        if not isinstance(wa_id, str) or not wa_id:
            raise invalid("user_wa_id is required")
        customer = self.customers.get(wa_id)
        permission = self.permission(phone_number_id, wa_id)
        status = permission.status if customer is not None and customer.is_on_whatsapp else "no_permission"
        answer: dict[str, Any] = {"messaging_product": "whatsapp", "permission": {"status": status}}
        if status == "temporary" and permission.expires_at:
            answer["permission"]["expiration_time"] = int(permission.expires_at.timestamp())
        request_limits = [
            _limit(period, allowed, _within(permission.requests, now - period))
            for period, allowed in self.rules.permission_requests
        ]
        connected = _within(permission.connected_calls, now - timedelta(hours=24))
        call_limit = _limit(timedelta(hours=24), self.rules.connected_calls_per_24h, connected)
        bic_available = number.is_calling_enabled and number.country not in BIC_UNAVAILABLE_COUNTRIES
        answer["actions"] = [
            {
                "action_name": "send_call_permission_request",
                "can_perform_action": bic_available
                and all(limit["current_usage"] < limit["max_allowed"] for limit in request_limits),
                "limits": request_limits,
            },
            {
                "action_name": "start_call",
                "can_perform_action": bic_available
                and status != "no_permission"
                and call_limit["current_usage"] < call_limit["max_allowed"],
                "limits": [call_limit],
            },
        ]
        return answer

    def within_call_hours(self, number: SandboxNumber) -> bool:
        hours = number.calling.get("call_hours")
        if not isinstance(hours, dict) or hours.get("status") != "ENABLED":
            return True
        local = self.now().astimezone(ZoneInfo(hours["timezone_id"]))
        hhmm = local.strftime("%H%M")
        for holiday in hours.get("holiday_schedule") or []:
            if (
                holiday["date"] == local.date().isoformat()
                and holiday["start_time"] <= hhmm <= holiday["end_time"]
            ):
                return False
        day = DAYS[local.weekday()]
        return any(
            slot["day_of_week"] == day and slot["open_time"] <= hhmm < slot["close_time"]
            for slot in hours["weekly_operating_hours"]
        )


# --- Helpers ------------------------------------------------------------------------------


def _within(times: deque, since: datetime) -> list[datetime]:
    while times and times[0] < since - timedelta(days=8):
        times.popleft()  # keep the deque short; nothing older than a week matters
    return [moment for moment in times if moment >= since]


def _limit(period: timedelta, allowed: int, used: list[datetime]) -> dict:
    limit = {"time_period": _iso_period(period), "max_allowed": allowed, "current_usage": len(used)}
    if len(used) >= allowed and used:
        limit["limit_expiration_time"] = int((used[0] + period).timestamp())
    return limit


def _iso_period(period: timedelta) -> str:
    """ISO 8601 as Meta writes its limit periods: PT24H for a day, P7D for a week."""
    if period > timedelta(days=1) and period.seconds == 0:
        return f"P{period.days}D"
    return f"PT{int(period.total_seconds() // 3600)}H"


def _validate_voice_call(content: dict) -> None:
    action = content.get("action")
    if not isinstance(action, dict) or action.get("name") != "voice_call":
        raise invalid("action.name must be 'voice_call'")
    parameters = action.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid("action.parameters must be an object")
    display_text = parameters.get("display_text", "Call Now")
    if not isinstance(display_text, str) or len(display_text) > 20:
        raise invalid("display_text is at most 20 characters")
    ttl = parameters.get("ttl_minutes", 10080)
    if not isinstance(ttl, int) or not 1 <= ttl <= 43200:
        raise invalid("ttl_minutes must be within 1-43200")
    payload = parameters.get("payload", "")
    if not isinstance(payload, str) or len(payload) > 512:
        raise invalid("payload is at most 512 characters")


def validated_sdp(sdp: Any) -> str:
    """Meta accepts WebRTC SDP only: ICE, DTLS-SRTP and Opus audio (WHATSAPP_API.md §5.2)."""
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise invalid("SDP validation error: not an SDP description")
    required = {
        "m=audio": "no audio media section",
        "a=ice-ufrag:": "no ICE credentials",
        "a=fingerprint:": "no DTLS fingerprint",
    }
    for marker, problem in required.items():
        if marker not in sdp:
            raise invalid(f"SDP validation error: {problem}")
    if "opus/48000" not in sdp.lower():
        raise invalid("SDP validation error: Opus is required")
    return sdp
