"""The embeddable call widget: the agent's softphone inside the CRM's page.

The CRM's page loads `/widget.js` with its key's public prefix (`data-key`); the script puts our
frame page (`/widget/frame/`) in an iframe. Only the key's allowed origins may frame it (CSP
`frame-ancestors`), and the frame talks only to a parent of those origins (postMessage, checked
both ways). The agent signs in inside the frame, with a password or with a one-time token the
CRM's backend mints through the API (`POST /api/v1/widget/tokens/`, for one of its agents).

A signed-in frame holds a *widget session*: a signed token kept in the frame's memory, not a
cookie (browsers may not send cookies to a third-party frame at all). It names the user, the key
and the host page's origin; it is refused once it is older than a shift, the key is revoked, the
origin is no longer allowed, or the user's password changes. The frame sends it with its requests
and in its WebSocket's query string (`/ws/widget/?widget=<session>`: integrations.consumers).

The widget shows and does what its user may, narrowed to its key's business numbers (core.access:
`WidgetSession.viewer`): its socket hears no ring of another number and calls from none, and
revoking the key closes it at once.
"""

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.core.cache import caches
from django.utils.crypto import constant_time_compare

from agents.models import Agent
from agents.selectors import agent_for_user, numbers_for_agent
from calls.models import Call
from core.access import Viewer, viewer_of_user
from core.signins import SignInLocked, sign_in_authenticate
from integrations.models import ApiKey

SIGN_IN_TOKEN_S = 120  # a minted sign-in token must be used within this, once
SESSION_S = 12 * 3600  # a widget session lasts a long shift
SIGN_IN_SALT = "integrations.widget-sign-in"
SESSION_SALT = "integrations.widget-session"


class WidgetRefused(Exception):
    """The widget cannot be used so: the message says why (shown to the agent or the CRM)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class WidgetSession:
    user: AbstractBaseUser
    key: ApiKey
    origin: str

    def viewer(self) -> Viewer:
        """What the widget may show and do: what its user may, within its key's numbers."""
        return viewer_of_user(self.user).within(self.key.business_numbers.values_list("pk", flat=True))


def widget_key(prefix: object) -> ApiKey | None:
    """The active key a page names by its public prefix, or None."""
    if not isinstance(prefix, str) or not prefix or len(prefix) > 16:
        return None
    return ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=True).first()


def _session_hash(user) -> str:
    return user.get_session_auth_hash()


def widget_sign_in_token_mint(*, key: ApiKey, agent: Agent) -> str:
    """A one-time token for `agent` to sign in to the widget of `key` (the CRM hands it to its page).
    Only for agents who serve one of the key's numbers (ValueError otherwise)."""
    if not key.is_active:
        raise ValueError("the key is revoked")
    if not numbers_for_agent(agent_id=agent.pk).filter(api_keys=key).exists():
        raise ValueError("the agent serves none of the key's numbers")
    return signing.dumps(
        {"u": agent.user_id, "k": key.pk, "n": secrets.token_urlsafe(12)}, salt=SIGN_IN_SALT, compress=True
    )


def _token_user(*, key: ApiKey, token: object):
    try:
        claims = signing.loads(str(token), salt=SIGN_IN_SALT, max_age=SIGN_IN_TOKEN_S)
    except signing.BadSignature:  # SignatureExpired included
        raise WidgetRefused("This sign-in link has expired or is not valid.", code="bad_token") from None
    if claims.get("k") != key.pk:
        raise WidgetRefused("This sign-in link is for another CRM.", code="bad_token")
    # One use: the first exchange takes the nonce for the token's lifetime.
    if not caches["api"].add(f"widget-token:{claims['n']}", 1, timeout=SIGN_IN_TOKEN_S + 5):
        raise WidgetRefused("This sign-in link has been used already.", code="bad_token")
    return get_user_model().objects.filter(pk=claims.get("u"), is_active=True).first()


def _password_user(*, username: object, password: object, request):
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise WidgetRefused("Enter your username and password.", code="invalid")
    try:  # the sign-in page's throttle, shared (core.signins)
        user = sign_in_authenticate(request=request, username=username, password=password, where="widget")
    except SignInLocked as locked:
        raise WidgetRefused(str(locked), code="throttled") from None
    if user is None:
        raise WidgetRefused("Your username and password didn't match.", code="bad_credentials")
    return user


def widget_session_start(
    *, key_prefix: object, origin: object, token: object = None, username: object = None,
    password: object = None, request=None,
) -> tuple[str, Agent]:  # fmt: skip
    """Sign an agent in to the widget on a page of `origin`: with a minted `token`, or a username and
    password (throttled with every password sign-in: core.signins; `request` gives the client's
    address). Returns the session token and the agent; WidgetRefused says why not."""
    key = widget_key(key_prefix)
    if key is None:
        raise WidgetRefused("This widget's key is not valid (revoked or unknown).", code="bad_key")
    if not isinstance(origin, str) or origin not in key.allowed_origins:
        raise WidgetRefused("This page may not embed the widget.", code="origin_not_allowed")
    if token:
        user = _token_user(key=key, token=token)
    else:
        user = _password_user(username=username, password=password, request=request)
    agent = agent_for_user(user=user) if user is not None else None
    if agent is None:
        raise WidgetRefused("This account does not take calls: it has no agent profile.", code="not_an_agent")
    if not numbers_for_agent(agent_id=agent.pk).filter(api_keys=key).exists():
        raise WidgetRefused("You serve none of this CRM's WhatsApp numbers.", code="not_an_agent")
    session = signing.dumps(
        {"u": user.pk, "k": key.pk, "o": origin, "h": _session_hash(user)}, salt=SESSION_SALT, compress=True
    )
    return session, agent


def widget_session_check(token: object) -> WidgetSession | None:
    """The session `token` holds, while it is still good; None otherwise."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        return None
    try:
        claims = signing.loads(token, salt=SESSION_SALT, max_age=SESSION_S)
    except signing.BadSignature:
        return None
    key = ApiKey.objects.filter(pk=claims.get("k"), revoked_at__isnull=True).first()
    user = get_user_model().objects.filter(pk=claims.get("u"), is_active=True).first()
    if key is None or user is None or claims.get("o") not in key.allowed_origins:
        return None
    if not constant_time_compare(claims.get("h", ""), _session_hash(user)):
        return None
    return WidgetSession(user=user, key=key, origin=claims["o"])


def widget_key_is_active(*, key_id: int) -> bool:
    return ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).exists()


def call_business_number_id(*, call_id: int) -> int | None:
    """The business number of a call (None when there is no such call)."""
    return Call.objects.filter(pk=call_id).values_list("business_number_id", flat=True).first()
