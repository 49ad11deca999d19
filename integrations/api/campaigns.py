"""Campaigns: one approved template sent from one number to a list (numbers, or a filter of the
contacts), each line screened; started, paused, resumed and cancelled; its progress and its cost."""

from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from calls.selectors import contacts_with_text
from campaigns.costs import CostEstimate, campaign_cost_estimate
from campaigns.models import Campaign, OptIn, Recipient
from campaigns.planning import campaign_plan
from campaigns.selectors import (
    PROGRESS_FIELDS,
    campaign_cost,
    campaign_exclusions,
    campaign_progress,
    campaigns_of,
)
from campaigns.services import ACTIONS, MAX_RECIPIENTS, campaign_create, campaign_rate, opt_ins_record
from integrations.api.base import (
    UNPROCESSABLE,
    ApiView,
    IdField,
    PageSerializer,
    ProblemSerializer,
    Refused,
    TextField,
    paged,
    refused_by_service,
)
from integrations.models import ApiKey
from messaging.models import Template

# A service's refusal codes that name a field of the body (422); the others are 409.
FIELDS_OF_CODES = {
    "template": "template", "send_rate": "send_rate_per_second", "empty_list": "lines", "too_many": "lines",
    "name": "name",
}  # fmt: skip


class CampaignSerializer(serializers.Serializer):
    class CampaignTemplateSerializer(serializers.Serializer):
        name = serializers.CharField()
        language = serializers.CharField()
        category = serializers.CharField(help_text="marketing, utility or authentication.")

    id = serializers.IntegerField()
    name = serializers.CharField()
    business_number_id = serializers.IntegerField()
    template = CampaignTemplateSerializer()
    status = serializers.ChoiceField(choices=Campaign.Status.choices)
    call_button_payload = serializers.CharField(
        help_text="The voice-call button's payload: calls through it carry it as their cta_payload."
    )
    send_rate_per_second = serializers.DecimalField(
        max_digits=8,
        decimal_places=3,
        help_text="The pace it is sent at: its own, or the number's throughput.",
    )
    parameters = serializers.ListField(child=serializers.CharField())
    expected_tap_rate = serializers.DecimalField(max_digits=5, decimal_places=4)
    expected_call_seconds = serializers.IntegerField()
    expected_tap_delay_seconds = serializers.IntegerField()
    target_service_level = serializers.DecimalField(max_digits=4, decimal_places=3)
    target_answer_seconds = serializers.IntegerField()
    agents_on_duty = serializers.IntegerField(allow_null=True)
    throttled_until = serializers.DateTimeField(
        allow_null=True, help_text="WhatsApp's throughput limit slowed it down until then."
    )
    last_error = serializers.CharField(help_text="The last refusal that slowed it down.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    paused_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _campaign_data(campaign: Campaign) -> dict:
    fields = (
        "id", "name", "business_number_id", "status", "call_button_payload", "parameters",
        "expected_tap_rate", "expected_call_seconds", "expected_tap_delay_seconds", "target_service_level",
        "target_answer_seconds",
        "agents_on_duty", "throttled_until", "last_error", "created_at", "started_at", "paused_at",
        "finished_at",
    )  # fmt: skip
    template = campaign.template
    return {
        **{name: getattr(campaign, name) for name in fields},
        "template": {"name": template.name, "language": template.language, "category": template.category},
        "send_rate_per_second": campaign_rate(campaign),
    }


class EstimateSerializer(serializers.Serializer):
    class CountrySerializer(serializers.Serializer):
        country = serializers.CharField(help_text="ISO 3166 code; empty for a number of no known country.")
        messages = serializers.IntegerField()
        price = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
        amount = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
        reason = serializers.CharField(help_text="Why it is not priced, when it is not.")

    currency = serializers.CharField(help_text="The account's billing currency.")
    on = serializers.DateField()
    category = serializers.CharField()
    messages = serializers.IntegerField()
    priced = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=4, help_text="Of the priced messages.")
    countries = CountrySerializer(many=True)
    notes = serializers.ListField(child=serializers.CharField())


