"""The REST API of the CRM (`/api/v1/`). It reads contacts, calls with their transcripts, summaries
and recordings, messages, charges, whether a number may call a contact now, and the agents' live
state; it places calls, asks customers' permission to call them and sends messages.

Every endpoint answers only about the caller's business numbers (an API key's, or the signed-in
user's queues'; supervisors see all): another business's rows are 404, as if they did not exist.
Transcripts, summaries and messages come with card numbers, national ids, emails and phone numbers
masked, unless the caller may read them raw (the `admin` scope, or the permission for a signed-in
user).

Writes answer 201 with what they did, or say why not with a `code` the CRM can branch on and a
`detail` for people: 409 when a rule refuses it now (compliance, the agent busy, the messaging
window), 422 when a value names nothing usable (an unparseable number, an agent who does not serve
the number, an unknown template), 502 when WhatsApp did not take it; a body that is not what the
schema says is 400, each field with what is wrong. Every write is recorded (`ApiWrite`) with its
answer, refusals included, and the answer carries the record's `X-Request-Id`.
"""

import hashlib
import ipaddress
import re
from datetime import timedelta

import phonenumbers
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, IntegerField, OuterRef, Q, Subquery, When
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from calls.handlers import decision_frame
from calls.models import Call
from calls.outbound import AGENT_CAN_DIAL_FROM, CallRefused, call_place_outbound
from compliance.decisions import call_decide
from compliance.models import CallPermission
from compliance.services import call_button_send, permission_request_send
from integrations.authentication import Caller, HasScope, caller_of
from integrations.models import ApiKey, ApiWrite
from messaging.api import CanSeeCosts
from messaging.models import Charge, Contact, ConversationWindow, Message, RateCard, Template
from messaging.selectors import SendOptions, send_options
from messaging.services import (
    contact_get_or_create,
    message_send_template,
    message_send_text,
    wa_id_from_text,
)
from recordings.models import Recording, Summary, Transcript
from recordings.redaction import redact
from recordings.selectors import summary_for_display, transcript_for_display
from whatsapp.errors import GraphAPIError
from whatsapp.models import BusinessNumber

RECORDING_LINK_S = 300  # a recording's download link works this long
RECORDING_SALT = "integrations.recording-link"
# Not recorded as writes: a request with no caller to attribute it to, and a key over its rate
# (a row each would undo what the limit protects).
UNRECORDED_STATUSES = frozenset({401, 429})


class Refused(Exception):
    """The API understood the request and will not carry it out: the answer's status, a `code` the
    CRM can branch on, a sentence for people (`detail`), and whatever else explains it."""

    def __init__(self, status: int, code: str, detail: str, **extra) -> None:
        super().__init__(detail)
        self.status_code = status
        self.body = {"code": code, "detail": detail, **extra}


class ApiView(APIView):
    """An endpoint of the CRM API: a key with `required_scope` (`write_scope` for the methods that
    change something, where it has its own), or a signed-in dashboard user.

    A request that asks for a change runs in one transaction with its `ApiWrite` row, whatever the
    answer (the row says who asked what, and how it was answered); `operations` names what each such
    method does, and the view `note`s the ids it acted on.
    """

    permission_classes = [HasScope]
    parser_classes = [JSONParser]  # bodies are JSON, as answers are: nested objects and lists read alike
    required_scope = ApiKey.Scope.READ
    write_scope: str | None = None
    operations: dict[str, str] = {}

    def caller(self) -> Caller:
        if not hasattr(self, "_caller"):
            self._caller = caller_of(self.request)
        return self._caller

    def dispatch(self, request, *args, **kwargs):
        self.target: dict[str, int] = {}
        if request.method in SAFE_METHODS:
            return super().dispatch(request, *args, **kwargs)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs) -> None:
        if request.method not in SAFE_METHODS and self.write_scope:
            self.required_scope = self.write_scope  # what HasScope checks
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, Refused):
            return Response(exc.body, status=exc.status_code)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in SAFE_METHODS and response.status_code not in UNRECORDED_STATUSES:
            write = _write_record(
                request, response, operation=self.operations.get(request.method, ""), target=self.target
            )
            response["X-Request-Id"] = str(write.request_id)
        return response

    def note(self, **ids: int) -> None:
        """What the request acts on, for its ApiWrite row: `note(contact=…, call=…)`."""
        self.target.update(ids)

    def business_number(self, number_id: int) -> BusinessNumber:
        """One of the caller's numbers; any other is 404, as if it did not exist."""
        number = BusinessNumber.objects.filter(pk__in=self.caller().number_ids, pk=number_id).first()
        if number is None:
            raise NotFound("No such business number.")
        self.note(business_number=number.pk)
        return number


