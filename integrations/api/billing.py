"""What the caller's numbers cost: the charges, and the billing reports (by day, category and
country; calls by day and country). Users who may view charges see the whole account, as on the
costs page; an API key with the `admin` scope sees its own business numbers' charges only."""

from django.db.models import Case, IntegerField, OuterRef, Q, Subquery, When
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from calls.models import Call
from integrations.api.base import ApiView, IdField, PageSerializer, filtered, paged, query_of
from integrations.authentication import HasScope
from integrations.models import ApiKey
from messaging.models import Charge, Message
from messaging.reports import PeriodSerializer, report_period
from messaging.selectors import (
    call_cost_totals,
    call_costs_by_day,
    spend_by_day,
    spend_totals,
    unpriced_groups,
)


class CanSeeCosts(permissions.BasePermission):
    """A user with the permission to view charges, or an API key with the `admin` scope."""

    message = "Seeing what the account spends needs the permission to view charges."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiKey):
            self.message = "This API key lacks the 'admin' scope."
            return ApiKey.Scope.ADMIN in request.auth.scopes
        return bool(request.user and request.user.has_perm("messaging.view_charge"))


def charges_seen(request) -> frozenset[int] | None:
    """The business numbers whose charges the request sees: an API key's own; None for a user who may
    view charges (the whole account)."""
    if isinstance(request.auth, ApiKey):
        return frozenset(request.auth.business_numbers.values_list("pk", flat=True))
    return None


def report_schema(
    name: str,
    row: type[serializers.Serializer],
    total: type[serializers.Serializer],
    **more: serializers.Field,
):
    """The OpenAPI description of a report: its period, its rows, its totals per currency (and `more`)."""
    fields = {"since": serializers.DateField(), "until": serializers.DateField()}
    fields |= {"rows": row(many=True), "totals": total(many=True)} | more
    return extend_schema(parameters=[PeriodSerializer], responses=inline_serializer(name, fields))


def report_response(request, *, rows_of, totals_of, row, total, more=None) -> Response:
    """A report for the period the query asks, of the charges the request sees:
    `rows_of(since, until, business_number_ids)`, `totals_of(rows)`, and `more(rows)`'s fields."""
    since, until = report_period(query_of(request))  # a blank date is an error, not a default
    rows = rows_of(since=since, until=until, business_number_ids=charges_seen(request))
    return Response(
        {
            "since": since,
            "until": until,
            "rows": row(rows, many=True).data,
            "totals": total(totals_of(rows), many=True).data,
        }
        | (more(rows) if more else {})
    )


class SpendReportApi(APIView):
    """GET: the ledger by day, category, country and currency, with totals per currency, and what no
    rate priced (`unpriced`), grouped by category, country and currency with the reason."""

    permission_classes = [CanSeeCosts]

    class SpendRowSerializer(serializers.Serializer):
        day = serializers.DateField()
        category = serializers.CharField()
        country = serializers.CharField()
        currency = serializers.CharField()
        charges = serializers.IntegerField()
        charged = serializers.IntegerField()
        unpriced = serializers.IntegerField()
        amount = serializers.DecimalField(max_digits=16, decimal_places=4)

    class SpendTotalSerializer(serializers.Serializer):
        currency = serializers.CharField()
        charges = serializers.IntegerField()
        charged = serializers.IntegerField()
        unpriced = serializers.IntegerField()
        amount = serializers.DecimalField(max_digits=18, decimal_places=4)

    class UnpricedSerializer(serializers.Serializer):
        category = serializers.CharField()
        country = serializers.CharField()
        currency = serializers.CharField()
        charges = serializers.IntegerField(help_text="Charges Meta makes that no rate card row priced.")
        first_day = serializers.DateField()
        last_day = serializers.DateField()
        reason = serializers.CharField(help_text="Why no rate priced them.")
        summary = serializers.CharField(source="what", help_text='e.g. "12 utility templates to IN in INR".')

    @report_schema(
        "SpendReport", SpendRowSerializer, SpendTotalSerializer, unpriced=UnpricedSerializer(many=True)
    )
    def get(self, request):
        return report_response(
            request, rows_of=spend_by_day, totals_of=spend_totals, row=self.SpendRowSerializer,
            total=self.SpendTotalSerializer,
            more=lambda rows: {"unpriced": self.UnpricedSerializer(unpriced_groups(rows), many=True).data},
        )  # fmt: skip


class CallCostReportApi(APIView):
    """GET: connected calls by day, country and currency: the business's calls (minutes, cost) and the
    customers' calls, free, with what they would have cost as business-initiated calls."""

    permission_classes = [CanSeeCosts]

    class CallCostRowSerializer(serializers.Serializer):
        day = serializers.DateField()
        country = serializers.CharField()
        currency = serializers.CharField()
        outbound_calls = serializers.IntegerField()
        outbound_seconds = serializers.IntegerField()
        outbound_amount = serializers.DecimalField(max_digits=16, decimal_places=4)
        outbound_unpriced = serializers.IntegerField()
        inbound_calls = serializers.IntegerField()
        inbound_seconds = serializers.IntegerField()
        inbound_as_outbound = serializers.DecimalField(max_digits=16, decimal_places=4, allow_null=True)

    class CallCostTotalSerializer(serializers.Serializer):
        currency = serializers.CharField()
        outbound_calls = serializers.IntegerField()
        outbound_seconds = serializers.IntegerField()
        outbound_amount = serializers.DecimalField(max_digits=18, decimal_places=4)
        outbound_unpriced = serializers.IntegerField()
        inbound_calls = serializers.IntegerField()
        inbound_seconds = serializers.IntegerField()
        saving = serializers.DecimalField(max_digits=18, decimal_places=4)
        unpriced_inbound_seconds = serializers.IntegerField()

    @report_schema("CallCostReport", CallCostRowSerializer, CallCostTotalSerializer)
    def get(self, request):
        return report_response(
            request, rows_of=call_costs_by_day, totals_of=call_cost_totals, row=self.CallCostRowSerializer,
            total=self.CallCostTotalSerializer,
        )  # fmt: skip


class ChargeListApi(ApiView):
    """GET (the `admin` scope, or a user who may view charges): what Meta charges the caller's
    numbers, one row per delivered template message or connected call, newest first; cursor pages."""

    required_scope = ApiKey.Scope.ADMIN
    permission_classes = [HasScope, CanSeeCosts]

    class FilterSerializer(PageSerializer):
        since = serializers.DateField(required=False, help_text="Billed on or after (a UTC day).")
        until = serializers.DateField(required=False, help_text="Billed on or before.")
        kind = serializers.ChoiceField(choices=Charge.Kind.choices, required=False)
        contact = IdField(required=False)
        number = IdField(required=False, help_text="A business number's id.")

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
        wanted = self.query(self.FilterSerializer)
        lookups = {
            "since": "billed_on__gte",
            "until": "billed_on__lte",
            "kind": "kind",
            "number": "business_number_id",
        }
        charges = filtered(
            Charge.objects.filter(business_number_id__in=self.caller().number_ids), wanted, lookups
        )
        if "contact" in wanted:
            charges = charges.filter(_charges_of_contact(wanted["contact"]))
        return self.page(
            charges.annotate(contact_id=_contact_charged()),
            ordering=("-created_at", "-id"),
            serializer=self.ChargeSerializer,
            row=_charge_data,
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
