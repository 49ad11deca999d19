"""Calls: the list, each call with its transcript and recording link, placing calls; whether a number
may call a contact, permission requests, and the agents' live state."""

from datetime import timedelta

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from calls.handlers import decision_frame
from calls.models import Call
from calls.outbound import AGENT_CAN_DIAL_FROM, CallRefused, call_place_outbound
from compliance.decisions import call_decide
from compliance.services import permission_request_send
from core.access import Viewer
from integrations.api.base import (
    ALLOWED_BECAUSE_HELP,
    TO_HELP,
    UNPROCESSABLE,
    WARNINGS_HELP,
    WHATSAPP_FAILED,
    ApiView,
    CallRefusedSerializer,
    DecisionWarningSerializer,
    FallbackSerializer,
    IdField,
    PageSerializer,
    ProblemSerializer,
    RefusalSerializer,
    Refused,
    customer_wa_id,
    filtered,
    paged,
    query_of,
    refused_by_service,
    whatsapp_failed,
)
from integrations.models import ApiKey
from messaging.models import Message
from messaging.services import contact_get_or_create
from recordings.models import Recording, Summary, Transcript
from recordings.selectors import summary_for_display, transcript_for_display
from whatsapp.errors import GraphAPIError
from whatsapp.models import BusinessNumber

RECORDING_LINK_S = 300  # a recording's download link works this long
RECORDING_SALT = "integrations.recording-link"


class SummarySerializer(serializers.Serializer):
    paragraph = serializers.CharField()
    intent = serializers.CharField(allow_null=True, help_text="Null when the call had no conversation.")
    outcome = serializers.CharField()
    sentiment = serializers.CharField(allow_null=True, help_text="Null when the call had no conversation.")
    sentiment_score = serializers.FloatField(
        allow_null=True, help_text="Null when the call had no conversation."
    )
    backend = serializers.CharField()


class CallSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wa_call_id = serializers.CharField()
    business_number_id = serializers.IntegerField()
    contact_id = serializers.IntegerField()
    direction = serializers.CharField()
    status = serializers.CharField()
    queue_id = serializers.IntegerField(allow_null=True)
    agent_id = serializers.IntegerField(allow_null=True)
    conversation_id = serializers.IntegerField(
        allow_null=True,
        help_text="The customer's chat with the number that the call came from (the conversation open "
        "when they called, or closed within the day before); null when there was none.",
    )
    started_at = serializers.DateTimeField()
    connected_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    end_reason = serializers.CharField()
    talk_seconds = serializers.IntegerField(allow_null=True)
    disposition = serializers.CharField()
    has_recording = serializers.BooleanField()
    summary = SummarySerializer(allow_null=True)


CALL_FIELDS = (
    "id", "wa_call_id", "business_number_id", "contact_id", "direction", "status", "queue_id", "agent_id",
    "conversation_id", "started_at", "connected_at", "ended_at", "end_reason", "talk_seconds", "disposition",
)  # fmt: skip


def _call_data(call: Call, caller: Viewer) -> dict:
    summary = getattr(
        call, "summary", None
    )  # none yet: Django's RelatedObjectDoesNotExist is an AttributeError
    return {
        **{name: getattr(call, name) for name in CALL_FIELDS},
        "has_recording": call.recording_pk is not None,
        "summary": summary_for_display(
            summary=summary, is_raw=caller.sees_raw_text, country=call.contact.country
        ),
    }


def _with_extras(calls):
    return calls.select_related("contact", "summary").annotate(
        recording_pk=Subquery(Recording.objects.filter(call=OuterRef("pk")).values("pk")[:1])
    )


CALL_FILTERS = {  # query parameter: lookup
    "number": "business_number_id",
    "contact": "contact_id",
    "agent": "agent_id",
    "queue": "queue_id",
    "direction": "direction",
    "status": "status",
    "since": "started_at__gte",
    "until": "started_at__lt",
    "sentiment": "summary__sentiment",
    "outcome": "summary__outcome",
}