def _write_record(request, response, *, operation: str, target: dict) -> ApiWrite:
    is_key = isinstance(request.auth, ApiKey)
    user = request.user if not is_key and getattr(request.user, "pk", None) else None
    return ApiWrite.objects.create(
        at=timezone.now(),
        key=request.auth if is_key else None,
        user=user,
        method=request.method,
        path=request.path[:255],
        operation=operation,
        status_code=response.status_code,
        target=target,
        refusal_code=_refusal_code(response)[:255],
        client_ip=_client_ip(request),
    )


def _refusal_code(response) -> str:
    """Why a write was refused: the rules that refused a call, the answer's `code`, or DRF's own
    (permission_denied, not_found, parse_error, …; `invalid` for fields in error)."""
    if response.status_code < 400:
        return ""
    data = getattr(response, "data", None)
    if not isinstance(data, dict):
        return "invalid"
    if data.get("refusals"):
        return ",".join(refusal["code"] for refusal in data["refusals"])
    if isinstance(data.get("code"), str):
        return data["code"]
    if "detail" in data:
        return getattr(data["detail"], "code", "") or "error"
    return "invalid"


def _client_ip(request) -> str | None:
    """The client's address as the server saw it (the web server resolves trusted proxies' headers)."""
    address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


class Page(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class PageSerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, help_text="From a page's `next` or `previous` link.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200)


def paged(name: str, serializer: serializers.Serializer):
    """A cursor page of `serializer` rows, as the schema describes it."""
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null on the last."),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer,
        },
    )


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="What went wrong, for the CRM to branch on.")
    detail = serializers.CharField(help_text="The same, for people.")


class InvalidValueSerializer(ProblemSerializer):
    field = serializers.CharField(help_text="The input field whose value names nothing usable.")


class RefusalSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="The rule, e.g. no_permission or unanswered_strikes.")
    reason = serializers.CharField()
    clears_at = serializers.DateTimeField(allow_null=True, help_text="When it stops refusing, if it will.")


class FallbackSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="permission_request, call_button, or empty when nothing else can be offered."
    )
    reason = serializers.CharField()


class CallRefusedSerializer(ProblemSerializer):
    refusals = RefusalSerializer(many=True, required=False, help_text="With call_refused: every rule.")
    fallback = FallbackSerializer(
        allow_null=True, required=False, help_text="With call_refused: what to offer."
    )


UNPROCESSABLE = OpenApiResponse(
    InvalidValueSerializer,
    description="A value names nothing usable, `field` says which: invalid_customer (not a phone number), "
    "invalid_agent (not serving the number), unknown_template, template (not approved), idempotency_key "
    "(used for another message, or header and body differ).",
)
WHATSAPP_FAILED = {
    502: OpenApiResponse(ProblemSerializer, description="WhatsApp did not take it (whatsapp_error).")
}
TO_HELP = (
    "The customer's number: international (+44 7700 900123, or 447700900123 as WhatsApp writes it), "
    "or national with its leading 0 (07700 900123) in the business number's country."
)


