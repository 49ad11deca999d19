"""Graph API client on httpx: call actions, messages, number settings, call permissions, media.

Every request is built by one function and every answer read by one parser, shared by the
blocking `GraphClient` (services, Celery tasks) and the asyncio `AsyncGraphClient` (the media
process). Timeouts, transport errors and 5xx answers are retried with bounded exponential
backoff; a 4xx answer is never retried and becomes the typed exception for Meta's code.
Retrying a `connect` after a timeout may reach Meta twice; Meta answers the second with
138003 (duplicate call), which the caller sees as `DuplicateCall`.
"""

import asyncio
import hashlib
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings

from core.metrics import GRAPH_API_ERRORS
from whatsapp.errors import GraphAPIError, GraphTransportError, error_from_response

MAX_OPAQUE_DATA = 512
MAX_BUTTON_TEXT = 20
MAX_BUTTON_PAYLOAD = 512
TTL_MINUTES_RANGE = (1, 43200)
CALL_ACTIONS = ("pre_accept", "accept", "reject", "terminate")


@dataclass(frozen=True)
class GraphRequest:
    method: str
    path: str
    json: dict | None = None
    params: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)  # e.g. an app access token in place of the client's


@dataclass(frozen=True)
class ActionLimit:
    time_period: str
    max_allowed: int
    current_usage: int
    limit_expires_at: datetime | None


@dataclass(frozen=True)
class PermissionAction:
    name: str
    can_perform: bool
    limits: tuple[ActionLimit, ...]


@dataclass(frozen=True)
class CallPermissionState:
    """GET /<PNID>/call_permissions: the permission and what the business may do next."""

    status: str
    expires_at: datetime | None
    actions: dict[str, PermissionAction]

    def can(self, action_name: str) -> bool:
        action = self.actions.get(action_name)
        return bool(action and action.can_perform)


# --- Requests -------------------------------------------------------------------------------


def _calls_path(phone_number_id: str) -> str:
    return f"{phone_number_id}/calls"


def call_connect_request(
    *, phone_number_id: str, to: str, sdp: str, biz_opaque_callback_data: str = ""
) -> GraphRequest:
    body = {
        "messaging_product": "whatsapp",
        "to": to,
        "action": "connect",
        "session": {"sdp_type": "offer", "sdp": sdp},
    }
    if biz_opaque_callback_data:
        body["biz_opaque_callback_data"] = _opaque(biz_opaque_callback_data)
    return GraphRequest("POST", _calls_path(phone_number_id), body)


def call_action_request(
    *, phone_number_id: str, call_id: str, action: str, sdp: str = "", biz_opaque_callback_data: str = ""
) -> GraphRequest:
    if action not in CALL_ACTIONS:
        raise ValueError(f"{action!r} is not one of {', '.join(CALL_ACTIONS)}")
    body: dict[str, Any] = {"messaging_product": "whatsapp", "call_id": call_id, "action": action}
    if action in ("pre_accept", "accept"):
        if not sdp:
            raise ValueError(f"{action} needs the SDP answer")
        body["session"] = {"sdp_type": "answer", "sdp": sdp}
    if biz_opaque_callback_data:
        if action != "accept":
            raise ValueError("biz_opaque_callback_data goes with accept (or connect)")
        body["biz_opaque_callback_data"] = _opaque(biz_opaque_callback_data)
    return GraphRequest("POST", _calls_path(phone_number_id), body)


def _message(phone_number_id: str, to: str, message_type: str, content: dict) -> GraphRequest:
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": message_type}
    body[message_type] = content
    return GraphRequest("POST", f"{phone_number_id}/messages", body)


def text_message_request(
    *, phone_number_id: str, to: str, body: str, preview_url: bool = False
) -> GraphRequest:
    if not body:
        raise ValueError("a text message needs a body")
    return _message(phone_number_id, to, "text", {"preview_url": preview_url, "body": body})


def template_message_request(
    *, phone_number_id: str, to: str, name: str, language: str, components: list[dict] | None = None
) -> GraphRequest:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = components
    return _message(phone_number_id, to, "template", template)


def read_receipt_request(*, phone_number_id: str, message_id: str, is_typing: bool = False) -> GraphRequest:
    """Mark a customer's message read (blue ticks); with `is_typing`, also show them "typing…" for
    up to 25 s or until the reply (WHATSAPP_API.md §10.3)."""
    if not message_id:
        raise ValueError("a read receipt needs the message id")
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if is_typing:
        body["typing_indicator"] = {"type": "text"}
    return GraphRequest("POST", f"{phone_number_id}/messages", body)