class CallListApi(ApiView):
    """GET: the caller's calls, newest first, filtered; cursor pages (`next` links).
    POST: click-to-call (the `calls:write` scope): the business number calls the customer for the
    agent who will talk, if the compliance engine allows it now."""

    write_scope = ApiKey.Scope.CALLS_WRITE
    operations = {"POST": "calls.create"}

    class CallPlaceSerializer(serializers.Serializer):
        business_number_id = IdField(help_text="The business number that calls.")
        to = serializers.CharField(trim_whitespace=False, max_length=40, help_text=TO_HELP)
        agent_id = IdField(
            help_text="The agent who will talk: a member of a queue serving the number, not on another call."
        )

    class FilterSerializer(PageSerializer):
        number = IdField(required=False, help_text="A business number's id.")
        contact = IdField(required=False)
        agent = IdField(required=False)
        queue = IdField(required=False)
        direction = serializers.ChoiceField(choices=Call.Direction.choices, required=False)
        status = serializers.ChoiceField(choices=Call.Status.choices, required=False)
        since = serializers.DateTimeField(required=False, help_text="Started at or after.")
        until = serializers.DateTimeField(required=False, help_text="Started before.")
        sentiment = serializers.ChoiceField(choices=Summary.Sentiment.choices, required=False)
        outcome = serializers.CharField(trim_whitespace=False, required=False, max_length=32)

    @extend_schema(
        operation_id="calls_list",
        parameters=[FilterSerializer],
        responses={200: paged("CallPage", CallSerializer(many=True))},
    )
    def get(self, request):
        caller = self.caller()
        calls = filtered(caller.calls(), self.query(self.FilterSerializer), CALL_FILTERS)
        return self.page(
            _with_extras(calls),
            ordering=("-started_at", "-id"),
            serializer=CallSerializer,
            row=lambda call: _call_data(call, caller),
        )

    @extend_schema(
        operation_id="calls_create",
        request=CallPlaceSerializer,
        responses={
            201: CallSerializer,
            409: OpenApiResponse(
                CallRefusedSerializer,
                description="Not now: call_refused (every rule that refuses, when each clears, and the "
                "fallback to offer instead) or busy (the agent is ringing, on a call or offline).",
            ),
            422: UNPROCESSABLE,
        },
    )
    def post(self, request):
        body = self.CallPlaceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        number = self.business_number(body.validated_data["business_number_id"])
        wa_id = customer_wa_id(body.validated_data["to"], number=number)
        agent = self._agent_to_talk(body.validated_data["agent_id"], number=number)
        contact = contact_get_or_create(wa_id=wa_id)
        self.note(contact=contact.pk, agent=agent.pk)
        try:
            call = call_place_outbound(
                business_number=number, contact=contact, agent_id=agent.pk, user_id=agent.user_id
            )
        except CallRefused as refused:
            raise Refused(409, "call_refused", str(refused), **decision_frame(refused.decision)) from None
        except ValidationError as error:  # busy: the agent is ringing or on a call, or offline
            status = Agent.objects.filter(pk=agent.pk).values_list("status", flat=True).get()
            *others, last = sorted(AGENT_CAN_DIAL_FROM)
            raise Refused(
                409, error.code, f"The agent is {status}: calls are placed for an agent who is "
                f"{', '.join(others)} or {last}.",
            ) from None  # fmt: skip
        self.note(call=call.pk)
        call = _with_extras(Call.objects.filter(pk=call.pk)).get()
        response = Response(CallSerializer(_call_data(call, self.caller())).data, status=201)
        response["Location"] = reverse("integrations:call", args=[call.pk])
        return response

    def _agent_to_talk(self, agent_id: int, *, number: BusinessNumber) -> Agent:
        """The agent, who must serve the number; a signed-in agent places calls as themselves only."""
        agent = Agent.objects.filter(pk=agent_id, memberships__queue__business_numbers=number).first()
        if agent is None:
            raise Refused(
                422, "invalid_agent", "The agent is not a member of a queue serving the business number.",
                field="agent_id",
            )  # fmt: skip
        user = self.request.user
        if self.caller().key is None and not user.is_staff and agent.user_id != user.pk:
            raise PermissionDenied("You can place calls only as yourself.")
        return agent


class CallDetailApi(ApiView):
    """GET: one of the caller's calls, with its summary."""

    @extend_schema(responses={200: CallSerializer})
    def get(self, request, pk: int):
        call = get_object_or_404(_with_extras(self.caller().calls()), pk=pk)
        return Response(CallSerializer(_call_data(call, self.caller())).data)