def customer_wa_id(text: str, *, number: BusinessNumber) -> str:
    """The customer's WhatsApp id (E.164 digits) from a number as a CRM holds it: international, or
    national in the business number's country when it starts with its trunk 0; 422 when neither."""
    text = text.strip()
    if text.startswith("0") and number.country:
        try:
            national = phonenumbers.parse(text, number.country)
        except phonenumbers.NumberParseException:
            national = None
        if national is not None and phonenumbers.is_possible_number(national):
            return phonenumbers.format_number(national, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")
    try:
        return wa_id_from_text(text)
    except ValidationError:
        raise Refused(
            422,
            "invalid_customer",
            f"{text!r} is not a phone number: write it as +44 7700 900123.",
            field="to",
        ) from None


def refused_by_service(error: ValidationError, *, unprocessable: dict[str, str] | None = None) -> Refused:
    """A service's refusal (a ValidationError with a code) as the API answers it: 422 naming the field
    for the codes in `unprocessable` ({code: field}), 409 for the rest (a rule refuses it now)."""
    code = error.code or "refused"
    field = (unprocessable or {}).get(code)
    if field:
        return Refused(422, code, error.messages[0], field=field)
    return Refused(409, code, error.messages[0])


def whatsapp_failed(error: GraphAPIError) -> Refused:
    return Refused(502, "whatsapp_error", f"WhatsApp did not take it: {error}")


# --- Contacts -------------------------------------------------------------------------------------


def visible_contacts(caller: Caller):
    ids = caller.number_ids
    return Contact.objects.filter(
        Q(calls__business_number_id__in=ids)
        | Q(messages__business_number_id__in=ids)
        | Q(windows__business_number_id__in=ids)
        | Q(call_permissions__business_number_id__in=ids)
    ).distinct()


class ContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wa_id = serializers.CharField(help_text="WhatsApp id: the number in international format, without '+'.")
    name = serializers.CharField()
    country = serializers.CharField()
    created_at = serializers.DateTimeField()


class ContactListApi(ApiView):
    """GET: the contacts of the caller's numbers, newest first; `q` finds a name or number."""

    class FilterSerializer(PageSerializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=64)

    @extend_schema(
        operation_id="contacts_list",
        parameters=[FilterSerializer],
        responses={200: paged("ContactPage", ContactSerializer(many=True))},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        contacts = visible_contacts(self.caller())
        if text := filters.validated_data.get("q", "").strip():
            contacts = contacts.filter(
                Q(name__icontains=text) | Q(wa_id__contains=text.lstrip("+").replace(" ", ""))
            )
        paginator = Page()
        paginator.ordering = ("-created_at", "-id")
        page = paginator.paginate_queryset(contacts, request, view=self)
        return paginator.get_paginated_response(ContactSerializer(page, many=True).data)


class ContactDetailApi(ApiView):
    """GET: a contact, with each of the caller's numbers' call permission and conversation windows."""

    class ContactStateSerializer(ContactSerializer):
        class NumberStateSerializer(serializers.Serializer):
            business_number_id = serializers.IntegerField()
            permission = serializers.CharField(
                help_text="none, requested, temporary, permanent, revoked, expired, rejected"
            )
            permission_expires_at = serializers.DateTimeField(allow_null=True)
            customer_service_until = serializers.DateTimeField(allow_null=True)
            free_entry_until = serializers.DateTimeField(allow_null=True)

        numbers = NumberStateSerializer(many=True)

    @extend_schema(responses={200: ContactStateSerializer})
    def get(self, request, pk: int):
        caller = self.caller()
        contact = get_object_or_404(visible_contacts(caller), pk=pk)
        permissions = {
            permission.business_number_id: permission
            for permission in CallPermission.objects.filter(
                contact=contact, business_number_id__in=caller.number_ids
            )
        }
        windows = {
            window.business_number_id: window
            for window in ConversationWindow.objects.filter(
                contact=contact, business_number_id__in=caller.number_ids
            )
        }
        numbers = []
        for number_id in sorted(set(permissions) | set(windows)):
            permission, window = permissions.get(number_id), windows.get(number_id)
            numbers.append(
                {
                    "business_number_id": number_id,
                    "permission": permission.status if permission else CallPermission.Status.NONE,
                    "permission_expires_at": permission.meta_expires_at if permission else None,
                    "customer_service_until": window.customer_service_until if window else None,
                    "free_entry_until": window.free_entry_until if window else None,
                }
            )
        data = {**ContactSerializer(contact).data, "numbers": numbers}
        return Response(self.ContactStateSerializer(data).data)


# --- Calls ----------------------------------------------------------------------------------------


def visible_calls(caller: Caller):
    return Call.objects.filter(business_number_id__in=caller.number_ids)


class SummarySerializer(serializers.Serializer):
    paragraph = serializers.CharField()
    intent = serializers.CharField()
    outcome = serializers.CharField()
    sentiment = serializers.CharField()
    sentiment_score = serializers.FloatField()
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
    "started_at", "connected_at", "ended_at", "end_reason", "talk_seconds", "disposition",
)  # fmt: skip


def _call_data(call: Call, caller: Caller) -> dict:
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
        business_number_id = serializers.IntegerField(help_text="The business number that calls.")
        to = serializers.CharField(max_length=40, help_text=TO_HELP)
        agent_id = serializers.IntegerField(
            help_text="The agent who will talk: a member of a queue serving the number, not on another call."
        )

    class FilterSerializer(PageSerializer):
        number = serializers.IntegerField(required=False, help_text="A business number's id.")
        contact = serializers.IntegerField(required=False)
        agent = serializers.IntegerField(required=False)
        queue = serializers.IntegerField(required=False)
        direction = serializers.ChoiceField(choices=Call.Direction.choices, required=False)
        status = serializers.ChoiceField(choices=Call.Status.choices, required=False)
        since = serializers.DateTimeField(required=False, help_text="Started at or after.")
        until = serializers.DateTimeField(required=False, help_text="Started before.")
        sentiment = serializers.ChoiceField(choices=Summary.Sentiment.choices, required=False)
        outcome = serializers.CharField(required=False, max_length=32)

    @extend_schema(
        operation_id="calls_list",
        parameters=[FilterSerializer],
        responses={200: paged("CallPage", CallSerializer(many=True))},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        calls = visible_calls(self.caller())
        for name, lookup in CALL_FILTERS.items():
            if name in wanted:
                calls = calls.filter(**{lookup: wanted[name]})
        paginator = Page()
        paginator.ordering = ("-started_at", "-id")
        page = paginator.paginate_queryset(_with_extras(calls), request, view=self)
        caller = self.caller()
        return paginator.get_paginated_response(
            CallSerializer([_call_data(call, caller) for call in page], many=True).data
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
        call = get_object_or_404(_with_extras(visible_calls(self.caller())), pk=pk)
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
        call = get_object_or_404(visible_calls(caller).select_related("contact"), pk=pk)
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
    """GET: a link to download the call's recording (WAV, customer left, agent right), valid for
    five minutes and only for that recording."""

    class RecordingLinkSerializer(serializers.Serializer):
        url = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(responses={200: RecordingLinkSerializer})
    def get(self, request, pk: int):
        call = get_object_or_404(visible_calls(self.caller()), pk=pk)
        recording = Recording.objects.filter(call=call).first()
        if recording is None:
            raise NotFound("The call has no recording.")
        token = signing.TimestampSigner(salt=RECORDING_SALT).sign(str(recording.pk))
        expires_at = timezone.now() + timedelta(seconds=RECORDING_LINK_S)
        url = request.build_absolute_uri(reverse("integrations:recording-download", args=[token]))
        return Response(self.RecordingLinkSerializer({"url": url, "expires_at": expires_at}).data)


class RecordingDownloadApi(APIView):
    """GET: the recording a link from `…/recording/` names, while the link is valid (the link is
    the credential: no key or session needed)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("token", str, OpenApiParameter.PATH, pattern=r"^[-A-Za-z0-9_:]+$")],
        responses={(200, "audio/wav"): OpenApiTypes.BINARY, (206, "audio/wav"): OpenApiTypes.BINARY},
    )
    def get(self, request, token: str):
        from recordings.views import recording_response

        try:
            recording_id = signing.TimestampSigner(salt=RECORDING_SALT).unsign(
                token, max_age=RECORDING_LINK_S
            )
        except signing.BadSignature as error:  # expired links too
            raise NotFound("This link is not valid (any more).") from error
        recording = get_object_or_404(Recording.objects.select_related("call"), pk=int(recording_id))
        return recording_response(request, recording)


# --- Compliance and agents ------------------------------------------------------------------------


class CanCallApi(ApiView):
    """GET: may `number` call `contact` now? Every rule that refuses, with its reason and when it
    clears, and the fallback to offer instead (a permission request or a call-us button)."""

    class FilterSerializer(serializers.Serializer):
        number = serializers.IntegerField(help_text="A business number's id.")
        contact = serializers.IntegerField()

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "CanCall",
                {
                    "allowed": serializers.BooleanField(),
                    "refusals": RefusalSerializer(many=True),
                    "fallback": FallbackSerializer(allow_null=True),
                },
            )
        },
    )
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        caller = self.caller()
        number = get_object_or_404(
            BusinessNumber.objects.filter(pk__in=caller.number_ids), pk=query.validated_data["number"]
        )
        contact = get_object_or_404(visible_contacts(caller), pk=query.validated_data["contact"])
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
    when the customer already said yes, and beyond Meta's limits (1 a day, 2 a week per customer)."""

    required_scope = ApiKey.Scope.CALLS_WRITE
    operations = {"POST": "permission_requests.create"}

    class PermissionRequestSerializer(serializers.Serializer):
        business_number_id = serializers.IntegerField(help_text="The business number that will call.")
        to = serializers.CharField(max_length=40, help_text=TO_HELP)
        body_text = serializers.CharField(
            required=False, allow_blank=True, max_length=1024, help_text="Why the business wants to call."
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
                description="Not now: granted (the customer said yes already), request_quota, window_closed "
                "(and no template configured), or a rule no request can cure (sanctioned_region, "
                "calling_disabled, number_restricted, coexistence, messaging_limit, "
                "business_country_blocked, customer_country_blocked).",
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


# --- Messages -------------------------------------------------------------------------------------


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    business_number_id = serializers.IntegerField()
    contact_id = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=Message.Direction.choices)
    type = serializers.CharField(help_text="Meta's type: text, template, interactive, …")
    text = serializers.CharField(help_text="The text, or the template's name.")
    status = serializers.ChoiceField(choices=Message.Status.choices)
    error = serializers.CharField(help_text="Meta's reason, when it failed.")
    wa_message_id = serializers.CharField(allow_null=True, help_text="Meta's id, once Meta took it.")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)


MESSAGE_FIELDS = (
    "id", "business_number_id", "contact_id", "direction", "status", "error", "wa_message_id", "created_at",
    "sent_at", "delivered_at", "read_at", "failed_at",
)  # fmt: skip


def _message_data(message: Message, caller: Caller) -> dict:
    text = (
        message.text if caller.sees_raw_text else redact(message.text, region=message.contact.country or None)
    )
    return {
        **{name: getattr(message, name) for name in MESSAGE_FIELDS},
        "type": message.message_type,
        "text": text,
    }


class WindowSerializer(serializers.Serializer):
    customer_service_until = serializers.DateTimeField(
        allow_null=True,
        help_text="Free-form messages until then (24 h from the customer's last message or call).",
    )
    is_service_window_open = serializers.BooleanField()
    free_entry_until = serializers.DateTimeField(
        allow_null=True, help_text="Every message is free until then (a click-to-WhatsApp ad's window)."
    )
    is_free_entry_open = serializers.BooleanField()


class PriceSerializer(serializers.Serializer):
    category = serializers.CharField(
        help_text="Meta's pricing category: marketing, utility, authentication, service."
    )
    pricing_type = serializers.CharField(
        help_text="regular (charged), free_customer_service or free_entry_point."
    )
    billing = serializers.ChoiceField(
        choices=["free", "charged", "unpriced"],
        help_text="unpriced: charged by Meta, but no rate card row prices it yet.",
    )
    amount = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    currency = serializers.CharField(help_text="The account's billing currency.")


class MessageRefusedSerializer(ProblemSerializer):
    window = WindowSerializer(required=False, help_text="With outside_service_window: the windows now.")


def _window(options: SendOptions) -> dict:
    return {
        "customer_service_until": options.customer_service_until,
        "is_service_window_open": options.is_service_window_open,
        "free_entry_until": options.free_entry_until,
        "is_free_entry_open": options.is_free_entry_open,
    }


def _price(options: SendOptions, category: str) -> dict:
    """What a message of `category` costs by the windows and rate cards when it was sent."""
    quote = options.quotes.get(category)
    if quote is None:
        return {"category": category, "pricing_type": Charge.PricingType.REGULAR, "billing": "unpriced",
                "amount": None, "currency": options.currency}  # fmt: skip
    if quote.amount is None:
        billing = "unpriced"
    elif quote.pricing_type == Charge.PricingType.REGULAR:
        billing = "charged"
    else:
        billing = "free"
    amount = None if quote.amount is None else quote.amount.amount
    return {"category": category, "pricing_type": quote.pricing_type, "billing": billing, "amount": amount,
            "currency": options.currency}  # fmt: skip


def _category_sent(message: Message, *, waba_id: str) -> str:
    """The pricing category of a message the compliance fallback sent: a free-form one is a service
    message; once the window has closed it went as the configured template, priced by its category."""
    if message.message_type != "template":
        return RateCard.Category.SERVICE
    sent = (message.request or {}).get("template", {})
    template = Template.objects.filter(
        waba_id=waba_id, name=sent.get("name", ""), language=sent.get("language", {}).get("code", "")
    ).first()
    return template.category if template else ""


MESSAGE_TYPES = ("text", "template", "call_button")
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"  # printable ASCII, as an HTTP header carries it


class MessageSendSerializer(serializers.Serializer):
    """What every message to send says; each type adds its own (`SEND_BODIES`)."""

    business_number_id = serializers.IntegerField()
    to = serializers.CharField(max_length=40, help_text=TO_HELP)
    type = serializers.ChoiceField(choices=MESSAGE_TYPES)
    idempotency_key = serializers.RegexField(
        IDEMPOTENCY_KEY_PATTERN, required=False, help_text="Or the Idempotency-Key header."
    )


class TextSendSerializer(MessageSendSerializer):
    type = serializers.ChoiceField(choices=["text"])
    text = serializers.CharField(max_length=4096, help_text="Only inside the customer's 24-hour window.")


class TemplateSendSerializer(MessageSendSerializer):
    class MessageTemplateSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=512)
        language = serializers.CharField(max_length=16, help_text="Meta's language code, e.g. en_US.")

    type = serializers.ChoiceField(choices=["template"])
    template = MessageTemplateSerializer(help_text="An approved template of the number's account.")
    parameters = serializers.ListField(
        child=serializers.CharField(max_length=1024), required=False, max_length=100,
        help_text="The template body's parameters, in order.",
    )  # fmt: skip


class CallButtonSendSerializer(MessageSendSerializer):
    """A "Call us" button: free-form inside the window, else the configured template; sent at once,
    so never under an idempotency key."""

    type = serializers.ChoiceField(choices=["call_button"])


SEND_BODIES = {
    "text": TextSendSerializer,
    "template": TemplateSendSerializer,
    "call_button": CallButtonSendSerializer,
}


class MessageListApi(ApiView):
    """GET: messages of the caller's numbers, both ways, newest first; cursor pages.
    POST (the `messages:write` scope): send a text (inside the customer's 24-hour window only), an
    approved template, or a "Call us" button. The answer says the windows and what the message
    costs. A text or template sent again under the same idempotency key (the body's or the
    `Idempotency-Key` header) is the same message, sent once."""

    write_scope = ApiKey.Scope.MESSAGES_WRITE
    operations = {"POST": "messages.create"}

    class FilterSerializer(PageSerializer):
        contact = serializers.IntegerField(required=False)
        number = serializers.IntegerField(required=False, help_text="A business number's id.")
        direction = serializers.ChoiceField(choices=Message.Direction.choices, required=False)

    class MessageSentSerializer(MessageSerializer):
        window = WindowSerializer(help_text="The windows when it was sent.")
        price = PriceSerializer(help_text="What Meta charges for it, by the windows and the rate cards.")

    @extend_schema(
        operation_id="messages_list",
        parameters=[FilterSerializer],
        responses={200: paged("MessagePage", MessageSerializer(many=True))},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        messages = Message.objects.filter(business_number_id__in=self.caller().number_ids)
        for name, lookup in (
            ("contact", "contact_id"),
            ("number", "business_number_id"),
            ("direction", "direction"),
        ):
            if name in wanted:
                messages = messages.filter(**{lookup: wanted[name]})
        paginator = Page()
        paginator.ordering = ("-created_at", "-id")
        page = paginator.paginate_queryset(messages.select_related("contact"), request, view=self)
        caller = self.caller()
        return paginator.get_paginated_response(
            MessageSerializer([_message_data(message, caller) for message in page], many=True).data
        )

    @extend_schema(
        operation_id="messages_create",
        request=PolymorphicProxySerializer(
            "MessageSend", serializers=SEND_BODIES, resource_type_field_name="type"
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, pattern=IDEMPOTENCY_KEY_PATTERN,
                description="Sending again under the same key answers with the same message, sent once.",
            )
        ],
        responses={
            201: MessageSentSerializer,
            409: OpenApiResponse(
                MessageRefusedSerializer,
                description="Not now: outside_service_window (a text, with the windows: send a template), "
                "window_closed (a call button, and no template configured), no_fallback.",
            ),
            422: UNPROCESSABLE,
            **WHATSAPP_FAILED,
        },
    )  # fmt: skip
    def post(self, request):
        kind = request.data.get("type") if isinstance(request.data, dict) else None
        body = SEND_BODIES.get(kind if isinstance(kind, str) else "", MessageSendSerializer)(
            data=request.data
        )
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        key = self._idempotency_key(wanted.get("idempotency_key", ""))
        number = self.business_number(wanted["business_number_id"])
        wa_id = customer_wa_id(wanted["to"], number=number)
        template = None
        if wanted["type"] == "template":
            template = Template.objects.filter(
                waba_id=number.waba_id,
                name=wanted["template"]["name"],
                language=wanted["template"]["language"],
            ).first()
            if template is None:
                raise Refused(
                    422, "unknown_template", "The number's account has no such template.", field="template"
                )
        if wanted["type"] == "call_button" and key:
            raise Refused(
                422, "idempotency_key", "A call button is sent at once, never under an idempotency key.",
                field="idempotency_key",
            )  # fmt: skip
        contact = contact_get_or_create(wa_id=wa_id)
        self.note(contact=contact.pk)
        options = send_options(business_number=number, contact=contact)
        sent_by = None if self.caller().key else request.user
        try:
            if wanted["type"] == "text":
                message = message_send_text(
                    business_number=number, contact=contact, text=wanted["text"], idempotency_key=key,
                    sent_by=sent_by,
                )  # fmt: skip
            elif template is not None:
                message = message_send_template(
                    business_number=number, contact=contact, template=template,
                    parameters=wanted.get("parameters"), idempotency_key=key, sent_by=sent_by,
                )  # fmt: skip
            else:
                wa_message_id = call_button_send(business_number=number, contact=contact)
                message = Message.objects.get(wa_message_id=wa_message_id)
        except ValidationError as error:
            refused = refused_by_service(
                error, unprocessable={"template": "template", "idempotency_key": "idempotency_key"}
            )
            if error.code == "outside_service_window":
                refused.body["window"] = WindowSerializer(_window(options)).data
            raise refused from None
        except GraphAPIError as error:
            raise whatsapp_failed(error) from None
        self.note(message=message.pk)
        message.contact = contact
        category = template.category if template else _category_sent(message, waba_id=number.waba_id)
        data = {
            **_message_data(message, self.caller()),
            "window": _window(options),
            "price": _price(options, category),
        }
        return Response(self.MessageSentSerializer(data).data, status=201)

    def _idempotency_key(self, in_body: str) -> str:
        """The caller's key (header or body) as stored: one CRM's keys never meet another's."""
        in_header = self.request.headers.get("Idempotency-Key", "")
        if in_header and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, in_header):
            raise serializers.ValidationError(
                {"Idempotency-Key": ["Printable ASCII, 255 characters at most."]}
            )
        if in_header and in_body and in_header != in_body:
            raise Refused(
                422, "idempotency_key", "The Idempotency-Key header and the body's idempotency_key differ.",
                field="idempotency_key",
            )  # fmt: skip
        given = in_header or in_body
        if not given:
            return ""
        caller = self.caller()
        owner = f"key:{caller.key.pk}" if caller.key else f"user:{self.request.user.pk}"
        return hashlib.sha256(f"{owner}:{given}".encode()).hexdigest()  # 64 characters, as stored


