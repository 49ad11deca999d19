"""The REST API the CRM reads (`/api/v1/`): contacts, calls with their transcripts, summaries and
recordings, whether a number may call a contact now, and the agents' live state.

Every endpoint answers only about the caller's business numbers (an API key's, or the signed-in
user's queues'; supervisors see all): another business's rows are 404, as if they did not exist.
Transcripts and summaries come with card numbers, national ids, emails and phone numbers masked,
unless the caller may read them raw (the `admin` scope, or the permission for a signed-in user).
"""

from datetime import timedelta

from django.core import signing
from django.db.models import OuterRef, Q, Subquery
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent
from calls.handlers import decision_frame
from calls.models import Call
from compliance.decisions import call_decide
from compliance.models import CallPermission
from integrations.authentication import Caller, HasScope, caller_of
from integrations.models import ApiKey
from messaging.models import Contact, ConversationWindow
from recordings.models import Recording, Summary, Transcript
from recordings.selectors import summary_for_display, transcript_for_display
from whatsapp.models import BusinessNumber

RECORDING_LINK_S = 300  # a recording's download link works this long
RECORDING_SALT = "integrations.recording-link"


class ApiView(APIView):
    """An endpoint of the CRM API: a key with `required_scope`, or a signed-in dashboard user."""

    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.READ

    def caller(self) -> Caller:
        if not hasattr(self, "_caller"):
            self._caller = caller_of(self.request)
        return self._caller


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
    """GET: the caller's calls, newest first, filtered; cursor pages (`next` links)."""

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
                    "refusals": serializers.ListField(child=serializers.DictField()),
                    "fallback": serializers.DictField(allow_null=True),
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