class TranscriptApi(ApiView):
    """GET: a call's transcript: segments in time order, each with its speaker (customer or agent)."""

    class TranscriptSerializer(serializers.Serializer):
        class SegmentSerializer(serializers.Serializer):
            start_s = serializers.FloatField()
            end_s = serializers.FloatField()
            speaker = serializers.ChoiceField(choices=["customer", "agent"])
            text = serializers.CharField()
            confidence = serializers.FloatField()

        call_id = serializers.IntegerField()
        model = serializers.CharField()
        segments = SegmentSerializer(many=True)

    @extend_schema(responses={200: TranscriptSerializer})
    def get(self, request, pk: int):
        caller = self.caller()
        call = get_object_or_404(caller.calls().select_related("contact"), pk=pk)
        transcript = Transcript.objects.filter(call=call).first()
        if transcript is None:
            raise NotFound("The call has no transcript (yet).")
        segments = transcript_for_display(
            transcript=transcript, is_raw=caller.sees_raw_text, country=call.contact.country
        )
        return Response(
            self.TranscriptSerializer(
                {"call_id": call.pk, "model": transcript.model, "segments": segments}
            ).data
        )


class RecordingLinkApi(ApiView):
    """GET: a link to download the call's recording (two channels, customer left, agent right: Ogg Opus,
    or WAV for recordings of earlier versions, as `media_type` says), valid for five minutes and only
    for that recording."""

    class RecordingLinkSerializer(serializers.Serializer):
        url = serializers.CharField()
        expires_at = serializers.DateTimeField()
        media_type = serializers.CharField(help_text="audio/ogg (Ogg Opus) or audio/wav.")

    @extend_schema(responses={200: RecordingLinkSerializer})
    def get(self, request, pk: int):
        call = get_object_or_404(self.caller().calls(), pk=pk)
        recording = Recording.objects.filter(call=call).first()
        if recording is None:
            raise NotFound("The call has no recording.")
        key = self.caller().key
        token = recording_link_token(recording_id=recording.pk, key_id=key.pk if key else None)
        expires_at = timezone.now() + timedelta(seconds=RECORDING_LINK_S)
        url = request.build_absolute_uri(reverse("integrations:recording-download", args=[token]))
        media_type = Recording.MEDIA_TYPES[recording.format]
        return Response(
            self.RecordingLinkSerializer(
                {"url": url, "expires_at": expires_at, "media_type": media_type}
            ).data
        )


def recording_link_token(*, recording_id: int, key_id: int | None) -> str:
    """The signed part of a recording's download link: the recording, and the key that asked for the
    link (None for a signed-in user), so that revoking the key ends its links too."""
    return signing.TimestampSigner(salt=RECORDING_SALT).sign_object(
        {"recording": recording_id, "key": key_id}
    )


def recording_of_link(token: str) -> int | None:
    """The recording a download link names, while it is valid: signed by us, not older than
    RECORDING_LINK_S, and its key (if a key asked for it) not revoked. None otherwise."""
    try:
        claims = signing.TimestampSigner(salt=RECORDING_SALT).unsign_object(token, max_age=RECORDING_LINK_S)
    except (signing.BadSignature, ValueError):  # expired links too
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("recording"), int):
        return None
    key_id = claims.get("key")
    if key_id is not None and not ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).exists():
        return None
    return claims["recording"]