def call_permission_request_message(*, phone_number_id: str, to: str, body_text: str = "") -> GraphRequest:
    interactive: dict[str, Any] = {
        "type": "call_permission_request",
        "action": {"name": "call_permission_request"},
    }
    if body_text:
        interactive["body"] = {"text": body_text}
    return _message(phone_number_id, to, "interactive", interactive)


def call_button_message_request(
    *,
    phone_number_id: str,
    to: str,
    body_text: str,
    display_text: str = "",
    ttl_minutes: int | None = None,
    payload: str = "",
) -> GraphRequest:
    if not body_text:
        raise ValueError("a call button message needs body text")
    parameters: dict[str, Any] = {}
    if display_text:
        if len(display_text) > MAX_BUTTON_TEXT:
            raise ValueError(f"display_text is at most {MAX_BUTTON_TEXT} characters")
        parameters["display_text"] = display_text
    if ttl_minutes is not None:
        if not TTL_MINUTES_RANGE[0] <= ttl_minutes <= TTL_MINUTES_RANGE[1]:
            raise ValueError(f"ttl_minutes must be within {TTL_MINUTES_RANGE[0]}-{TTL_MINUTES_RANGE[1]}")
        parameters["ttl_minutes"] = ttl_minutes
    if payload:
        if len(payload) > MAX_BUTTON_PAYLOAD:
            raise ValueError(f"payload is at most {MAX_BUTTON_PAYLOAD} characters")
        parameters["payload"] = payload
    interactive = {
        "type": "voice_call",
        "body": {"text": body_text},
        "action": {"name": "voice_call", "parameters": parameters},
    }
    return _message(phone_number_id, to, "interactive", interactive)


def settings_get_request(*, phone_number_id: str) -> GraphRequest:
    return GraphRequest("GET", f"{phone_number_id}/settings")


def settings_update_request(*, phone_number_id: str, calling: dict) -> GraphRequest:
    return GraphRequest("POST", f"{phone_number_id}/settings", {"calling": calling})


def call_permissions_request(*, phone_number_id: str, user_wa_id: str) -> GraphRequest:
    return GraphRequest("GET", f"{phone_number_id}/call_permissions", params={"user_wa_id": user_wa_id})


GRAPH_NODE_ID = re.compile(r"[0-9]{1,32}")  # a phone number, account or app id
# What the onboarding page reads of a number (Meta's WhatsApp Business Phone Number node; the values
# are listed in Meta's Graph API reference and SDKs built on it, e.g. pywa's `BusinessPhoneNumber`):
# `name_status` APPROVED | AVAILABLE_WITHOUT_REVIEW | PENDING_REVIEW | DECLINED | EXPIRED | NONE,
# `quality_rating` GREEN | YELLOW | RED | UNKNOWN, `messaging_limit_tier` TIER_50 … TIER_UNLIMITED,
# `platform_type` CLOUD_API | ON_PREMISE | NOT_APPLICABLE, and `is_on_biz_app`: true for a number
# also used in the WhatsApp Business app (coexistence; Meta's "Onboard WhatsApp Business app users").
PHONE_NUMBER_FIELDS = (
    "display_phone_number",
    "verified_name",
    "name_status",
    "quality_rating",
    "messaging_limit_tier",
    "is_official_business_account",
    "platform_type",
    "is_on_biz_app",
    "code_verification_status",
    "throughput",
)


def _node(node_id: str, what: str) -> str:
    if not GRAPH_NODE_ID.fullmatch(node_id or ""):
        raise ValueError(f"{str(node_id)[:40]!r} is not a {what} id")
    return node_id


def phone_number_request(*, phone_number_id: str) -> GraphRequest:
    """`GET /<PHONE_NUMBER_ID>?fields=…`: the number's name, quality, limit tier and platform."""
    path = _node(phone_number_id, "phone number")
    return GraphRequest("GET", path, params={"fields": ",".join(PHONE_NUMBER_FIELDS)})


def subscribed_apps_request(*, waba_id: str) -> GraphRequest:
    """`GET /<WABA_ID>/subscribed_apps`: the apps that receive the account's webhooks (Meta's Graph
    API reference, "WhatsApp Business Account Subscribed Apps")."""
    return GraphRequest("GET", f"{_node(waba_id, 'WhatsApp Business Account')}/subscribed_apps")


