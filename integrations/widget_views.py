"""The call widget's pages (integrations.widget says how it fits together)."""

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from agents.models import Agent
from agents.selectors import agent_for_user, numbers_for_agent
from core.webrtc import browser_ice_servers
from integrations.api.base import ApiView, IdField
from integrations.models import ApiKey
from integrations.widget import (
    SIGN_IN_TOKEN_S,
    WidgetRefused,
    widget_key,
    widget_session_check,
    widget_session_start,
    widget_sign_in_token_mint,
)

SCRIPT = Path(settings.BASE_DIR) / "static" / "integrations" / "widget.js"
SESSION_BODY_MAX = 4096
SIGN_IN_STATUS = {"invalid": 400, "throttled": 429, "bad_credentials": 401, "bad_token": 401}


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


@require_GET
def widget_script(request):
    """`<script src="…/widget.js" data-key="…">`: the host page's part (frames the softphone)."""
    response = HttpResponse(_script(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"  # public code: any page may load it
    return response


def _frame_ancestors(key: ApiKey | None) -> str:
    origins = " ".join(key.allowed_origins) if key and key.allowed_origins else "'none'"
    return f"frame-ancestors {origins}"


@require_GET
@never_cache
@xframe_options_exempt  # framing is governed by CSP frame-ancestors, per key
def widget_frame(request):
    """The page inside the iframe: sign-in, then the softphone. Framed only by the key's origins."""
    key = widget_key(request.GET.get("key"))
    if key is None or not key.allowed_origins:
        response = render(request, "integrations/widget_refused.html", status=403)
    else:
        config = {
            "key": key.prefix,
            "allowed_origins": key.allowed_origins,
            "dashboard_url": static("agents/dashboard.js"),
        }
        response = render(request, "integrations/widget_frame.html", {"config": config})
    response["Content-Security-Policy"] = _frame_ancestors(key)
    return response


def _refused(error: WidgetRefused, status: int = 403) -> JsonResponse:
    return JsonResponse({"code": error.code, "detail": str(error)}, status=status)


@csrf_exempt  # no cookie is read or set: the frame keeps the session it gets back
@require_POST
@never_cache
def widget_session(request):
    """Sign in inside the frame: `{"key", "origin", "token"}` (minted by the CRM) or
    `{"key", "origin", "username", "password"}`. Answers the widget session and the agent."""
    if len(request.body) > SESSION_BODY_MAX:
        return JsonResponse({"code": "invalid", "detail": "The request is too large."}, status=413)
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return JsonResponse({"code": "invalid", "detail": "Send a JSON object."}, status=400)
    try:
        session, agent = widget_session_start(
            key_prefix=body.get("key"), origin=body.get("origin"), token=body.get("token"),
            username=body.get("username"), password=body.get("password"), request=request,
        )  # fmt: skip
    except WidgetRefused as error:
        return _refused(error, SIGN_IN_STATUS.get(error.code, 403))
    return JsonResponse({"session": session, "agent": {"id": agent.pk, "name": agent.name}})


def _session_of(request):
    header = request.headers.get("Authorization", "")
    return widget_session_check(header[len("Widget ") :]) if header.startswith("Widget ") else None


@require_GET
@never_cache
def widget_softphone(request):
    """The softphone's panels for a signed-in frame (`Authorization: Widget <session>`): the
    dashboard's own, calling from the numbers the agent serves and the key covers."""
    session = _session_of(request)
    if session is None:
        return JsonResponse({"code": "signed_out", "detail": "Sign in again."}, status=401)
    agent = agent_for_user(user=session.user)
    if agent is None:
        return JsonResponse({"code": "not_an_agent", "detail": "This account takes no calls."}, status=403)
    numbers = numbers_for_agent(agent_id=agent.pk).filter(pk__in=session.viewer().number_ids)
    query = f"?widget={request.headers['Authorization'][len('Widget ') :]}"
    return render(
        request,
        "agents/_softphone.html",
        {
            "agent": agent,
            "numbers": list(numbers),
            "ice_servers": browser_ice_servers(),
            "socket_path": f"/ws/widget/{query}",
        },
    )


class WidgetTokenApi(ApiView):
    """POST: a one-time token that signs `agent_id` in to the widget of this key (within two
    minutes). The CRM's backend asks for it and hands it to its page, which passes it to the
    widget (`{"type": "switchboard.sign_in", "token": …}`): the agent need not type a password."""

    required_scope = ApiKey.Scope.CALLS_WRITE
    operations = {"POST": "widget_tokens.create"}

    class BodySerializer(serializers.Serializer):
        agent_id = IdField()

    @extend_schema(
        request=BodySerializer,
        responses={
            201: inline_serializer(
                "WidgetToken",
                {"token": serializers.CharField(), "expires_in_s": serializers.IntegerField()},
            )
        },
    )
    def post(self, request):
        body = self.BodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = self.caller().key
        if key is None:  # a signed-in user has a session already: the widget is for CRMs' keys
            return Response({"detail": "Widget sign-in tokens are minted with an API key."}, status=403)
        agents = Agent.objects.filter(pk__in=agents_of_key(key), user__is_active=True)
        agent = get_object_or_404(agents, pk=body.validated_data["agent_id"])
        token = widget_sign_in_token_mint(key=key, agent=agent)
        self.note(agent=agent.pk)
        return Response({"token": token, "expires_in_s": SIGN_IN_TOKEN_S}, status=201)


def agents_of_key(key: ApiKey):
    """The ids of the agents who serve one of the key's numbers."""
    return Agent.objects.filter(memberships__queue__business_numbers__api_keys=key).values("pk")