class CampaignDetailSerializer(CampaignSerializer):
    class CostSerializer(serializers.Serializer):
        currency = serializers.CharField(help_text="The account's billing currency.")
        messages_charged = serializers.IntegerField()
        messages_free = serializers.IntegerField()
        messages_unpriced = serializers.IntegerField(
            help_text="Charged by Meta, no rate card prices them yet."
        )
        messages_amount = serializers.DecimalField(max_digits=14, decimal_places=4)
        calls = serializers.IntegerField(help_text="Calls placed through its button.")
        calls_answered = serializers.IntegerField()
        call_minutes = serializers.DecimalField(
            max_digits=12,
            decimal_places=2,
            help_text="Talk minutes of those calls: customer-initiated, free.",
        )
        cost_per_answered_call = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)
        cost_per_call_minute = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True)

    exclusions = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Lines left out, by reason: " + ", ".join(Recipient.Exclusion.values) + ".",
    )
    progress = serializers.DictField(
        child=serializers.IntegerField(), help_text="Recipients: " + ", ".join(PROGRESS_FIELDS) + "."
    )
    cost = CostSerializer()
    plan = serializers.JSONField(
        help_text="The capacity plan (Erlang C): figures, the recommended send rate and why, in `lines`. "
        "A draft's or a paused campaign's as of now (with its measured rates once it has them); "
        "otherwise the plan it was started with."
    )
    estimate = EstimateSerializer(allow_null=True, help_text="A draft's cost before sending; null after.")


def _detail(campaign: Campaign) -> dict:
    cost = campaign_cost(campaign)
    is_planned_now = campaign.status in (Campaign.Status.DRAFT, Campaign.Status.PAUSED)
    estimate = campaign_cost_estimate(campaign) if campaign.status == Campaign.Status.DRAFT else None
    return {
        **_campaign_data(campaign),
        "exclusions": campaign_exclusions(campaign),
        "progress": campaign_progress(campaign),
        "cost": cost.__dict__,
        "plan": campaign_plan(campaign).as_json() if is_planned_now else campaign.plan,
        "estimate": _estimate_data(estimate) if estimate else None,
    }


def _estimate_data(estimate: CostEstimate) -> dict:
    return {
        "currency": estimate.currency, "on": estimate.on, "category": estimate.category,
        "messages": estimate.messages, "priced": estimate.priced, "amount": estimate.amount.amount,
        "countries": [
            {"country": row.country, "messages": row.messages,
             "price": row.price.amount if row.price else None,
             "amount": row.amount.amount if row.amount else None, "reason": row.reason}
            for row in estimate.countries
        ],
        "notes": estimate.notes,
    }  # fmt: skip


DECIMALS = {"expected_tap_rate": 4, "target_service_level": 3}


def _decimal(value: float, places: int) -> Decimal:
    """A number of the body as the campaign keeps it (a JSON number, rounded to the field's places)."""
    return Decimal(str(round(value, places))).quantize(Decimal(1).scaleb(-places))


class CampaignsApiMixin:
    def campaigns(self):
        caller = self.caller()
        if not caller.runs_campaigns:
            raise PermissionDenied("Campaigns are run by supervisors.")
        return campaigns_of(caller)