def app_subscriptions_request(*, app_id: str, app_secret: str) -> GraphRequest:
    """`GET /<APP_ID>/subscriptions`: the webhook fields the app subscribes to, per object (Meta's
    Graph API reference, "/{app-id}/subscriptions": it needs an app access token, `<id>|<secret>`)."""
    path = f"{_node(app_id, 'app')}/subscriptions"
    return GraphRequest("GET", path, headers={"Authorization": f"Bearer {app_id}|{app_secret}"})


MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # a node of the Graph API, never a path


def media_url_request(*, media_id: str) -> GraphRequest:
    """`GET /<MEDIA_ID>`: where a file a customer sent can be downloaded (WHATSAPP_API.md §10.3)."""
    if not MEDIA_ID.fullmatch(media_id):
        raise ValueError(f"{media_id[:40]!r} is not a media id")
    return GraphRequest("GET", media_id)


def _opaque(value: str) -> str:
    if len(value) > MAX_OPAQUE_DATA:
        raise ValueError(f"biz_opaque_callback_data is at most {MAX_OPAQUE_DATA} characters")
    return value


# --- Answers --------------------------------------------------------------------------------


def _unexpected(body: Any, what: str) -> GraphAPIError:
    return GraphAPIError(f"unexpected answer to {what}: {str(body)[:200]}")


def parse_call_id(body: Any) -> str:
    try:
        call_id = body["calls"][0]["id"]
    except (KeyError, IndexError, TypeError):
        raise _unexpected(body, "connect") from None
    if not isinstance(call_id, str):
        raise _unexpected(body, "connect")
    return call_id


def parse_success(body: Any) -> None:
    if not (isinstance(body, dict) and body.get("success") is True):
        raise _unexpected(body, "a call action")


def parse_message_id(body: Any) -> str:
    try:
        message_id = body["messages"][0]["id"]
    except (KeyError, IndexError, TypeError):
        raise _unexpected(body, "a message send") from None
    if not isinstance(message_id, str):
        raise _unexpected(body, "a message send")
    return message_id


def parse_settings(body: Any) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("calling"), dict):
        raise _unexpected(body, "GET settings")
    return body


@dataclass(frozen=True)
class PhoneNumberStatus:
    """Meta's answer to `GET /<PHONE_NUMBER_ID>?fields=…` (PHONE_NUMBER_FIELDS); "" where it said
    nothing."""

    display_phone_number: str
    verified_name: str
    name_status: str
    quality_rating: str
    messaging_limit_tier: str
    is_official_business_account: bool
    platform_type: str
    is_on_biz_app: bool
    code_verification_status: str


def parse_phone_number(body: Any) -> PhoneNumberStatus:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise _unexpected(body, "GET phone number")

    def text(key: str) -> str:
        value = body.get(key)
        return value if isinstance(value, str) else ""

    return PhoneNumberStatus(
        display_phone_number=text("display_phone_number"),
        verified_name=text("verified_name"),
        name_status=text("name_status"),
        quality_rating=text("quality_rating"),
        messaging_limit_tier=text("messaging_limit_tier"),
        is_official_business_account=body.get("is_official_business_account") is True,
        platform_type=text("platform_type"),
        is_on_biz_app=body.get("is_on_biz_app") is True,
        code_verification_status=text("code_verification_status"),
    )


def parse_subscribed_apps(body: Any) -> list[str]:
    """The ids of the apps subscribed to the account: `{"data": [{"whatsapp_business_api_data":
    {"id", "link", "name"}}]}`."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise _unexpected(body, "GET subscribed_apps")
    ids = []
    for item in body["data"]:
        app = item.get("whatsapp_business_api_data") if isinstance(item, dict) else None
        if isinstance(app, dict) and isinstance(app.get("id"), str):
            ids.append(app["id"])
    return ids


def parse_app_subscriptions(body: Any) -> dict[str, set[str]]:
    """The fields of each object the app subscribes to, active subscriptions only: `{"data":
    [{"object", "callback_url", "active", "fields": [{"name", "version"}]}]}` (older answers list
    fields as names)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise _unexpected(body, "GET app subscriptions")
    subscribed: dict[str, set[str]] = {}
    for item in body["data"]:
        if (
            not isinstance(item, dict)
            or item.get("active") is False
            or not isinstance(item.get("object"), str)
        ):
            continue
        names = set()
        for field_entry in item.get("fields") or []:
            name = field_entry.get("name") if isinstance(field_entry, dict) else field_entry
            if isinstance(name, str):
                names.add(name)
        subscribed.setdefault(item["object"], set()).update(names)
    return subscribed