# --- Charges --------------------------------------------------------------------------------------


class ChargeListApi(ApiView):
    """GET (the `admin` scope, or a user who may view charges): what Meta charges the caller's
    numbers, one row per delivered template message or connected call, newest first; cursor pages."""

    required_scope = ApiKey.Scope.ADMIN
    permission_classes = [HasScope, CanSeeCosts]

    class FilterSerializer(PageSerializer):
        since = serializers.DateField(required=False, help_text="Billed on or after (a UTC day).")
        until = serializers.DateField(required=False, help_text="Billed on or before.")
        kind = serializers.ChoiceField(choices=Charge.Kind.choices, required=False)
        contact = serializers.IntegerField(required=False)
        number = serializers.IntegerField(required=False, help_text="A business number's id.")

    class ChargeSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.ChoiceField(choices=Charge.Kind.choices)
        reference = serializers.CharField(help_text="The WhatsApp message id or call id.")
        business_number_id = serializers.IntegerField()
        contact_id = serializers.IntegerField(allow_null=True)
        country = serializers.CharField()
        category = serializers.CharField()
        pricing_type = serializers.CharField()
        billed_on = serializers.DateField()
        quantity = serializers.IntegerField(help_text="1 for a message; a call's 6-second pulses.")
        duration_seconds = serializers.IntegerField(allow_null=True)
        amount = serializers.DecimalField(
            max_digits=14,
            decimal_places=4,
            allow_null=True,
            help_text="null: no rate card row prices it yet.",
        )
        currency = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="charges_list",
        parameters=[FilterSerializer],
        responses={200: paged("ChargePage", ChargeSerializer(many=True))},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        charges = Charge.objects.filter(business_number_id__in=self.caller().number_ids)
        for name, lookup in (("since", "billed_on__gte"), ("until", "billed_on__lte"), ("kind", "kind"),
                             ("number", "business_number_id")):  # fmt: skip
            if name in wanted:
                charges = charges.filter(**{lookup: wanted[name]})
        if "contact" in wanted:
            charges = charges.filter(_charges_of_contact(wanted["contact"]))
        paginator = Page()
        paginator.ordering = ("-created_at", "-id")
        page = paginator.paginate_queryset(
            charges.annotate(contact_id=_contact_charged()), request, view=self
        )
        return paginator.get_paginated_response(
            self.ChargeSerializer([_charge_data(charge) for charge in page], many=True).data
        )