class RecordingDownloadApi(APIView):
    """GET: the recording a link from `…/recording/` names, while the link is valid (the link is
    the credential: no key or session needed; a link a key asked for ends when the key is revoked)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH, pattern=r"^[-A-Za-z0-9_:]+$")],
        responses={
            (status, media_type): OpenApiTypes.BINARY
            for status in (200, 206)
            for media_type in ("audio/ogg", "audio/wav")  # Ogg Opus; WAV for recordings of earlier versions
        },
    )
    def get(self, request, token: str):
        from recordings.views import recording_response

        recording_id = recording_of_link(token)
        if recording_id is None:
            raise NotFound("This link is not valid (any more).")
        recording = get_object_or_404(Recording.objects.select_related("call"), pk=recording_id)
        return recording_response(request, recording)


class CanCallApi(ApiView):
    """GET: may `number` call `contact` now? Every rule that refuses, with its reason and when it
    clears, and the fallback to offer instead (a permission request or a call-us button); what an
    allowed call rests on, and warnings (one more unanswered call revokes the permission)."""

    class FilterSerializer(serializers.Serializer):
        number = IdField(help_text="A business number's id.")
        contact = IdField()

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "CanCall",
                {
                    "allowed": serializers.BooleanField(),
                    "refusals": RefusalSerializer(many=True),
                    "fallback": FallbackSerializer(allow_null=True),
                    "warnings": DecisionWarningSerializer(many=True, help_text=WARNINGS_HELP),
                    "allowed_because": serializers.CharField(
                        allow_blank=True, help_text=ALLOWED_BECAUSE_HELP
                    ),
                },
            )
        },
    )
    def get(self, request):
        query = self.FilterSerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        caller = self.caller()
        number = get_object_or_404(
            BusinessNumber.objects.filter(pk__in=caller.number_ids), pk=query.validated_data["number"]
        )
        contact = get_object_or_404(caller.contacts(), pk=query.validated_data["contact"])
        decision = call_decide(business_number=number, contact=contact)
        return Response({"allowed": decision.is_allowed, **decision_frame(decision)})


class AgentListApi(ApiView):
    """GET: the agents of the caller's numbers' queues and their state now."""

    class AgentStateSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        name = serializers.CharField()
        status = serializers.CharField(help_text="available, ringing, on_call, wrap_up, away or offline")
        status_changed_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(responses={200: AgentStateSerializer(many=True)})
    def get(self, request):
        agents = (
            Agent.objects.filter(memberships__queue__business_numbers__in=self.caller().number_ids)
            .select_related("user")
            .distinct()
            .order_by("pk")
        )
        return Response(
            self.AgentStateSerializer(
                [
                    {
                        "id": agent.pk,
                        "name": agent.name,
                        "status": agent.status,
                        "status_changed_at": agent.status_changed_at,
                    }
                    for agent in agents
                ],
                many=True,
            ).data
        )


class PermissionRequestApi(ApiView):
    """POST: ask the customer for permission to call them: an interactive request, or the configured
    template once the customer's 24-hour window has closed. Refused (409) where a rule forbids asking,
    when the customer already said yes, after a decline until the customer writes or calls again, and
    beyond Meta's limits (1 a day, 2 a week per customer)."""

    required_scope = ApiKey.Scope.CALLS_WRITE
    operations = {"POST": "permission_requests.create"}

    class PermissionRequestSerializer(serializers.Serializer):
        business_number_id = IdField(help_text="The business number that will call.")
        to = serializers.CharField(trim_whitespace=False, max_length=40, help_text=TO_HELP)
        body_text = serializers.CharField(
            trim_whitespace=False,
            required=False,
            allow_blank=True,
            max_length=1024,
            help_text="Why the business wants to call.",
        )

    class PermissionRequestSentSerializer(serializers.Serializer):
        audit_event_id = serializers.IntegerField(help_text="The permission's audit record of the request.")
        message_id = serializers.IntegerField(allow_null=True, help_text="The message in the thread.")
        wa_message_id = serializers.CharField()
        business_number_id = serializers.IntegerField()
        contact_id = serializers.IntegerField()
        permission = serializers.CharField(help_text="The permission's status now: requested, or as it was.")
        sent_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="permission_requests_create",
        request=PermissionRequestSerializer,
        responses={
            201: PermissionRequestSentSerializer,
            409: OpenApiResponse(
                ProblemSerializer,
                description="Not now: granted (the customer said yes already), declined (the customer "
                "declined the last request and has not written or called since: send a call button), "
                "request_quota, window_closed (and no template configured), or a rule no request can "
                "cure (sanctioned_region, calling_disabled, number_restricted, coexistence, "
                "messaging_limit, business_country_blocked, customer_country_blocked, not_mobile).",
            ),
            422: UNPROCESSABLE,
            **WHATSAPP_FAILED,
        },
    )
    def post(self, request):
        body = self.PermissionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        number = self.business_number(body.validated_data["business_number_id"])
        contact = contact_get_or_create(wa_id=customer_wa_id(body.validated_data["to"], number=number))
        self.note(contact=contact.pk)
        try:
            sent = permission_request_send(
                business_number=number, contact=contact, body_text=body.validated_data.get("body_text", ""),
                requested_by_id=None if self.caller().key else request.user.pk,
            )  # fmt: skip
        except ValidationError as error:  # granted, request_quota, sanctioned_region, calling_disabled, …
            raise refused_by_service(error) from None
        except GraphAPIError as error:
            raise whatsapp_failed(error) from None
        wa_message_id = sent.data.get("message_id", "")
        message_id = Message.objects.filter(wa_message_id=wa_message_id).values_list("pk", flat=True).first()
        self.note(permission_audit_event=sent.pk, message=message_id)
        data = {
            "audit_event_id": sent.pk, "message_id": message_id, "wa_message_id": wa_message_id,
            "business_number_id": number.pk, "contact_id": contact.pk, "permission": sent.to_status,
            "sent_at": sent.at,
        }  # fmt: skip
        return Response(self.PermissionRequestSentSerializer(data).data, status=201)