@dataclass(frozen=True)
class MediaLocation:
    """Meta's answer to `GET /<MEDIA_ID>`: a short-lived URL, downloaded with the access token."""

    url: str
    mime_type: str
    sha256: str
    file_size: int | None


def parse_media_location(body: Any) -> MediaLocation:
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _unexpected(body, "GET media")
    size = body.get("file_size")
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    return MediaLocation(
        url=url,
        mime_type=body["mime_type"] if isinstance(body.get("mime_type"), str) else "",
        sha256=body["sha256"] if isinstance(body.get("sha256"), str) else "",
        file_size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


class MediaTooLarge(Exception):
    """A file is larger than the product keeps (settings.WHATSAPP_MEDIA_MAX_BYTES)."""


@dataclass
class DownloadedMedia:
    """A downloaded file, in a temporary file (on disk past 1 MiB), read from its start."""

    file: Any
    size: int
    sha256: str  # hex, of the bytes downloaded
    content_type: str


def _time(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if isinstance(seconds, int) else None


@dataclass(frozen=True)
class TemplatesPage:
    """One page of an account's message templates as Meta lists them, and the cursor of the next."""

    templates: list[dict]
    next_after: str | None


def parse_templates_page(body: Any) -> TemplatesPage:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise _unexpected(body, "GET message_templates")
    templates = [item for item in body["data"] if isinstance(item, dict)]
    paging = body.get("paging") if isinstance(body.get("paging"), dict) else {}
    cursors = paging.get("cursors") if isinstance(paging.get("cursors"), dict) else {}
    after = cursors.get("after")
    return TemplatesPage(templates, after if paging.get("next") and isinstance(after, str) else None)


def parse_call_permissions(body: Any) -> CallPermissionState:
    if not isinstance(body, dict) or not isinstance(body.get("permission"), dict):
        raise _unexpected(body, "GET call_permissions")
    actions = {}
    for action in body.get("actions") or []:
        limits = tuple(
            ActionLimit(
                time_period=limit.get("time_period", ""),
                max_allowed=int(limit.get("max_allowed", 0)),
                current_usage=int(limit.get("current_usage", 0)),
                limit_expires_at=_time(limit.get("limit_expiration_time")),
            )
            for limit in action.get("limits") or []
        )
        actions[action["action_name"]] = PermissionAction(
            name=action["action_name"], can_perform=bool(action.get("can_perform_action")), limits=limits
        )
    permission = body["permission"]
    return CallPermissionState(
        status=str(permission.get("status", "no_permission")),
        expires_at=_time(permission.get("expiration_time")),
        actions=actions,
    )


# --- Clients --------------------------------------------------------------------------------


class _Operations:
    """The Graph API operations, written once for both clients (`_execute` differs)."""

    def _execute(self, request: GraphRequest, parse: Callable[[Any], Any]):
        raise NotImplementedError

    def call_connect(self, *, phone_number_id: str, to: str, sdp: str, biz_opaque_callback_data: str = ""):
        """Start a business-initiated call; returns Meta's call id (`wacid.…`)."""
        request = call_connect_request(
            phone_number_id=phone_number_id, to=to, sdp=sdp, biz_opaque_callback_data=biz_opaque_callback_data
        )
        return self._execute(request, parse_call_id)

    def call_pre_accept(self, *, phone_number_id: str, call_id: str, sdp: str):
        request = call_action_request(
            phone_number_id=phone_number_id, call_id=call_id, action="pre_accept", sdp=sdp
        )
        return self._execute(request, parse_success)

    def call_accept(
        self, *, phone_number_id: str, call_id: str, sdp: str, biz_opaque_callback_data: str = ""
    ):
        request = call_action_request(
            phone_number_id=phone_number_id,
            call_id=call_id,
            action="accept",
            sdp=sdp,
            biz_opaque_callback_data=biz_opaque_callback_data,
        )
        return self._execute(request, parse_success)

    def call_reject(self, *, phone_number_id: str, call_id: str):
        request = call_action_request(phone_number_id=phone_number_id, call_id=call_id, action="reject")
        return self._execute(request, parse_success)

    def call_terminate(self, *, phone_number_id: str, call_id: str):
        request = call_action_request(phone_number_id=phone_number_id, call_id=call_id, action="terminate")
        return self._execute(request, parse_success)

    def message_send(self, *, phone_number_id: str, body: dict):
        """Send a message whose body was built (and recorded) beforehand; returns the `wamid`."""
        return self._execute(GraphRequest("POST", f"{phone_number_id}/messages", body), parse_message_id)

    def message_send_text(self, *, phone_number_id: str, to: str, body: str, preview_url: bool = False):
        """Send a free-form text (inside the customer-service window); returns the `wamid`."""
        request = text_message_request(
            phone_number_id=phone_number_id, to=to, body=body, preview_url=preview_url
        )
        return self._execute(request, parse_message_id)

    def message_send_template(
        self, *, phone_number_id: str, to: str, name: str, language: str, components: list[dict] | None = None
    ):
        request = template_message_request(
            phone_number_id=phone_number_id, to=to, name=name, language=language, components=components
        )
        return self._execute(request, parse_message_id)

    def message_mark_read(self, *, phone_number_id: str, message_id: str, is_typing: bool = False):
        """Tell the customer their message was read; with `is_typing`, also show them that a reply
        is being typed."""
        request = read_receipt_request(
            phone_number_id=phone_number_id, message_id=message_id, is_typing=is_typing
        )
        return self._execute(request, parse_success)

    def message_send_call_permission_request(self, *, phone_number_id: str, to: str, body_text: str = ""):
        request = call_permission_request_message(phone_number_id=phone_number_id, to=to, body_text=body_text)
        return self._execute(request, parse_message_id)

    def message_send_call_button(
        self,
        *,
        phone_number_id: str,
        to: str,
        body_text: str,
        display_text: str = "",
        ttl_minutes: int | None = None,
        payload: str = "",
    ):
        request = call_button_message_request(
            phone_number_id=phone_number_id,
            to=to,
            body_text=body_text,
            display_text=display_text,
            ttl_minutes=ttl_minutes,
            payload=payload,
        )
        return self._execute(request, parse_message_id)

    def settings_get(self, *, phone_number_id: str):
        return self._execute(settings_get_request(phone_number_id=phone_number_id), parse_settings)

    def settings_update(self, *, phone_number_id: str, calling: dict):
        request = settings_update_request(phone_number_id=phone_number_id, calling=calling)
        return self._execute(request, parse_success)

    def phone_number_get(self, *, phone_number_id: str):
        """The number as Meta sees it (`PhoneNumberStatus`)."""
        return self._execute(phone_number_request(phone_number_id=phone_number_id), parse_phone_number)

    def subscribed_apps_get(self, *, waba_id: str):
        """The ids of the apps that receive the account's webhooks."""
        return self._execute(subscribed_apps_request(waba_id=waba_id), parse_subscribed_apps)

    def app_subscriptions_get(self, *, app_id: str, app_secret: str):
        """The webhook fields the app subscribes to, by object (`whatsapp_business_account`: …)."""
        request = app_subscriptions_request(app_id=app_id, app_secret=app_secret)
        return self._execute(request, parse_app_subscriptions)

    def templates_page(self, *, waba_id: str, after: str = "", limit: int = 100):
        """One page of the account's message templates (`TemplatesPage`); pass its `next_after` on."""
        params = {"limit": limit, **({"after": after} if after else {})}
        return self._execute(
            GraphRequest("GET", f"{waba_id}/message_templates", params=params), parse_templates_page
        )

    def call_permissions_get(self, *, phone_number_id: str, user_wa_id: str):
        request = call_permissions_request(phone_number_id=phone_number_id, user_wa_id=user_wa_id)
        return self._execute(request, parse_call_permissions)

    def media_location(self, *, media_id: str):
        """Where a customer's file is (`MediaLocation`): its URL lives a few minutes."""
        return self._execute(media_url_request(media_id=media_id), parse_media_location)


class _Config:
    def __init__(
        self,
        *,
        base_url: str | None = None,
        token: str | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        backoff_s: float = 0.25,
    ) -> None:
        self.base_url = (base_url or settings.WHATSAPP_GRAPH_URL).rstrip("/") + "/"
        self.token = token if token is not None else settings.WHATSAPP_TOKEN
        self.timeout_s = timeout_s if timeout_s is not None else settings.WHATSAPP_TIMEOUT_S
        self.max_retries = max_retries if max_retries is not None else settings.WHATSAPP_MAX_RETRIES
        self.backoff_s = backoff_s

    def client_options(self) -> dict:
        return {
            "base_url": self.base_url,
            "timeout": self.timeout_s,
            "headers": {"Authorization": f"Bearer {self.token}"},
        }

    def delay_before(self, attempt: int) -> float:
        return self.backoff_s * (2 ** (attempt - 1))

    @staticmethod
    def outcome(response: httpx.Response) -> tuple[bool, Any]:
        """(is_retryable, body): 5xx is retried; 2xx returns the body; 4xx raises."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 500:
            return True, body
        if response.status_code >= 400:
            error = error_from_response(http_status=response.status_code, body=body)
            GRAPH_API_ERRORS.inc(f"http_{response.status_code}" if error.code is None else str(error.code))
            raise error
        return False, body


RETRYABLE_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.TransportError)


class GraphClient(_Operations):
    """Blocking client. Use as a context manager, or call `close()`."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **options: Any) -> None:
        self.config = _Config(**options)
        self.http = httpx.Client(transport=transport, **self.config.client_options())

    def __enter__(self) -> "GraphClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send(self, request: GraphRequest) -> Any:
        last_failure = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                time.sleep(self.config.delay_before(attempt))
            try:
                response = self.http.request(
                    request.method,
                    request.path,
                    json=request.json,
                    params=request.params,
                    headers=request.headers or None,
                )
            except RETRYABLE_TRANSPORT_ERRORS as error:
                last_failure = f"{type(error).__name__}: {error}"
                continue
            is_retryable, body = self.config.outcome(response)
            if not is_retryable:
                return body
            last_failure = f"HTTP {response.status_code}"
        GRAPH_API_ERRORS.inc("transport")
        raise GraphTransportError(f"{request.method} {request.path} failed after retries: {last_failure}")

    def _execute(self, request: GraphRequest, parse: Callable[[Any], Any]) -> Any:
        return parse(self.send(request))

    def media_download(self, url: str, *, max_bytes: int) -> DownloadedMedia:
        """Download a file from the URL `media_location` gave, with the access token (Meta refuses it
        without). One attempt: the caller retries (with a fresh URL) on `GraphTransportError`; an
        error answer raises its typed exception, a file over `max_bytes` `MediaTooLarge` (without
        reading more than that)."""
        spooled = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115 (returned open)
        digest, size = hashlib.sha256(), 0
        try:
            with self.http.stream("GET", url) as response:
                if response.status_code >= 500:
                    raise GraphTransportError(f"media download failed: HTTP {response.status_code}")
                if response.status_code >= 400:
                    response.read()
                    self.config.outcome(response)  # raises the typed error of the answer
                status = response.status_code
                if status != 200:
                    raise GraphAPIError(f"media download answered HTTP {status}", http_status=status)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise MediaTooLarge(f"the file is {declared} bytes; at most {max_bytes} are kept")
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"the file is over {max_bytes} bytes, the most kept")
                    digest.update(chunk)
                    spooled.write(chunk)
                content_type = response.headers.get("Content-Type", "")
        except RETRYABLE_TRANSPORT_ERRORS as error:
            spooled.close()
            raise GraphTransportError(f"media download failed: {type(error).__name__}: {error}") from error
        except BaseException:
            spooled.close()
            raise
        spooled.seek(0)
        return DownloadedMedia(file=spooled, size=size, sha256=digest.hexdigest(), content_type=content_type)


class AsyncGraphClient(_Operations):
    """asyncio client for the media process; every operation returns an awaitable."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        self.config = _Config(**options)
        self.http = httpx.AsyncClient(transport=transport, **self.config.client_options())

    async def __aenter__(self) -> "AsyncGraphClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def send(self, request: GraphRequest) -> Any:
        last_failure = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                await asyncio.sleep(self.config.delay_before(attempt))
            try:
                response = await self.http.request(
                    request.method,
                    request.path,
                    json=request.json,
                    params=request.params,
                    headers=request.headers or None,
                )
            except RETRYABLE_TRANSPORT_ERRORS as error:
                last_failure = f"{type(error).__name__}: {error}"
                continue
            is_retryable, body = self.config.outcome(response)
            if not is_retryable:
                return body
            last_failure = f"HTTP {response.status_code}"
        GRAPH_API_ERRORS.inc("transport")
        raise GraphTransportError(f"{request.method} {request.path} failed after retries: {last_failure}")

    async def _execute(self, request: GraphRequest, parse: Callable[[Any], Any]) -> Any:
        return parse(await self.send(request))