def _charges_of_contact(contact_id: int) -> Q:
    """A contact's charges: those of its messages and of its calls (a charge names either by Meta's id)."""
    message_ids = Message.objects.filter(contact_id=contact_id, wa_message_id__isnull=False)
    return Q(kind=Charge.Kind.MESSAGE, reference__in=message_ids.values("wa_message_id")) | Q(
        kind=Charge.Kind.CALL, reference__in=Call.objects.filter(contact_id=contact_id).values("wa_call_id")
    )


def _contact_charged() -> Case:
    """The contact of the message or call a charge names."""
    of_message = Message.objects.filter(wa_message_id=OuterRef("reference")).values("contact_id")[:1]
    of_call = Call.objects.filter(wa_call_id=OuterRef("reference")).values("contact_id")[:1]
    return Case(
        When(kind=Charge.Kind.MESSAGE, then=Subquery(of_message)),
        When(kind=Charge.Kind.CALL, then=Subquery(of_call)),
        output_field=IntegerField(),
    )


def _charge_data(charge: Charge) -> dict:
    return {
        "id": charge.pk, "kind": charge.kind, "reference": charge.reference,
        "business_number_id": charge.business_number_id, "contact_id": charge.contact_id,
        "country": charge.country, "category": charge.category, "pricing_type": charge.pricing_type,
        "billed_on": charge.billed_on, "quantity": charge.quantity,
        "duration_seconds": charge.duration_seconds,
        "amount": None if charge.amount is None else charge.amount.amount,
        "currency": str(charge.amount_currency or ""), "created_at": charge.created_at,
    }  # fmt: skip