class CampaignListApi(CampaignsApiMixin, ApiView):
    """GET: the campaigns of the caller's numbers, newest first.
    POST (the `messages:write` scope): a draft campaign of an approved template from one number to a
    list: `lines` (phone numbers as the CRM holds them), or `contact_filter` (the contacts whose name or
    number has `q`). Each line is screened: left out, with its reason, when it is not a mobile number,
    listed twice, in a sanctioned country, a customer who stopped the number's marketing messages (a
    marketing template) or one who never agreed to hear from the number (never wrote or called it, and
    no opt-in recorded). Start it with `/start/`."""

    write_scope = ApiKey.Scope.MESSAGES_WRITE
    operations = {"POST": "campaigns.create"}

    class CreateSerializer(serializers.Serializer):
        class CreateTemplateSerializer(serializers.Serializer):
            name = serializers.RegexField(r"^[a-z0-9_]{1,512}$")
            language = serializers.RegexField(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", max_length=16)

        class ContactFilterSerializer(serializers.Serializer):
            q = TextField(allow_blank=True, max_length=64, help_text="Empty: every contact.")

        name = TextField(max_length=200)
        business_number_id = IdField()
        template = CreateTemplateSerializer(help_text="An approved template of the number's account.")
        parameters = serializers.ListField(
            child=TextField(max_length=1024), required=False, max_length=100,
            help_text="The template body's parameters, in order, the same for everyone.",
        )  # fmt: skip
        lines = serializers.ListField(
            child=TextField(max_length=64, allow_blank=True, trim_whitespace=False),
            required=False, max_length=MAX_RECIPIENTS,
            help_text="As listed: international, or national with its 0 in the number's country.",
        )  # fmt: skip
        contact_filter = ContactFilterSerializer(required=False)
        send_rate_per_second = serializers.FloatField(
            required=False, min_value=0, max_value=100000,
            help_text="Messages a second (3 decimals); at most, and by default, the number's throughput.",
        )  # fmt: skip
        expected_tap_rate = serializers.FloatField(
            min_value=0, max_value=1, required=False, help_text="0.02 = 2 % (4 decimals)."
        )
        expected_call_seconds = serializers.IntegerField(min_value=1, max_value=86400, required=False)
        expected_tap_delay_seconds = serializers.IntegerField(
            min_value=1, max_value=30 * 86400, required=False
        )
        target_service_level = serializers.FloatField(
            min_value=0, max_value=1, required=False, help_text="0.8 = 80 % (3 decimals)."
        )
        target_answer_seconds = serializers.IntegerField(min_value=1, max_value=3600, required=False)
        agents_on_duty = serializers.IntegerField(min_value=0, max_value=100000, required=False)

    class FilterSerializer(PageSerializer):
        number = IdField(required=False, help_text="A business number's id.")
        status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)

    @extend_schema(
        operation_id="campaigns_list",
        parameters=[FilterSerializer],
        responses={200: paged("CampaignPage", CampaignSerializer(many=True))},
    )
    def get(self, request):
        campaigns = self.campaigns()
        wanted = self.query(self.FilterSerializer)
        if "number" in wanted:
            campaigns = campaigns.filter(business_number_id=wanted["number"])
        if "status" in wanted:
            campaigns = campaigns.filter(status=wanted["status"])
        return self.page(
            campaigns, ordering=("-created_at", "-id"), serializer=CampaignSerializer, row=_campaign_data
        )

    @extend_schema(
        operation_id="campaigns_create",
        request=CreateSerializer,
        responses={201: CampaignDetailSerializer, 422: UNPROCESSABLE},
    )
    def post(self, request):
        self.campaigns()
        body = self.CreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        if ("lines" in wanted) == ("contact_filter" in wanted):
            raise Refused(422, "list", "Give either `lines` or `contact_filter`.", field="lines")
        number = self.business_number(wanted["business_number_id"])
        template = Template.objects.filter(
            waba_id=number.waba_id, name=wanted["template"]["name"], language=wanted["template"]["language"]
        ).first()
        if template is None:
            raise Refused(
                422, "unknown_template", "The number's account has no such template.", field="template"
            )
        if "lines" in wanted:
            lines = wanted["lines"]
        else:
            of_number = self.caller().within([number.pk])
            matching = contacts_with_text(viewer=of_number, text=wanted["contact_filter"]["q"])
            lines = list(matching.order_by("wa_id").values_list("wa_id", flat=True)[: MAX_RECIPIENTS + 1])
        guesses = {
            name: _decimal(wanted[name], DECIMALS[name]) if name in DECIMALS else wanted[name]
            for name in ("expected_tap_rate", "expected_call_seconds", "expected_tap_delay_seconds",
                         "target_service_level", "target_answer_seconds", "agents_on_duty")
            if name in wanted
        }  # fmt: skip
        rate = wanted.get("send_rate_per_second")
        try:
            campaign = campaign_create(
                name=wanted["name"], business_number=number, template=template, lines=lines,
                created_by=None if self.caller().key else request.user, parameters=wanted.get("parameters"),
                send_rate_per_second=None if rate is None else _decimal(rate, 3), **guesses,
            )  # fmt: skip
        except ValidationError as error:
            raise refused_by_service(error, unprocessable=FIELDS_OF_CODES) from None
        self.note(campaign=campaign.pk)
        campaign = campaigns_of(self.caller()).get(pk=campaign.pk)
        return Response(CampaignDetailSerializer(_detail(campaign)).data, status=201)


class CampaignDetailApi(CampaignsApiMixin, ApiView):
    """GET: a campaign, with its exclusions by reason, its progress (sent, delivered, read, failed,
    replied, tapped the call button, calls answered and abandoned) and its cost against the free
    minutes of the calls it brought."""

    @extend_schema(operation_id="campaigns_retrieve", responses={200: CampaignDetailSerializer})
    def get(self, request, pk: int):
        campaign = get_object_or_404(self.campaigns(), pk=pk)
        return Response(CampaignDetailSerializer(_detail(campaign)).data)


class CampaignActionApi(CampaignsApiMixin, ApiView):
    """POST (the `messages:write` scope) `start`, `pause`, `resume` or `cancel` a campaign: 409
    `campaign_status` when it is not in a state that allows it (a draft is started, a sending one
    paused, a paused one resumed; any unfinished one cancelled)."""

    write_scope = ApiKey.Scope.MESSAGES_WRITE
    operations = {"POST": "campaigns.action"}

    @extend_schema(
        operation_id="campaigns_action",
        request=None,
        responses={
            200: CampaignSerializer,
            409: OpenApiResponse(ProblemSerializer, description="campaign_status: not now."),
        },
    )
    def post(self, request, pk: int, action: str):
        campaign = get_object_or_404(self.campaigns(), pk=pk)
        self.note(campaign=campaign.pk, business_number=campaign.business_number_id)
        try:
            ACTIONS[action](campaign_id=campaign.pk)
        except ValidationError as error:
            raise refused_by_service(error) from None
        campaign.refresh_from_db()
        return Response(CampaignSerializer(_campaign_data(campaign)).data)


class OptInApi(ApiView):
    """POST (the `messages:write` scope): record that customers agreed to hear from a number (a form, a
    shop's till, the CRM's own consent record), so its campaigns reach them. Each number listed is
    read like a campaign's line; the answer says how many were recorded (already recorded ones keep
    their first record) and which lines are not phone numbers."""

    write_scope = ApiKey.Scope.MESSAGES_WRITE
    operations = {"POST": "opt_ins.create"}

    class OptInSerializer(serializers.Serializer):
        business_number_id = IdField()
        lines = serializers.ListField(
            child=TextField(max_length=64, trim_whitespace=False), min_length=1,
            max_length=10000,
            help_text="Their numbers: international, or national with its 0 in the number's country.",
        )  # fmt: skip
        detail = TextField(max_length=300, help_text="Where and how they agreed.")
        at = serializers.DateTimeField(required=False, help_text="When they agreed; now by default.")

    class OptInResultSerializer(serializers.Serializer):
        recorded = serializers.IntegerField(help_text="Customers whose agreement is now on record.")
        invalid = serializers.ListField(
            child=serializers.CharField(), help_text="Lines that are not numbers."
        )

    @extend_schema(
        operation_id="opt_ins_create", request=OptInSerializer, responses={201: OptInResultSerializer}
    )
    def post(self, request):
        if not self.caller().runs_campaigns:
            raise PermissionDenied("Campaigns are run by supervisors.")
        body = self.OptInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wanted = body.validated_data
        number = self.business_number(wanted["business_number_id"])
        recorded, invalid = opt_ins_record(
            business_number=number, lines=wanted["lines"], at=wanted.get("at") or timezone.now(),
            source=OptIn.Source.API, detail=wanted["detail"],
            recorded_by=None if self.caller().key else request.user,
        )  # fmt: skip
        return Response(
            self.OptInResultSerializer({"recorded": recorded, "invalid": invalid}).data, status=201
        )
